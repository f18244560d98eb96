"""The SCIM 2.0 endpoints at /scim/v2, served by scim2-server's protocol handling over AllotmentStorage.

Every request but ServiceProviderConfig (RFC 7643 §5) needs a provisioning client's bearer token; the answer is in
SCIM's error format (RFC 7644 §3.12), 401 included. A request that fails changes nothing: its unit of work is
rolled back, so a group created before one of its members was refused does not stay.
"""

from __future__ import annotations

import functools
import json
import logging
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from scim2_models import SCIMException, UnauthorizedException
from scim2_server.handler import ScimHandler
from scim2_server.requests import ScimRequest
from scim2_server.responses import ScimResponse
from scim2_server.service import ScimService

from allotment.api.deps import app_state
from allotment.core.permissions import SCIM_CLIENT
from allotment.db import transaction
from allotment.errors import Unauthenticated
from allotment.federation.scim import admin_routes, clients
from allotment.federation.scim.provider import provider
from allotment.federation.scim.storage import AllotmentStorage

log = logging.getLogger("allotment.scim")

PREFIX = "/scim/v2"
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
UNAUTHENTICATED_PATHS = ("/ServiceProviderConfig",)


class ScimRefusal(Exception):
    def __init__(self, exception: SCIMException):
        self.exception = exception


@functools.cache
def _service() -> ScimService:
    return ScimService(provider())


def _response(response: ScimResponse, url: str) -> Response:
    response.headers.setdefault("Location", url)
    response.headers.setdefault("Cache-Control", "no-cache")
    body = b"" if response.body is None else json.dumps(response.body, default=str).encode()
    return Response(body, status_code=int(response.status), headers=response.headers)


def _with_formatted_name(name: object) -> object:
    """A `name` holding only givenName/familyName (Okta's and Entra ID's default mapping) gains the `formatted`
    allotment keeps as the full name; the parts themselves are not in the schema and are ignored."""
    if isinstance(name, dict) and not name.get("formatted"):
        joined = " ".join(str(name[k]) for k in ("givenName", "familyName") if name.get(k))
        if joined:
            return {**name, "formatted": joined}
    return name


def _full_names_joined(body: bytes) -> bytes:
    """The body with every user `name` given by its parts completed (_with_formatted_name); other bodies as sent."""
    try:
        document = json.loads(body) if body else None
    except ValueError:
        return body  # scim2-server answers the syntax error
    if not isinstance(document, dict):
        return body
    changed = False
    if "name" in document:
        document["name"], changed = _with_formatted_name(document["name"]), True
    for operation in document.get("Operations") or []:
        if not isinstance(operation, dict):
            continue
        value, path = operation.get("value"), str(operation.get("path") or "")
        if path == "name":
            operation["value"], changed = _with_formatted_name(value), True
        elif not path and isinstance(value, dict) and "name" in value:
            value["name"], changed = _with_formatted_name(value["name"]), True
    return json.dumps(document).encode() if changed else body


def _relative_path(request: Request) -> str:
    return request.url.path.removeprefix(PREFIX).removesuffix(".scim") or "/"


def scim_client(request: Request) -> clients.Caller | None:
    """The provisioning client of the request, by its bearer token (None for ServiceProviderConfig)."""
    if _relative_path(request) in UNAUTHENTICATED_PATHS:
        return None
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    state = app_state(request)
    try:
        with transaction(state.sessions) as session:
            return clients.authenticate(session, state.secret_key,
                                        token.strip() if scheme.lower() == "bearer" else None)
    except Unauthenticated as exc:
        raise ScimRefusal(UnauthorizedException(detail=exc.detail)) from None


scim_client.permission = SCIM_CLIENT  # type: ignore[attr-defined] - read by the route enumeration tests
scim_client.scope = None  # type: ignore[attr-defined]


def _serve(state, caller: clients.Caller | None, scim_request: ScimRequest) -> ScimResponse:
    service = _service()
    with transaction(state.sessions) as session:
        storage = AllotmentStorage(session, caller)
        try:
            response = ScimHandler(service, storage).handle(scim_request)
        except SCIMException as exc:
            response = service.error_response(exc)
        except Exception as exc:  # a bug: logged with its traceback, answered without it
            log.exception("SCIM %s %s failed", scim_request.method, scim_request.path)
            response = service.error_response(exc)
        if int(response.status) >= 400:
            session.rollback()
        return response


router = APIRouter(prefix=PREFIX, tags=["scim"])


# Out of the OpenAPI document: SCIM describes itself (ServiceProviderConfig, Schemas, ResourceTypes) and answers in
# its own media type and error format.
@router.api_route("/{path:path}", methods=METHODS, include_in_schema=False)
async def scim(request: Request, caller: Annotated[clients.Caller | None, Depends(scim_client)]) -> Response:
    scim_request = ScimRequest(method=request.method, base_url=str(request.base_url).rstrip("/") + PREFIX,
                               path=_relative_path(request), query=dict(request.query_params),
                               headers=list(request.headers.items()),
                               body=_full_names_joined(await request.body()), subject=caller)
    response = await run_in_threadpool(_serve, app_state(request), caller, scim_request)
    return _response(response, scim_request.url)


def mount(app: FastAPI) -> None:
    """Add the SCIM endpoints, the answer to a refused token (SCIM's error format, not problem+json) and the
    provisioning clients' admin API under /api/v1."""

    async def refused(request: Request, exc: ScimRefusal) -> Response:
        response = _service().error_response(exc.exception)
        response.headers["WWW-Authenticate"] = 'Bearer realm="scim"'
        return _response(response, str(request.url))

    app.add_exception_handler(ScimRefusal, refused)
    app.include_router(router)
    app.include_router(admin_routes.router, prefix="/api/v1")
