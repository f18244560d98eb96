"""Resource policies (Backend.AI): every signed-in user may read them; platform admins create, change and delete
them. The form is Backend.AI's dialog: RAM and folder capacity in GiB (a unit may be given), blank = unlimited."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import Response

from allotment.api.deps import DB, State, client_address, require
from allotment.core.permissions import AUTHENTICATED, PLATFORM_ADMIN, Principal
from allotment.errors import DomainError
from allotment.policies import service as policies
from allotment.web.console import field_errors, redirect, render

router = APIRouter()
Reader = Annotated[Principal, require(AUTHENTICATED)]
Admin = Annotated[Principal, require(PLATFORM_ADMIN)]
# The form's fields: the caps (service.CAPS) and the description; blank means unlimited (or no description).
FIELDS = ("description", *(cap.field for cap in policies.CAPS))


def _list(request: Request, principal: Principal, db, status: int = 200, **extra) -> Response:
    rows = [{**policies.policy_out(p), "users": len(policies.users_of(db, p.name))}
            for p in policies.list_policies(db)]
    context = {"policies": rows, "caps": policies.CAPS, "values": {}, "errors": {},
               "is_admin": principal.is_platform_admin, **extra}
    return render(request, "policies.html", context, status=status)


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: str(form.get(k, "")).strip() for k in ("name", *FIELDS)}


def _values(form: dict[str, str], creating: bool) -> dict:
    """Blank caps are unlimited; on a change, a blank description clears it."""
    values: dict = {}
    for key in FIELDS:
        text = form.get(key, "")
        if key == "description":
            if text or not creating:
                values[key] = text or None
        else:
            values[key] = text or None
    return values


def _shown(policy: dict) -> dict[str, str]:
    """A policy's values as the form shows them: unlimited caps blank."""
    return {k: "" if v in (None, "unlimited") else str(v) for k, v in policy.items() if k in ("name", *FIELDS)}


@router.get("/ui/resource-policies")
def policies_page(request: Request, principal: Reader, db: DB) -> Response:
    return _list(request, principal, db)


@router.post("/ui/resource-policies")
async def create_policy(request: Request, principal: Admin, db: DB) -> Response:
    form = await _form(request)
    try:
        policy = policies.create_policy(db, form["name"], _values(form, True), principal, client_address(request))
    except DomainError as exc:
        if not exc.errors:
            raise
        return _list(request, principal, db, exc.status, errors=field_errors(exc.errors), values=form)
    return redirect("/ui/resource-policies", notice=f"Resource policy {policy.name} created.")


@router.get("/ui/resource-policies/{name}")
def policy_page(request: Request, principal: Reader, db: DB, name: str) -> Response:
    policy = policies.policy_out(policies.find_policy(db, name))
    users = policies.users_of(db, name)
    return render(request, "policy.html", {"policy": policy, "users": users, "caps": policies.CAPS,
                                           "values": _shown(policy), "errors": {},
                                           "is_admin": principal.is_platform_admin})


@router.post("/ui/resource-policies/{name}")
async def update_policy(request: Request, principal: Admin, db: DB, state: State, name: str) -> Response:
    policy = policies.find_policy(db, name)
    form = await _form(request)
    try:
        policies.update_policy(db, policy, _values(form, False), principal, client_address(request))
    except DomainError as exc:
        if not exc.errors:
            raise
        db.rollback()  # nothing half-applied is shown (the caps are checked before any is set)
        shown = policies.policy_out(policies.find_policy(db, name))
        return render(request, "policy.html", {"policy": shown, "users": policies.users_of(db, name),
                                               "caps": policies.CAPS, "values": {**form, "name": name},
                                               "errors": field_errors(exc.errors), "is_admin": True},
                      status=exc.status)
    state.scheduler_wakeup.set()  # a risen cap lets held jobs go
    return redirect(f"/ui/resource-policies/{name}", notice=f"Resource policy {name} saved.")


@router.post("/ui/resource-policies/{name}/delete")
def delete_policy(request: Request, principal: Admin, db: DB, name: str) -> Response:
    policy = policies.find_policy(db, name)
    try:
        policies.delete_policy(db, policy, principal, client_address(request))
    except DomainError as exc:
        if exc.status != 409:
            raise
        return _list(request, principal, db, 409, refusal=exc.detail)
    return redirect("/ui/resource-policies", request=request, notice=f"Resource policy {name} deleted.")
