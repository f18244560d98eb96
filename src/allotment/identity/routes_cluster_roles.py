"""Cluster roles API: who may use a cluster and as what. Cluster managers and admins manage their cluster's users."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request, Response

from allotment.api.deps import DB, client_address, cluster_scope, require
from allotment.core.permissions import Principal, cluster
from allotment.identity import cluster_roles
from allotment.identity.access_schemas import (
    ClusterGroupGrant,
    ClusterGroupList,
    ClusterMember,
    ClusterMemberList,
    RoleBody,
    RoleChange,
)
from allotment.identity.service import find_user
from allotment.inventory.service import find_cluster

router = APIRouter(tags=["cluster roles"])

# Managers manage the cluster's users; whether a manager may give or take a particular role is decided in the
# service (only a cluster admin grants admin or touches an admin's grant).
Manager = Annotated[Principal, require(cluster("manager"), scope=cluster_scope())]


@router.get("/clusters/{cluster}/users", response_model=ClusterMemberList)
def list_cluster_users(cluster: str, _: Manager, db: DB) -> ClusterMemberList:
    items = cluster_roles.list_members(db, find_cluster(db, cluster))
    return ClusterMemberList(items=[ClusterMember(**i) for i in items], total=len(items))


@router.put("/clusters/{cluster}/users/{user}", response_model=RoleChange)
def set_cluster_user_role(cluster: str, user: str, body: RoleBody, principal: Manager, db: DB,
                          request: Request) -> RoleChange:
    """Add the user to the cluster with the role, or change their role: one step either way."""
    change = cluster_roles.set_user_role(db, find_cluster(db, cluster), find_user(db, user), body.role, principal,
                                         client_address(request))
    return RoleChange(**change.as_dict())


@router.delete("/clusters/{cluster}/users/{user}", status_code=204)
def remove_cluster_user(cluster: str, user: str, principal: Manager, db: DB, request: Request) -> Response:
    """Revoke the user's access to the cluster; their jobs, storage and usage stay."""
    cluster_roles.remove_user(db, find_cluster(db, cluster), find_user(db, user), principal, client_address(request))
    return Response(status_code=204)


@router.get("/clusters/{cluster}/groups", response_model=ClusterGroupList)
def list_cluster_groups(cluster: str, _: Manager, db: DB) -> ClusterGroupList:
    items = cluster_roles.list_group_grants(db, find_cluster(db, cluster))
    return ClusterGroupList(items=[ClusterGroupGrant(**i) for i in items], total=len(items))


@router.put("/clusters/{cluster}/groups/{group}", response_model=RoleChange)
def set_cluster_group_role(cluster: str, group: str, body: RoleBody, principal: Manager, db: DB,
                           request: Request) -> RoleChange:
    change = cluster_roles.set_group_role(db, find_cluster(db, cluster), cluster_roles.find_group(db, group),
                                          body.role, principal, client_address(request))
    return RoleChange(**change.as_dict())


@router.delete("/clusters/{cluster}/groups/{group}", status_code=204)
def remove_cluster_group(cluster: str, group: str, principal: Manager, db: DB, request: Request) -> Response:
    """Revoke what was granted through the group; roles its members hold directly stay."""
    cluster_roles.remove_group(db, find_cluster(db, cluster), cluster_roles.find_group(db, group), principal,
                               client_address(request))
    return Response(status_code=204)
