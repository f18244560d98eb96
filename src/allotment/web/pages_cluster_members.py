"""Who may use a cluster (Neu.ro's cluster users, DKube's roles): members with their effective role and where it
comes from, add or change a role in one step, remove; the same for groups. Cluster managers and admins, through
identity.cluster_roles (which enforces that only cluster admins grant admin, and audits)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from allotment.api.deps import DB, client_address, cluster_scope, require
from allotment.core.permissions import ROLE_ORDER, Principal, cluster
from allotment.identity import cluster_roles
from allotment.identity import service as identity
from allotment.inventory.service import find_cluster
from allotment.web.console import form_lookup, redirect, render, url_segment

router = APIRouter()
Manager = Annotated[Principal, require(cluster("manager"), cluster_scope())]


@router.get("/ui/clusters/{cluster}/members")
def members_page(request: Request, principal: Manager, db: DB, cluster: str) -> Response:
    found = find_cluster(db, cluster)
    return render(request, "cluster_members.html", {
        "cluster": found, "members": cluster_roles.list_members(db, found),
        "group_grants": cluster_roles.list_group_grants(db, found),
        "roles": list(ROLE_ORDER),
    })


@router.post("/ui/clusters/{cluster}/members")
def set_member_role(request: Request, principal: Manager, db: DB, cluster: str,
                    username: Annotated[str, Form()] = "", role: Annotated[str, Form()] = "user") -> Response:
    found = find_cluster(db, cluster)
    user = form_lookup("username", identity.find_user, db, username)
    change = cluster_roles.set_user_role(db, found, user, role, principal, client_address(request))
    verb = f"changed from {change.previous_role} to" if change.previous_role else "added as"
    return redirect(f"/ui/clusters/{url_segment(found.name)}/members", request=request,
                    notice=f"{change.username} {verb} {change.role} on {found.name}.")


@router.post("/ui/clusters/{cluster}/members/{user}/remove")
def remove_member(request: Request, principal: Manager, db: DB, cluster: str, user: str) -> Response:
    found = find_cluster(db, cluster)
    change = cluster_roles.remove_user(db, found, identity.find_user(db, user), principal, client_address(request))
    return redirect(f"/ui/clusters/{url_segment(found.name)}/members", request=request,
                    notice=f"{change.username} no longer has a role of their own on {found.name}; "
                    "everything they own is kept.")


@router.post("/ui/clusters/{cluster}/groups")
def set_group_role(request: Request, principal: Manager, db: DB, cluster: str,
                   group: Annotated[str, Form()] = "", role: Annotated[str, Form()] = "user") -> Response:
    found = find_cluster(db, cluster)
    target = form_lookup("group", cluster_roles.find_group, db, group)
    change = cluster_roles.set_group_role(db, found, target, role, principal, client_address(request))
    return redirect(f"/ui/clusters/{url_segment(found.name)}/members", request=request,
                    notice=f"Group {change.group} has the {change.role} role on {found.name}.")


@router.post("/ui/clusters/{cluster}/groups/{group}/remove")
def remove_group(request: Request, principal: Manager, db: DB, cluster: str, group: str) -> Response:
    found = find_cluster(db, cluster)
    change = cluster_roles.remove_group(db, found, cluster_roles.find_group(db, group), principal,
                                        client_address(request))
    return redirect(f"/ui/clusters/{url_segment(found.name)}/members", request=request,
                    notice=f"Group {change.group} no longer has a role on {found.name}.")
