"""Workspaces in the console (ClearML's workspace settings, PAI's workspaces): the caller's workspaces and the
invitations waiting for them (accept), and one workspace's members with their roles and its pending invitations with
their dates (invite, cancel, set role, remove, leave, rename and describe). Each action calls the API's route
function, so the page asks the same decision (core.permissions.workspace_refusal) and writes the same audit record."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import Response
from pydantic import ValidationError

from allotment.api.deps import DB, State, require
from allotment.core.permissions import AUTHENTICATED, WORKSPACE_ROLES, Principal
from allotment.errors import DomainError
from allotment.identity.models import User
from allotment.inventory.service import visible_clusters
from allotment.web.console import field_errors, redirect, render, url_segment
from allotment.workspaces import invitations, routes, routes_members
from allotment.workspaces.schemas import InvitationIn, RoleIn, TokenIn, WorkspaceCreate, WorkspaceUpdate

router = APIRouter()
Me = Annotated[Principal, require(AUTHENTICATED)]
KINDS = {"user": "users", "service_account": "service-accounts", "group": "groups"}


def _home(request: Request, principal: Principal, db, status: int = 200, **extra) -> Response:
    user = db.get(User, principal.id)
    clusters = visible_clusters(db, None if principal.is_platform_admin else set(principal.cluster_roles))
    context = {"workspaces": routes_members.my_workspaces(principal, db),
               "invitations": routes_members.my_invitations(principal, db), "clusters": clusters,
               "email": user.email, "values": {}, "errors": {}}
    context.update(extra)
    return render(request, "workspaces/list.html", context, status=status)


def _form_errors(exc: DomainError | ValidationError) -> tuple[int, dict[str, list[str]]]:
    """A form's field messages; an error that names no field (403, 404) is the console's error page."""
    if isinstance(exc, ValidationError):
        return 422, {str(e["loc"][0]) if e["loc"] else "form": [e["msg"]] for e in exc.errors()}
    if not exc.errors:
        raise exc
    return exc.status, field_errors(exc.errors)


def _path(cluster: str, workspace: str) -> str:
    return f"/ui/workspaces/{url_segment(cluster)}/{url_segment(workspace)}"


@router.get("/ui/workspaces")
def workspaces_page(request: Request, principal: Me, db: DB) -> Response:
    return _home(request, principal, db)


@router.post("/ui/workspaces")
def create_workspace(request: Request, principal: Me, db: DB, cluster: Annotated[str, Form()] = "",
                     name: Annotated[str, Form()] = "", description: Annotated[str, Form()] = "") -> Response:
    try:
        body = WorkspaceCreate(name=name.strip(), description=description.strip() or None)
        routes.create_workspace(cluster, body, principal, db, request)
    except (DomainError, ValidationError) as exc:
        status, errors = _form_errors(exc)
        return _home(request, principal, db, status=status, errors=errors,
                     values={"name": name, "description": description, "cluster": cluster})
    return redirect(_path(cluster, name.strip()), notice=f"Workspace {name.strip()} created; you own it.",
                    request=request)


def _detail(request: Request, principal: Principal, db, cluster: str, workspace: str, status: int = 200,
            **extra) -> Response:
    shown = routes.get_workspace(cluster, workspace, principal, db)
    context = {"ws": shown, "pending": routes_members.list_invitations(cluster, workspace, principal, db),
               "roles": WORKSPACE_ROLES, "kinds": KINDS, "values": {}, "errors": {},
               "manages": shown.my_role in ("owner", "admin") or principal.is_platform_admin
               or principal.role_on(routes.find_cluster(db, cluster).id) == "admin"}
    context.update(extra)
    return render(request, "workspaces/detail.html", context, status=status)


@router.get("/ui/workspaces/{cluster}/{workspace}")
def workspace_page(request: Request, principal: Me, db: DB, cluster: str, workspace: str) -> Response:
    return _detail(request, principal, db, cluster, workspace)


@router.post("/ui/workspaces/{cluster}/{workspace}/edit")
def edit_workspace(request: Request, principal: Me, db: DB, cluster: str, workspace: str,
                   name: Annotated[str, Form()] = "", description: Annotated[str, Form()] = "") -> Response:
    try:
        body = WorkspaceUpdate(name=name.strip() or None, description=description.strip() or None)
        done = routes.update_workspace(cluster, workspace, body, principal, db, request)
    except (DomainError, ValidationError) as exc:
        status, errors = _form_errors(exc)
        return _detail(request, principal, db, cluster, workspace, status=status, errors=errors,
                       values={"name": name, "description": description})
    return redirect(_path(cluster, done.name), notice=f"Workspace {done.name} saved.", request=request)


@router.post("/ui/workspaces/{cluster}/{workspace}/invite")
def invite(request: Request, principal: Me, db: DB, state: State, cluster: str, workspace: str,
           email: Annotated[str, Form()] = "", role: Annotated[str, Form()] = "member",
           lifetime_days: Annotated[str, Form()] = "") -> Response:
    try:
        body = InvitationIn(email=email, role=role, lifetime_days=lifetime_days.strip() or 7)
        sent = routes_members.invite(cluster, workspace, body, principal, db, state, request)
    except (DomainError, ValidationError) as exc:
        status, errors = _form_errors(exc)
        return _detail(request, principal, db, cluster, workspace, status=status, errors=errors,
                       values={"email": email, "role": role, "lifetime_days": lifetime_days})
    return _detail(request, principal, db, cluster, workspace, sent=sent,
                   notice=f"Invited {sent.email} as {sent.role} until {sent.expires_at:%Y-%m-%d %H:%M} UTC: send "
                          "them the link below (shown once).")


@router.post("/ui/workspaces/{cluster}/{workspace}/invitations/{invitation}/cancel")
def cancel_invitation(request: Request, principal: Me, db: DB, cluster: str, workspace: str,
                      invitation: int) -> Response:
    routes_members.cancel_invitation(cluster, workspace, invitation, principal, db, request)
    return redirect(_path(cluster, workspace), notice="Invitation cancelled.", request=request)


@router.post("/ui/workspaces/{cluster}/{workspace}/members/{kind}/{ref}/role")
def set_role(request: Request, principal: Me, db: DB, cluster: str, workspace: str, kind: str, ref: str,
             role: Annotated[str, Form()] = "") -> Response:
    routes.set_member_role(cluster, workspace, kind, ref, RoleIn(role=role), principal, db, request)
    return redirect(_path(cluster, workspace), notice=f"{ref} is now {role}.", request=request)


@router.post("/ui/workspaces/{cluster}/{workspace}/members/{kind}/{ref}/remove")
def remove_member(request: Request, principal: Me, db: DB, cluster: str, workspace: str, kind: str,
                  ref: str) -> Response:
    routes.remove_member(cluster, workspace, kind, ref, principal, db, request)
    return redirect(_path(cluster, workspace), notice=f"{ref} removed; their credentials scoped to {workspace} "
                                                      "were revoked and their jobs stay.", request=request)


@router.post("/ui/workspaces/{cluster}/{workspace}/leave")
def leave(request: Request, principal: Me, db: DB, cluster: str, workspace: str) -> Response:
    done = routes_members.leave(cluster, workspace, principal, db, request)
    revoked = f" Revoked credential(s): {', '.join(done.revoked_credentials)}." if done.revoked_credentials else ""
    return redirect("/ui/workspaces", notice=f"You left workspace {workspace}.{revoked}", request=request)


@router.post("/ui/workspace-invitations/{invitation}/accept")
def accept_own(request: Request, principal: Me, db: DB, invitation: int) -> Response:
    done = routes_members.accept_own(invitation, principal, db, request)
    return redirect(_path(done.cluster, done.workspace), notice=f"You joined workspace {done.workspace} as "
                                                                f"{done.role}.", request=request)


@router.get("/ui/workspace-invitations/accept")
def accept_link(request: Request, principal: Me, token: Annotated[str, Query()] = "") -> Response:
    """The invitation link: confirm before joining (a link alone must not change anything)."""
    return render(request, "workspaces/accept.html", {"token": token})


@router.post("/ui/workspace-invitations/accept")
def accept_token(request: Request, principal: Me, db: DB, state: State,
                 token: Annotated[str, Form()] = "") -> Response:
    try:
        done = routes_members.accept_with_token(TokenIn(token=token), principal, db, state, request)
    except DomainError as exc:
        if not exc.errors:
            raise
        return render(request, "workspaces/accept.html", {"token": token, "errors": field_errors(exc.errors)},
                      status=422)  # the form's error under its field, whatever the API answers (404)
    return redirect(_path(done.cluster, done.workspace), notice=f"You joined workspace {done.workspace} as "
                                                                f"{done.role}.", request=request)


def pending_invitation_count(db, principal: Principal | None) -> int:
    """For the dashboard's notice: how many invitations wait for the signed-in user."""
    if principal is None or principal.kind != "user":
        return 0
    user = db.get(User, principal.id)
    if user is None:
        return 0
    return sum(1 for invitation, _ in invitations.pending_for_user(db, user) if not invitations.is_expired(invitation))
