"""Identity API: login, logout, whoami. (Users, groups, credentials and service accounts are added here too.)"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request, Response

from allotment.api.deps import DB, SESSION_COOKIE, State, client_address, require
from allotment.core.permissions import AUTHENTICATED, PUBLIC, Principal
from allotment.identity.schemas import LoginRequest, LoginResponse, WhoAmI
from allotment.identity.service_sessions import end_session
from allotment.identity.sign_in import password_sign_in

router = APIRouter(tags=["auth"])

# The identity API is split by subject; each module below (when present) exposes `router`.
SUBMODULES = ["routes_users", "routes_groups", "routes_credentials", "routes_service_accounts",
              "routes_cluster_roles", "routes_exports"]


@router.post("/auth/login", response_model=LoginResponse, dependencies=[require(PUBLIC)])
async def login(body: LoginRequest, request: Request, response: Response, state: State) -> LoginResponse:
    # Async: the sign-in waits for its turn at argon2 in the event loop, not on a worker thread (see sign_in.py).
    s = state.settings
    signed_in = await password_sign_in(state, body.username, body.password, client_address(request))
    response.set_cookie(SESSION_COOKIE, signed_in.token, httponly=True, samesite="lax", max_age=s.session_hours * 3600)
    return LoginResponse(token=signed_in.token, expires_at=signed_in.expires_at, username=signed_in.username)


@router.post("/auth/logout", status_code=204, dependencies=[])
def logout(principal: Annotated[Principal, require(AUTHENTICATED)], db: DB, response: Response) -> Response:
    if principal.session_id is not None:
        end_session(db, principal.session_id)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get("/auth/whoami", response_model=WhoAmI)
async def whoami(principal: Annotated[Principal, require(AUTHENTICATED)]) -> WhoAmI:
    # Async and without a database session: everything shown comes with the (cached) principal.
    names = principal.cluster_names
    return WhoAmI(
        id=principal.id, kind=principal.kind, username=principal.username,
        is_platform_admin=principal.is_platform_admin,
        cluster_roles={names.get(cid, str(cid)): role for cid, role in principal.cluster_roles.items()},
        groups=sorted(principal.group_names), acting_as=principal.username if principal.actor_id else None,
        actor=principal.actor_username,
    )




def _include_submodules() -> None:
    import importlib
    import importlib.util

    for name in SUBMODULES:
        module = f"allotment.identity.{name}"
        if importlib.util.find_spec(module) is not None:
            router.include_router(importlib.import_module(module).router)


_include_submodules()
