"""Users (Backend.AI's admin Users tab): list with Active/Inactive tabs, search and pages; detail (groups as links,
the user's latest jobs and their allowance); create and edit with the resource policy and the password rules checked
as one types; deactivate (refused while the user has running jobs, unless the admin chooses to stop them), activate
and unlock. Platform admins only; every change goes through identity.service (which audits it)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from allotment.api.deps import DB, State, client_address, require
from allotment.api.fields import PageNumber
from allotment.core.permissions import PLATFORM_ADMIN, Principal
from allotment.db import utcnow
from allotment.errors import DomainError
from allotment.identity import lockout, throttle
from allotment.identity import service as identity
from allotment.policies import service as policies
from allotment.web import allowance_view, password_rules
from allotment.web.console import field_errors, is_htmx, redirect, render
from allotment.web.paging import fetch_page
from allotment.workloads import owner_jobs
from allotment.workloads import service as workloads
from allotment.workloads.models import FINAL_STATES
from allotment.workloads.schemas import JobOut

router = APIRouter()
Admin = Annotated[Principal, require(PLATFORM_ADMIN)]
STATUS_FILTERS = {"active": True, "inactive": False, "all": None}
SORTABLE = ("username", "email", "created_at")
RECENT_JOBS = 10


@router.get("/ui/users")
def users_list(request: Request, principal: Admin, db: DB, status: str = "active", search: str = "",
               sort: str = "username", page: PageNumber = 1) -> Response:
    status = status if status in STATUS_FILTERS else "active"
    sort = sort if sort.removeprefix("-") in SORTABLE else "username"
    users, paging = fetch_page(page, lambda limit, offset: identity.list_users(
        db, active=STATUS_FILTERS[status], search=search or None, sort=sort, limit=limit, offset=offset))
    context = {"users": users, "status": status, "search": search, "sort": sort, "page": paging}
    if is_htmx(request) and request.headers.get("hx-target") == "user-table":
        return render(request, "users/_table.html", context)  # search-as-you-type swaps only the table
    return render(request, "users/list.html", context)


def _form(request: Request, db, template: str, values: dict, errors: dict, status: int = 200, **extra) -> Response:
    """A user form with the resource policies to choose from and the password rules checked as one types."""
    names = [p.name for p in policies.list_policies(db)]
    if values.get("resource_policy") and values["resource_policy"] not in names:
        names.append(values["resource_policy"])  # a policy named before it exists (the service allows it)
    return render(request, template, {"values": values, "errors": errors, "policy_names": names,
                                      "password_rules": password_rules.rules(), **extra}, status=status)


def _policy(chosen: str) -> str | None:
    """The form's choice as stored: the default policy is the one followed when none is named."""
    return None if chosen.strip() in ("", policies.DEFAULT_POLICY) else chosen.strip()


@router.get("/ui/users/new")
def new_user_form(request: Request, principal: Admin, db: DB) -> Response:
    return _form(request, db, "users/new.html", {"resource_policy": policies.DEFAULT_POLICY}, {})


@router.post("/ui/users")
def create_user(
    request: Request,
    principal: Admin,
    db: DB,
    email: Annotated[str, Form()] = "",
    username: Annotated[str, Form()] = "",
    full_name: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    password_confirm: Annotated[str, Form()] = "",
    need_password_change: Annotated[bool, Form()] = False,
    resource_policy: Annotated[str, Form()] = "",
) -> Response:
    values = {"email": email, "username": username, "full_name": full_name,
              "need_password_change": need_password_change, "resource_policy": resource_policy}
    if password != password_confirm:
        errors = {"password_confirm": ["does not match the password"]}
        return _form(request, db, "users/new.html", values, errors, 422)
    try:
        user = identity.register_user(db, principal, client_address(request), email=email.strip(),
                                      username=username.strip(), password=password,
                                      full_name=full_name.strip() or None, need_password_change=need_password_change,
                                      resource_policy=_policy(resource_policy))
    except DomainError as exc:
        if not exc.errors:
            raise
        # The service's own field errors (ValidationFailed, or Conflict naming the duplicate field) under each input.
        return _form(request, db, "users/new.html", values, field_errors(exc.errors), exc.status, summary=exc.detail)
    return redirect(f"/ui/users/{user.id}", notice=f"User {user.username} created.")


