"""Who may use a cluster (Neu.ro's cluster users, DKube's roles): members with their effective role and where it
comes from, add or change a role in one step, remove; the same for groups. Cluster managers and admins, through
identity.cluster_roles (which enforces that only cluster admins grant admin, and audits)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from allotment.api.deps import DB, client_address, cluster_scope, require
from allotment.core.permissions import ROLE_ORDER, Principal, cluster
from allotment.errors import DomainError
from allotment.identity import cluster_roles
from allotment.identity import service as identity
from allotment.inventory.service import find_cluster
from allotment.web.console import field_errors, form_lookup, is_htmx, redirect, render, url_segment

router = APIRouter()
Manager = Annotated[Principal, require(cluster("manager"), cluster_scope())]


def _page(request: Request, db, found, status: int = 200, form: str | None = None, errors: dict | None = None,
          values: dict | None = None) -> Response:
    """The members page; after a refused form (without htmx), that form's messages under its fields and what was
    typed (`form`: members or groups, the two forms share the role field's name)."""
    return render(request, "cluster_members.html", {
        "cluster": found, "members": cluster_roles.list_members(db, found),
        "group_grants": cluster_roles.list_group_grants(db, found),
        "roles": list(ROLE_ORDER), "failed": form, "errors": errors or {}, "values": values or {},
    }, status=status)


def _refused(request: Request, db, found, exc: DomainError, form: str, values: dict) -> Response:
    if not exc.errors or is_htmx(request):
        raise exc
    db.rollback()
    return _page(request, db, found, exc.status, form, field_errors(exc.errors), values)


@router.get("/ui/clusters/{cluster}/members")
def members_page(request: Request, principal: Manager, db: DB, cluster: str) -> Response:
    return _page(request, db, find_cluster(db, cluster))


@router.post("/ui/clusters/{cluster}/members")
def set_member_role(request: Request, principal: Manager, db: DB, cluster: str,
                    username: Annotated[str, Form()] = "", role: Annotated[str, Form()] = "user") -> Response:
    found = find_cluster(db, cluster)
    try:
        user = form_lookup("username", identity.find_user, db, username)
        change = cluster_roles.set_user_role(db, found, user, role, principal, client_address(request))
    except DomainError as exc:
        return _refused(request, db, found, exc, "members", {"username": username, "role": role})
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
    try:
        target = form_lookup("group", cluster_roles.find_group, db, group)
        change = cluster_roles.set_group_role(db, found, target, role, principal, client_address(request))
    except DomainError as exc:
        return _refused(request, db, found, exc, "groups", {"group": group, "role": role})
    return redirect(f"/ui/clusters/{url_segment(found.name)}/members", request=request,
                    notice=f"Group {change.group} has the {change.role} role on {found.name}.")


@router.post("/ui/clusters/{cluster}/groups/{group}/remove")
def remove_group(request: Request, principal: Manager, db: DB, cluster: str, group: str) -> Response:
    found = find_cluster(db, cluster)
    change = cluster_roles.remove_group(db, found, cluster_roles.find_group(db, group), principal,
                                        client_address(request))
    return redirect(f"/ui/clusters/{url_segment(found.name)}/members", request=request,
                    notice=f"Group {change.group} no longer has a role on {found.name}.")
