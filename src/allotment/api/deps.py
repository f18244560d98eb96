"""Request dependencies: the unit of work, the current principal and the permission a route declares."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session

from allotment.api.state import AppState
from allotment.core.permissions import Permission, Principal, Scope, allowed
from allotment.db import transaction
from allotment.errors import Forbidden, NotFound, Unauthenticated

SESSION_COOKIE = "allot_session"
ON_BEHALF_HEADER = "x-allot-on-behalf-of"


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