@router.get("/ui/users/{user}")
def user_detail(request: Request, principal: Admin, db: DB, user: str) -> Response:
    detail = identity.user_detail(db, identity.find_person(db, user))
    detail["locked"] = lockout.is_locked(detail["user"], utcnow())
    holding = owner_jobs.holding_jobs(db, detail["user"].id)
    detail["holding_jobs"] = list(zip(holding, owner_jobs.describe(db, holding), strict=True))
    # Their latest jobs (the jobs list filtered by owner shows all) and what their resource policy leaves them.
    jobs, total = workloads.list_jobs(db, principal, owner=str(detail["user"].username), limit=RECENT_JOBS)
    names = workloads.names_for(db, jobs)
    detail["jobs"] = [JobOut.of(j, names) for j in jobs]
    detail["jobs_total"] = total
    detail["final_states"] = FINAL_STATES
    detail["allowance"] = policies.allowance(db, detail["user"])
    detail["indicator"] = allowance_view.indicator(detail["allowance"])
    return render(request, "users/detail.html", detail)


@router.post("/ui/users/{user}/unlock")
def unlock(request: Request, principal: Admin, db: DB, user: str) -> Response:
    target = identity.find_person(db, user)
    lockout.unlock_user(db, principal, target, client_address(request))
    return redirect(f"/ui/users/{target.id}", notice=f"{target.username} is unlocked: password sign-in works again.",
                    request=request)


def _set_active(request: Request, principal: Principal, db, user_ref: str, active: bool,
                stop_jobs: bool = False, state=None) -> Response:
    user = identity.find_person(db, user_ref)
    if active:
        identity.activate_user(db, principal, user, client_address(request))
        message = f"{user.username} is active again. Their old credentials stay revoked."
    else:
        # With running jobs and no stop_jobs this is refused (409) and the error names the jobs; the detail page
        # offers "Deactivate and stop jobs" when there are any.
        cancelled = identity.deactivate_user(db, principal, user, client_address(request), stop_jobs=stop_jobs)
        message = f"{user.username} is deactivated: signed out everywhere and every credential revoked."
        if cancelled:
            message += f" Cancelled {len(cancelled)} job(s): {', '.join(map(str, cancelled))}."
            if state is not None:
                state.scheduler_wakeup.set()
    if is_htmx(request) and request.headers.get("hx-target", "").startswith("user-row-"):
        return render(request, "users/_row_swap.html", {"user": user, "message": message})
    return redirect(f"/ui/users/{user.id}", notice=message, request=request)


@router.post("/ui/users/{user}/deactivate")
def deactivate(request: Request, principal: Admin, db: DB, state: State, user: str,
               stop_jobs: Annotated[bool, Form()] = False) -> Response:
    return _set_active(request, principal, db, user, active=False, stop_jobs=stop_jobs, state=state)


@router.post("/ui/users/{user}/activate")
def activate(request: Request, principal: Admin, db: DB, user: str) -> Response:
    return _set_active(request, principal, db, user, active=True)


@router.get("/ui/users/{user}/edit")
def edit_user_form(request: Request, principal: Admin, db: DB, user: str) -> Response:
    target = identity.find_person(db, user)
    values = {"username": target.username, "full_name": target.full_name or "",
              "need_password_change": target.need_password_change, "resource_policy": target.resource_policy or policies.DEFAULT_POLICY}
    return _form(request, db, "users/edit.html", values, {}, user=target)


@router.post("/ui/users/{user}/edit")
def edit_user(
    request: Request,
    principal: Admin,
    db: DB,
    state: State,
    user: str,
    username: Annotated[str, Form()] = "",
    full_name: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    need_password_change: Annotated[bool, Form()] = False,
    resource_policy: Annotated[str, Form()] = "",
) -> Response:
    """Backend.AI's update dialog: the e-mail stays (it is the identity); a blank password keeps the current one;
    no resource policy is the default one."""
    target = identity.find_person(db, user)
    changes: dict = {"full_name": full_name.strip() or None, "need_password_change": need_password_change,
                     "resource_policy": _policy(resource_policy)}
    if username.strip() != target.username:
        changes["username"] = username
    if password:
        changes["password"] = password
    values = {"username": username, "full_name": full_name, "need_password_change": need_password_change,
              "resource_policy": resource_policy}
    try:
        identity.update_user(db, principal, target, changes, client_address(request),
                             throttle.password_confirmations(state))
    except DomainError as exc:
        if not exc.errors:
            raise
        return _form(request, db, "users/edit.html", values, field_errors(exc.errors), exc.status, user=target)
    return redirect(f"/ui/users/{target.id}", notice=f"User {target.username} updated.")
