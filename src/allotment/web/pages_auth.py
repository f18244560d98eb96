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
    return render(request, "login.html", {"next": safe_next(next), "username": "", **_sso_context(request)},
                  principal=None)


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
                                                  "error": exc.detail, **_sso_context(request)},
                          status=exc.status, principal=None)
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


# --- single sign-on: the browser's side of a login through an identity provider (federation/flow.py) -------------

SSO_STATE_COOKIE = "allot_sso_state"
SSO_COOKIE_PATH = "/login/sso"


def _sso_context(request: Request) -> dict:
    """The login page's provider buttons, and whether its password form is shown."""
    from allotment.federation import connections, password_policy

    with request.app.state.allot.sessions() as session:
        buttons = [{"id": c.id, "name": c.name} for c in connections.list_connections(session, active_only=True)]
        password_login = password_policy.view(session)["enabled"]
    return {"sso_providers": buttons, "password_login": password_login}


def _sso_error(request: Request, message: str, status: int) -> Response:
    request.state.principal = None  # the login card shows the error, whoever the browser was signed in as
    return render(request, "login.html", {"next": "/ui/", "username": "", "error": message, **_sso_context(request)},
                  status=status, principal=None)


def _cli_values(port: int | None, cli_state: str | None, challenge: str | None) -> dict | None:
    """The CLI's loopback login: its port on 127.0.0.1, its own state and its PKCE challenge (S256)."""
    if port is None and not cli_state and not challenge:
        return None
    if port is None or not 1024 <= port <= 65535 or not cli_state or not challenge or len(challenge) != 43 \
            or len(cli_state) > 100 or not cli_state.replace("-", "").replace("_", "").isalnum():
        raise DomainError("cli_port (1024-65535), cli_state and cli_challenge (S256, 43 characters) go together")
    return {"port": port, "state": cli_state, "challenge": challenge}


@router.get("/login/sso/callback", dependencies=[require(PUBLIC)])
async def sso_callback(request: Request, state: State, code: str | None = None, error: str | None = None,
                       error_description: str | None = None) -> Response:
    from allotment.federation import flow

    login_state = request.query_params.get("state")
    return await _sso_finish(request, state, flow.finish_oauth, login_state, code, error, error_description,
                             client_address(request), request.cookies.get(SSO_STATE_COOKIE))


@router.post("/login/sso/acs", dependencies=[require(PUBLIC)])
async def sso_acs(request: Request, state: State, SAMLResponse: Annotated[str, Form()] = "",
                  RelayState: Annotated[str, Form()] = "") -> Response:
    from allotment.federation import flow

    return await _sso_finish(request, state, flow.finish_saml, RelayState or None, SAMLResponse or None,
                             client_address(request))


async def _sso_finish(request: Request, state, finish, *args) -> Response:
    """Run the provider's answer through the flow (off the event loop: it calls the provider) under the same
    per-source limit as password sign-ins, and answer the browser by purpose."""
    from fastapi.concurrency import run_in_threadpool

    from allotment.identity import throttle

    limiter = throttle.login_limiter(state)
    key = throttle.source_key(client_address(request))
    wait = limiter.take(key)
    if wait:
        return _sso_error(request, f"too many failed sign-ins from {key}; try again in "
                                   f"{throttle.retry_after(wait)} s", 429)
    try:
        finished = await run_in_threadpool(finish, state, *args)
    except DomainError as exc:
        return _sso_error(request, exc.detail, exc.status)
    limiter.give_back(key)
    if finished.purpose == "test":
        response = redirect(f"/ui/sso/tests/{finished.test_id}")
    elif finished.purpose == "cli":
        response = redirect(finished.cli_redirect)
    else:
        response = redirect(safe_next(finished.next))
        response.set_cookie(SESSION_COOKIE, finished.token, httponly=True, samesite="lax",
                            max_age=state.settings.session_hours * 3600, path="/")
    response.delete_cookie(SSO_STATE_COOKIE, path=SSO_COOKIE_PATH)
    return response


@router.get("/login/sso/{connection_id:int}/metadata", dependencies=[require(PUBLIC)])
def sso_metadata(request: Request, state: State, connection_id: int) -> Response:
    """Our SAML service provider metadata, for the identity provider's side of the connection."""
    from allotment.federation import connections, saml
    from allotment.federation.models import SAML
    from allotment.federation.oidc import ProviderError

    with state.sessions() as session:
        connection = connections.find_connection(session, connection_id)
        if connection.protocol != SAML:
            raise DomainError(f"connection {connection.name} is not a SAML connection", status=404,
                              title="Not found", code="not_found")
        shown = connections.view(state.secret_key, connection, str(request.base_url))
        secrets = connections.secrets_of(state.secret_key, connection)
    try:
        xml = saml.sp_metadata(connection.settings, secrets, shown["sp_entity_id"], shown["acs_url"])
    except ProviderError as exc:
        raise DomainError(str(exc), status=503, title="Service unavailable", code="saml_unavailable") from exc
    return Response(xml, media_type="application/samlmetadata+xml")


@router.get("/login/sso/{connection_id:int}", dependencies=[require(PUBLIC)])
async def sso_start(request: Request, state: State, connection_id: int, next: str | None = None,
                    cli_port: int | None = None, cli_state: str | None = None,
                    cli_challenge: str | None = None) -> Response:
    """Leave for the provider. The state goes into a cookie too, so that only this browser can finish the login."""
    from fastapi.concurrency import run_in_threadpool

    from allotment.federation import connections, flow
    from allotment.federation.oidc import ProviderError

    try:
        cli = _cli_values(cli_port, cli_state, cli_challenge)
        with state.sessions() as session:
            connection = connections.find_connection(session, connection_id)
            if not connection.active:
                raise DomainError(f"sign-in through {connection.name} is turned off", status=403, title="Forbidden",
                                  code="forbidden")
            draft = flow.draft_of(state.secret_key, connection)
        url, login_state, _ = await run_in_threadpool(flow.begin, state, draft, flow.CLI if cli else flow.CONSOLE,
                                                      str(request.base_url), safe_next(next), cli)
    except DomainError as exc:
        return _sso_error(request, exc.detail, exc.status)
    except ProviderError as exc:
        return _sso_error(request, f"cannot sign in through this provider now: {exc}", 502)
    response = redirect(url)
    response.set_cookie(SSO_STATE_COOKIE, login_state, httponly=True, samesite="lax", max_age=600,
                        path=SSO_COOKIE_PATH)
    return response
