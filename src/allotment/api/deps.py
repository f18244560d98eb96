"""Request dependencies: the unit of work, the current principal and the permission a route declares."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session

from allotment.api.state import AppState
from allotment.core.permissions import Permission, Principal, Scope, allowed
from allotment.db import transaction
from allotment.errors import Forbidden, NotFound, Unauthenticated
from allotment.identity.secrets import digests_equal, session_csrf_token

SESSION_COOKIE = "allot_session"
ON_BEHALF_HEADER = "x-allot-on-behalf-of"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
DEFAULT_PORTS = {"http": 80, "https": 443}


def app_state(request: Request) -> AppState:
    return request.app.state.allot


def _db(request: Request) -> Iterator[Session]:
    """The request owns the transaction: commit when the handler returns, roll back when it raises."""
    with transaction(app_state(request).sessions) as session:
        yield session


DB = Annotated[Session, Depends(_db, scope="function")]
State = Annotated[AppState, Depends(app_state)]


ScopeResolver = Callable[[Request, Session], Scope]


def client_address(request: Request) -> str | None:
    return request.client.host if request.client else None


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        raise Unauthenticated("the Authorization header must be 'Bearer TOKEN'")
    return request.cookies.get(SESSION_COOKIE)


def _origin(url: str) -> tuple[str, str, int | None] | None:
    """(scheme, host, port) of an Origin or Referer value, the default port made explicit; None if unreadable."""
    try:
        parts = urlsplit(url)
        port = parts.port or DEFAULT_PORTS.get(parts.scheme)
    except ValueError:
        return None
    if not parts.scheme or not parts.hostname:
        return None  # includes the opaque origin "null" (sandboxed frames, some redirects)
    return parts.scheme.lower(), parts.hostname.lower(), port


def _same_origin(request: Request) -> bool:
    """Origin (or Referer when the browser sent no Origin) names this server: scheme, host and port alike.

    The port matters: a page served by another port of the same host (a job's notebook) is same-site, so the
    SameSite=Lax cookie goes with its requests, yet it is another origin."""
    claimed = request.headers.get("origin") or request.headers.get("referer")
    if not claimed:
        return False
    return _origin(claimed) is not None and _origin(claimed) == _origin(str(request.base_url))


def check_api_csrf(request: Request) -> None:
    """An unsafe API request that authenticates with the console's session cookie (a browser sends it by itself,
    whichever page asks) must prove it comes from the console: its CSRF token in X-CSRF-Token, or a same-origin
    Origin. Bearer tokens are sent only by code that holds them, so they need neither."""
    if (request.method in SAFE_METHODS or "authorization" in request.headers
            or not request.url.path.startswith("/api/")):
        return
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return
    provided = request.headers.get(CSRF_HEADER)
    if provided is not None:
        if digests_equal(session_csrf_token(app_state(request).secret_key, cookie), provided):
            return
        reason = "its X-CSRF-Token header does not match the session"
    elif _same_origin(request):
        return
    else:
        reason = "it has no X-CSRF-Token header and its Origin (or Referer) is not this server"
    refusal = Forbidden(f"CSRF check failed: this request authenticates with the console's session cookie, but "
                        f"{reason}; send the console's CSRF token or use a bearer token")
    refusal.code = "csrf_failed"
    raise refusal


def optional_principal(request: Request) -> Principal | None:
    """The caller, or None when no token was sent (a bad token raises 401). For synchronous code."""
    cached = getattr(request.state, "principal", False)
    if cached is not False:
        return cached
    from allotment.identity.authn import authenticate  # late: identity imports api.state

    token = bearer_token(request)
    principal = None
    if token:
        principal = authenticate(app_state(request), token, client_address(request),
                                 request.headers.get(ON_BEHALF_HEADER))
    request.state.principal = principal
    return principal


async def principal_of(request: Request) -> Principal | None:
    """optional_principal for the event loop: a warm cache answers inline; only database work goes to a thread.

    The thread hop costs more than the rest of authentication together, and most requests need none.
    """
    cached = getattr(request.state, "principal", False)
    if cached is not False:
        return cached
    from allotment.identity.authn import cached_principal

    token = bearer_token(request)
    if not token:
        request.state.principal = None
        return None
    principal = cached_principal(app_state(request), token, client_address(request),
                                 request.headers.get(ON_BEHALF_HEADER))
    if principal is None:
        return await run_in_threadpool(optional_principal, request)
    request.state.principal = principal
    return principal


def _resolve_scope(request: Request, scope: ScopeResolver) -> Scope:
    """The route's scope. An object that does not exist has no scope: only callers allowed without one (platform
    admins) get past the check and then see the route's 404, so a refusal never reveals whether a thing exists."""
    with app_state(request).sessions() as session:
        try:
            return scope(request, session)
        except NotFound:
            return Scope()


def require(permission: Permission, scope: ScopeResolver | None = None):
    """The dependency every route declares: who may call it. The route enumeration test reads `.permission`.

    Use it as `dependencies=[require(P)]` or `principal: Annotated[Principal, require(P)]`.
    """

    async def dependency(request: Request) -> Principal | None:
        if permission.kind != "public":  # a public route (signing in) does not act as the cookie's user
            check_api_csrf(request)
        principal = await principal_of(request)
        if principal is None and permission.kind != "public":
            raise Unauthenticated()  # before resolving the scope: anonymous callers learn nothing about objects
        resolved = Scope()
        if scope is not None:
            resolved = await run_in_threadpool(_resolve_scope, request, scope)
        if allowed(principal, permission, resolved):
            return principal
        if principal is None:
            raise Unauthenticated()
        raise Forbidden(f"{permission.name.replace('_', ' ')} permission is required")

    dependency.permission = permission  # type: ignore[attr-defined]
    dependency.scope = scope  # type: ignore[attr-defined]
    dependency.__name__ = f"require_{permission.name}"
    return Depends(dependency)


def self_scope(param: str = "user") -> ScopeResolver:
    """Scope for /users/{user}/... routes: the target user, by id or username."""

    def resolve(request: Request, session: Session) -> Scope:
        from allotment.identity.service import find_user_id

        return Scope(user_id=find_user_id(session, request.path_params[param]))

    resolve.kind, resolve.param = "self", param  # type: ignore[attr-defined] - read by the authorisation matrix test
    return resolve


def cluster_scope(param: str = "cluster") -> ScopeResolver:
    def resolve(request: Request, session: Session) -> Scope:
        from allotment.inventory.service import find_cluster_id

        return Scope(cluster_id=find_cluster_id(session, request.path_params[param]))

    resolve.kind, resolve.param = "cluster", param  # type: ignore[attr-defined]
    return resolve


def group_scope(param: str = "group") -> ScopeResolver:
    def resolve(request: Request, session: Session) -> Scope:
        from allotment.identity.groups import find_group

        group = find_group(session, request.path_params[param])
        return Scope(group_id=group.id, builtin_group=group.builtin)

    resolve.kind, resolve.param = "group", param  # type: ignore[attr-defined]
    return resolve
