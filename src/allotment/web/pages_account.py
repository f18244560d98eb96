"""The signed-in user's own account: profile (their username and full name may change), groups and roles, what
their resource policy still allows (in use now and left, Backend.AI's resource indicator), and changing the password
(needs the current one)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from allotment.api.deps import DB, State, client_address, require
from allotment.core.permissions import AUTHENTICATED, Principal
from allotment.errors import DomainError
from allotment.identity import service as identity
from allotment.identity import throttle
from allotment.policies import service as policies
from allotment.web.console import field_errors, redirect, render

router = APIRouter()
Me = Annotated[Principal, require(AUTHENTICATED)]


def _page(request: Request, principal: Principal, db, status: int = 200, errors: dict | None = None,
          values: dict | None = None) -> Response:
    detail = identity.user_detail(db, identity.find_user(db, principal.id))
    shown = {"username": detail["user"].username, "full_name": detail["user"].full_name or "", **(values or {})}
    try:
        allowance = policies.allowance(db, detail["user"])
    except DomainError as exc:  # the user's policy does not exist: say so instead of the table
        allowance = {"problem": exc.detail}
    return render(request, "account.html", {**detail, "errors": errors or {}, "values": shown,
                                            "allowance": allowance}, status=status)


@router.get("/ui/account")
def account_page(request: Request, principal: Me, db: DB) -> Response:
    return _page(request, principal, db)


@router.post("/ui/account/password")
def change_password(request: Request, principal: Me, db: DB, state: State,
                    current_password: Annotated[str, Form()] = "", new_password: Annotated[str, Form()] = "",
                    new_password_confirm: Annotated[str, Form()] = "") -> Response:
    if new_password != new_password_confirm:
        return _page(request, principal, db, 422, {"new_password_confirm": ["does not match the new password"]})
    try:
        identity.change_own_password(db, principal, current_password, new_password, client_address(request),
                                     throttle.password_confirmations(state))
    except DomainError as exc:
        if not exc.errors:
            raise
        # Returned, not raised: a wrong current password is audited, so this request must commit.
        return _page(request, principal, db, exc.status, field_errors(exc.errors))
    return redirect("/ui/account", notice="Password changed. Your other sessions were signed out.")


@router.post("/ui/account/profile")
def change_profile(request: Request, principal: Me, db: DB, state: State, username: Annotated[str, Form()] = "",
                   full_name: Annotated[str, Form()] = "") -> Response:
    """The user's own username and full name (identity.update_user decides and audits, as for the API); a service
    account's name is not changed here."""
    user = identity.find_person(db, principal.id)
    changes: dict = {}
    if username.strip() != user.username:
        changes["username"] = username
    if (full_name.strip() or None) != user.full_name:
        changes["full_name"] = full_name.strip() or None
    if not changes:
        return redirect("/ui/account", notice="Nothing changed.")
    try:
        identity.update_user(db, principal, user, changes, client_address(request),
                             throttle.password_confirmations(state))
    except DomainError as exc:
        if not exc.errors:
            raise
        return _page(request, principal, db, exc.status, field_errors(exc.errors),
                     {"username": username, "full_name": full_name})
    return redirect("/ui/account", notice=f"Profile saved. You are signed in as {user.username}.")
