"""Workspaces API (PAI): /clusters/{cluster}/workspaces. Changes need the cluster admin role (platform admins always
may); users of the cluster may read them. Binding a workspace to a quota is in routes.py, next to the other
bindings."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request, Response
from sqlalchemy.orm import Session

from allotment.api.deps import DB, client_address, cluster_scope, require
from allotment.audit import service as audit
from allotment.core.permissions import Principal, cluster
from allotment.identity.service import find_user
from allotment.inventory.models import Cluster
from allotment.inventory.service import find_cluster
from allotment.quotas import bindings
from allotment.workspaces import service as workspaces
from allotment.workspaces.models import Workspace
from allotment.workspaces.schemas import WorkspaceCreate, WorkspaceList, WorkspaceOut, WorkspaceUpdate

router = APIRouter(tags=["workspaces"])
ADMIN = cluster("admin")
READER = cluster("user")


def _out(db: Session, workspace: Workspace, found: Cluster) -> WorkspaceOut:
    return WorkspaceOut(**workspaces.snapshot(db, workspace, found.name))


def _state(db: Session, workspace: Workspace, found: Cluster) -> dict:
    """What audit records keep of a workspace."""
    data = workspaces.snapshot(db, workspace, found.name)
    return {k: data[k] for k in ("name", "description", "members", "quotas")}


@router.get("/clusters/{cluster}/workspaces", response_model=WorkspaceList,
            dependencies=[require(READER, scope=cluster_scope())])
def list_workspaces(cluster: str, db: DB) -> WorkspaceList:
    found = find_cluster(db, cluster)
    items = [_out(db, w, found) for w in workspaces.list_workspaces(db, found.id)]
    return WorkspaceList(items=items, total=len(items))


@router.post("/clusters/{cluster}/workspaces", response_model=WorkspaceOut, status_code=201)
def create_workspace(cluster: str, body: WorkspaceCreate,
                     principal: Annotated[Principal, require(ADMIN, scope=cluster_scope())], db: DB,
                     request: Request) -> WorkspaceOut:
    found = find_cluster(db, cluster)
    users = [find_user(db, u) for u in body.users]
    groups = [bindings.find_group(db, g) for g in body.groups]
    workspace = workspaces.create_workspace(db, found.id, body.name, body.description, users, groups)
    audit.record(db, principal, "workspace.create", "workspace", f"{found.name}/{workspace.name}", workspace.id,
                 changes={"after": _state(db, workspace, found)}, source=client_address(request))
    return _out(db, workspace, found)


@router.get("/clusters/{cluster}/workspaces/{workspace}", response_model=WorkspaceOut,
            dependencies=[require(READER, scope=cluster_scope())])
def get_workspace(cluster: str, workspace: str, db: DB) -> WorkspaceOut:
    found = find_cluster(db, cluster)
    return _out(db, workspaces.find_workspace(db, found.id, workspace), found)


@router.patch("/clusters/{cluster}/workspaces/{workspace}", response_model=WorkspaceOut)
def update_workspace(cluster: str, workspace: str, body: WorkspaceUpdate,
                     principal: Annotated[Principal, require(ADMIN, scope=cluster_scope())], db: DB,
                     request: Request) -> WorkspaceOut:
    found = find_cluster(db, cluster)
    target = workspaces.find_workspace(db, found.id, workspace)
    before = _state(db, target, found)
    workspaces.update_workspace(db, target, body.name, body.description,
                                clear_description="description" in body.model_fields_set and body.description is None)
    audit.record(db, principal, "workspace.update", "workspace", f"{found.name}/{target.name}", target.id,
                 changes=audit.diff(before, _state(db, target, found)), source=client_address(request))
    return _out(db, target, found)


@router.delete("/clusters/{cluster}/workspaces/{workspace}", status_code=204)
def delete_workspace(cluster: str, workspace: str,
                     principal: Annotated[Principal, require(ADMIN, scope=cluster_scope())], db: DB,
                     request: Request) -> Response:
    found = find_cluster(db, cluster)
    target = workspaces.find_workspace(db, found.id, workspace)
    before = _state(db, target, found)
    workspaces.delete_workspace(db, target)
    audit.record(db, principal, "workspace.delete", "workspace", f"{found.name}/{before['name']}", target.id,
                 changes={"before": before}, source=client_address(request))
    return Response(status_code=204)


def _member(db: Session, principal: Principal, request: Request, cluster: str, workspace: str, kind: str, ref: str,
            add: bool) -> None:
    found = find_cluster(db, cluster)
    target = workspaces.find_workspace(db, found.id, workspace)
    user = find_user(db, ref) if kind == "user" else None
    group = bindings.find_group(db, ref) if kind == "group" else None
    if add:
        workspaces.add_member(db, target, user=user, group=group)
    else:
        workspaces.remove_member(db, target, user=user, group=group)
    name = user.username if user else group.name
    audit.record(db, principal, "workspace.member_add" if add else "workspace.member_remove", "workspace",
                 f"{found.name}/{target.name}", target.id, changes={"after" if add else "before": {kind: name}},
                 source=client_address(request))


@router.put("/clusters/{cluster}/workspaces/{workspace}/members/users/{user}", status_code=204)
def add_user(cluster: str, workspace: str, user: str,
             principal: Annotated[Principal, require(ADMIN, scope=cluster_scope())], db: DB,
             request: Request) -> Response:
    _member(db, principal, request, cluster, workspace, "user", user, True)
    return Response(status_code=204)


@router.delete("/clusters/{cluster}/workspaces/{workspace}/members/users/{user}", status_code=204)
def remove_user(cluster: str, workspace: str, user: str,
                principal: Annotated[Principal, require(ADMIN, scope=cluster_scope())], db: DB,
                request: Request) -> Response:
    _member(db, principal, request, cluster, workspace, "user", user, False)
    return Response(status_code=204)


@router.put("/clusters/{cluster}/workspaces/{workspace}/members/groups/{group}", status_code=204)
def add_group(cluster: str, workspace: str, group: str,
              principal: Annotated[Principal, require(ADMIN, scope=cluster_scope())], db: DB,
              request: Request) -> Response:
    _member(db, principal, request, cluster, workspace, "group", group, True)
    return Response(status_code=204)


@router.delete("/clusters/{cluster}/workspaces/{workspace}/members/groups/{group}", status_code=204)
def remove_group(cluster: str, workspace: str, group: str,
                 principal: Annotated[Principal, require(ADMIN, scope=cluster_scope())], db: DB,
                 request: Request) -> Response:
    _member(db, principal, request, cluster, workspace, "group", group, False)
    return Response(status_code=204)
