"""Resource policies (Backend.AI): every signed-in user may read them; platform admins create, change and delete
them. The form is Backend.AI's dialog: each cap with its maximum and an Unlimited checkbox (ticked: no limit;
unticked: a value up to the maximum is needed), RAM and folder capacity in GiB (a unit may be given). The server
checks both (the maximum again in the policies service)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import Response

from allotment.api.deps import DB, State, client_address, require
from allotment.core.permissions import AUTHENTICATED, PLATFORM_ADMIN, Principal
from allotment.errors import DomainError, FieldError, ValidationFailed
from allotment.policies import service as policies
from allotment.web.console import field_errors, redirect, render

router = APIRouter()
Reader = Annotated[Principal, require(AUTHENTICATED)]
Admin = Annotated[Principal, require(PLATFORM_ADMIN)]
# The form's fields: the caps (service.CAPS) and the description; each cap has an Unlimited box, `<cap>_unlimited`.
FIELDS = ("description", *(cap.field for cap in policies.CAPS))
UNLIMITED = "_unlimited"


def maximum(cap: policies.Cap) -> str:
    """A cap's maximum in the dialog's unit (Backend.AI's: cores, GiB, GPUs, a count)."""
    if cap.bare_gib:
        return f"{cap.bound // policies.GIB} GiB"
    if cap.field == "cpu":
        return f"{cap.bound // 1000} cores"
    if cap.field == "fgpu":
        return f"{cap.bound // 1000} GPUs"
    return str(cap.bound)


MAXIMUMS = {cap.field: maximum(cap) for cap in policies.CAPS}


def _list(request: Request, principal: Principal, db, status: int = 200, **extra) -> Response:
    rows = [{**policies.policy_out(p), "users": len(policies.users_of(db, p.name))}
            for p in policies.list_policies(db)]
    context = {"policies": rows, "caps": policies.CAPS, "maximums": MAXIMUMS, "values": _new_form(), "errors": {},
               "is_admin": principal.is_platform_admin, **extra}
    return render(request, "policies.html", context, status=status)


async def _form(request: Request) -> dict[str, str | bool]:
    form = await request.form()
    out: dict[str, str | bool] = {k: str(form.get(k, "")).strip() for k in ("name", *FIELDS)}
    for cap in policies.CAPS:
        out[cap.field + UNLIMITED] = bool(form.get(cap.field + UNLIMITED))
    return out


def _values(form: dict, creating: bool) -> tuple[dict, list[FieldError]]:
    """The service's values and the dialog's own refusals: a cap is unlimited when its box is ticked; unticked, it
    needs a value (up to its maximum, which the service checks); a value and a ticked box contradict each other. On
    a change, a blank description clears it."""
    values: dict = {}
    errors: list[FieldError] = []
    description = form.get("description", "")
    if description or not creating:
        values["description"] = description or None
    for cap in policies.CAPS:
        text, unlimited = form.get(cap.field, ""), form.get(cap.field + UNLIMITED)
        if unlimited and text:
            errors.append(FieldError(cap.field, "give a value or tick Unlimited, not both"))
        elif unlimited:
            values[cap.field] = None
        elif not text:
            errors.append(FieldError(cap.field, f"give a value up to {MAXIMUMS[cap.field]}, or tick Unlimited"))
        else:
            values[cap.field] = text
    return values, errors


def _apply(db, form: dict, creating: bool, change) -> object:
    """Run the service's change with the dialog's values; every refusal (the dialog's and the service's) together."""
    values, errors = _values(form, creating)
    try:
        done = change(values)
    except DomainError as exc:
        if not exc.errors:
            raise
        errors = errors + [e for e in exc.errors if e.field not in {f.field for f in errors}]
    else:
        if not errors:
            return done
    db.rollback()
    raise ValidationFailed("; ".join(f"{e.field}: {e.message}" for e in errors), errors)


def _shown(policy: dict) -> dict:
    """A policy's values as the form shows them: an unlimited cap blank with its box ticked."""
    shown: dict = {k: "" if v in (None, "unlimited") else str(v) for k, v in policy.items()
                   if k in ("name", *FIELDS)}
    for cap in policies.CAPS:
        shown[cap.field + UNLIMITED] = policy.get(cap.field) in (None, "unlimited")
    return shown


def _new_form() -> dict:
    """A new policy starts unlimited, as Backend.AI's dialog does: untick a cap to set it."""
    return {cap.field + UNLIMITED: True for cap in policies.CAPS}


@router.get("/ui/resource-policies")
def policies_page(request: Request, principal: Reader, db: DB) -> Response:
    return _list(request, principal, db)


@router.post("/ui/resource-policies")
async def create_policy(request: Request, principal: Admin, db: DB) -> Response:
    form = await _form(request)
    try:
        policy = _apply(db, form, True, lambda values: policies.create_policy(db, str(form["name"]), values, principal,
                                                                           client_address(request)))
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
                                           "maximums": MAXIMUMS, "values": _shown(policy), "errors": {},
                                           "is_admin": principal.is_platform_admin})


@router.post("/ui/resource-policies/{name}")
async def update_policy(request: Request, principal: Admin, db: DB, state: State, name: str) -> Response:
    policy = policies.find_policy(db, name)
    form = await _form(request)
    try:
        _apply(db, form, False, lambda values: policies.update_policy(db, policy, values, principal,
                                                                      client_address(request)))
    except DomainError as exc:
        if not exc.errors:
            raise
        db.rollback()  # nothing half-applied is shown (the caps are checked before any is set)
        shown = policies.policy_out(policies.find_policy(db, name))
        return render(request, "policy.html", {"policy": shown, "users": policies.users_of(db, name),
                                               "caps": policies.CAPS, "maximums": MAXIMUMS,
                                               "values": {**form, "name": name},
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
