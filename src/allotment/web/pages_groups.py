"""Groups (ClearML's Users & Groups, DKube's groups screen): list, create, members, delete. Platform admins only;
identity.groups enforces the built-in groups' rules (`users` is fixed, `admins` keeps at least one admin)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from allotment.api.deps import DB, client_address, require
from allotment.core.permissions import PLATFORM_ADMIN, Principal
from allotment.errors import DomainError
from allotment.identity import groups
from allotment.identity import service as identity
from allotment.web.console import field_errors, form_lookup, is_htmx, redirect, render

router = APIRouter()
Admin = Annotated[Principal, require(PLATFORM_ADMIN)]


def _list(request: Request, db, status: int = 200, **extra) -> Response:
    context = {"groups": groups.list_groups(db), "values": {}, "errors": {}}
    context.update(extra)
    return render(request, "groups/list.html", context, status=status)


@router.get("/ui/groups")
def groups_page(request: Request, principal: Admin, db: DB) -> Response:
    return _list(request, db)


@router.post("/ui/groups")
def create_group(request: Request, principal: Admin, db: DB, name: Annotated[str, Form()] = "",
                 description: Annotated[str, Form()] = "") -> Response:
    try:
        group = groups.create_group(db, principal, name, description.strip() or None, client_address(request))
    except DomainError as exc:
        if not exc.errors:
            raise
        return _list(request, db, status=exc.status, errors=field_errors(exc.errors),
                     values={"name": name, "description": description})
    return redirect(f"/ui/groups/{group.id}", notice=f"Group {group.name} created.")


def _detail(request: Request, db, target, status: int = 200, **extra) -> Response:
    held = {groups.LABELS[k]: v for k, v in groups.granted_through(db, target).items() if v}
    context = {"group": groups.group_detail(db, target), "held": held, "values": {}, "errors": {}, **extra}
    return render(request, "groups/detail.html", context, status=status)


@router.get("/ui/groups/{group}")
def group_page(request: Request, principal: Admin, db: DB, group: str) -> Response:
    return _detail(request, db, groups.find_group(db, group))


@router.post("/ui/groups/{group}/members")
def add_member(request: Request, principal: Admin, db: DB, group: str,
               username: Annotated[str, Form()] = "") -> Response:
    target = groups.find_group(db, group)
    try:
        user = form_lookup("username", identity.find_user, db, username)
    except DomainError as exc:  # the page again, the message under the field (htmx or not)
        if is_htmx(request):
            raise
        return _detail(request, db, target, status=exc.status, errors=field_errors(exc.errors),
                       values={"username": username})
    added = groups.add_member(db, principal, target, user, client_address(request))
    message = f"{user.username} added to {target.name}." if added else f"{user.username} was already a member."
    return redirect(f"/ui/groups/{target.id}", notice=message, request=request)


@router.post("/ui/groups/{group}/members/{user}/remove")
def remove_member(request: Request, principal: Admin, db: DB, group: str, user: str) -> Response:
    target = groups.find_group(db, group)
    member = identity.find_user(db, user)
    groups.remove_member(db, principal, target, member, client_address(request))
    return redirect(f"/ui/groups/{target.id}", notice=f"{member.username} removed from {target.name}.",
                    request=request)


@router.post("/ui/groups/{group}/delete")
def delete_group(request: Request, principal: Admin, db: DB, group: str,
                 force: Annotated[bool, Form()] = False) -> Response:
    """Refused (409, listing them) while the group has members or grants, unless the admin confirms with force."""
    target = groups.find_group(db, group)
    name = target.name
    groups.delete_group(db, principal, target, client_address(request), force=force)
    return redirect("/ui/groups", notice=f"Group {name} deleted, with what was granted through it; its members keep "
                                         f"their direct grants.", request=request)
