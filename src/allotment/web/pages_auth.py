"""Sign in and out of the console. The throttles, password check, lockout and session are identity.sign_in's."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response

from allotment.api.deps import DB, SESSION_COOKIE, State, client_address, optional_principal, require
from allotment.core.permissions import AUTHENTICATED, PUBLIC, Principal
from allotment.errors import DomainError
from allotment.identity.service_sessions import end_session
from allotment.identity.sign_in import password_sign_in
from allotment.web.console import check_login_csrf, redirect, render, safe_next

router = APIRouter()


def _signed_in(request: Request) -> Principal | None:
    try:
        return optional_principal(request)
    except DomainError:
        return None  # an ended session on the login page simply means "not signed in"


@router.get("/", dependencies=[require(PUBLIC)])
def home() -> Response:
    return redirect("/ui/")


@router.get("/login", dependencies=[require(PUBLIC)])
def login_page(request: Request, next: str | None = None) -> Response:
    if _signed_in(request) is not None:
        return redirect(safe_next(next))
    return render(request, "login.html", {"next": safe_next(next), "username": ""}, principal=None)


@router.post("/login", dependencies=[require(PUBLIC), Depends(check_login_csrf)])
async def login_submit(
    request: Request,
    state: State,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/ui/",
) -> Response:
    s = state.settings
    try:
        # The API's sign-in: the same per-source limit, the same bound on argon2 work, the same one answer.
        signed_in = await password_sign_in(state, username, password, client_address(request))
    except DomainError as exc:
        response = render(request, "login.html", {"next": safe_next(next), "username": username,
                                                  "error": exc.detail}, status=exc.status, principal=None)
        response.headers.update(getattr(exc, "headers", None) or {})  # Retry-After when throttled
        return response
    if signed_in.need_password_change:  # Backend.AI's flag is descriptive: a reminder on the account page, no block
        response = redirect("/ui/account", notice="Your administrator asks you to choose a new password.")
    else:
        response = redirect(safe_next(next))
    response.set_cookie(SESSION_COOKIE, signed_in.token, httponly=True, samesite="lax",
                        max_age=s.session_hours * 3600, path="/")
    return response


@router.post("/logout")
def logout(principal: Annotated[Principal, require(AUTHENTICATED)], db: DB) -> Response:
    if principal.session_id is not None:
        end_session(db, principal.session_id)
    response = redirect("/login", notice="You have signed out.")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
