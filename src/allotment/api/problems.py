"""Map every error onto RFC 9457 problem+json; no stack trace ever reaches a client."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from allotment.errors import DomainError, NotFound

log = logging.getLogger("allotment.api")
PROBLEM = "application/problem+json"


def problem(status: int, title: str, detail: str, code: str, errors: list[dict] | None = None, **extra) -> JSONResponse:
    body = {"type": f"urn:allotment:problem:{code}", "title": title, "status": status, "detail": detail, "code": code}
    if errors:
        body["errors"] = errors
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM)


def _field_path(loc: tuple) -> str:
    # A key can hold an unpaired surrogate (an extra JSON key on a model that forbids extra fields), which no
    # response could encode: such characters are written as escapes.
    parts = [str(p).encode("utf-8", "backslashreplace").decode() for p in loc
             if p not in ("body", "query", "path", "header", "cookie")]
    return ".".join(parts) or str(loc[-1] if loc else "request")


def install(app: FastAPI) -> None:
    install_openapi(app)

    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> JSONResponse:
        if isinstance(exc, NotFound) and (allow := shadowed_resource_methods(request)):
            return method_not_allowed(allow)
        response = problem(exc.status, exc.title, exc.detail, exc.code, [e.as_dict() for e in exc.errors])
        response.headers.update(getattr(exc, "headers", None) or {})  # Retry-After of a 429 (errors.TooManyRequests)
        return response

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        if any(err.get("loc", ("",))[0] == "path" for err in exc.errors()) and (
                allow := shadowed_resource_methods(request)):
            return method_not_allowed(allow)
        errors = []
        for err in exc.errors():
            message = str(err.get("msg", "invalid value"))
            message = message.removeprefix("Value error, ")
            errors.append({"field": _field_path(tuple(err.get("loc", ()))), "message": message})
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors) or "invalid request"
        return problem(422, "Validation failed", detail, "validation_failed", errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        titles = {404: "Not found", 405: "Method not allowed", 401: "Unauthorized", 403: "Forbidden"}
        response = problem(exc.status_code, titles.get(exc.status_code, "Error"), str(exc.detail),
                           f"http_{exc.status_code}")
        response.headers.update(exc.headers or {})
        if exc.status_code == 405:
            # RFC 9110 requires Allow on a 405. Starlette names only the methods of the one route it tried, and
            # FastAPI's included routers name none, so it is worked out from the routes serving this path.
            response.headers["Allow"] = ", ".join(allowed_methods(request))
        return response

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(500, "Internal server error", "the server failed to handle this request; see the server log",
                       "internal")


def method_not_allowed(allow: list[str]) -> JSONResponse:
    response = problem(405, "Method not allowed", "Method Not Allowed", "http_405")
    response.headers["Allow"] = ", ".join(allow)
    return response


def _path_routes(request: Request) -> list[tuple[int, set[str]]]:
    """(number of path parameters, methods) of every route whose path template matches the request's path."""
    scope = {**request.scope, "method": "\0"}  # a method no route serves: every path match is a partial one
    found = []
    for route in iter_route_contexts(request.app.routes):
        methods = route.methods
        if methods and route.path and route.matches(scope)[0] == Match.PARTIAL:
            found.append((route.path.count("{"), set(methods)))
    return found


def allowed_methods(request: Request) -> list[str]:
    """The methods of the resource at the request's path. Where templates overlap (/jobs/batch and /jobs/{job_id}),
    the resource is the one with the fewest parameters, the literal one, as the OpenAPI document describes it."""
    routes = _path_routes(request)
    if not routes:
        return []
    fewest = min(params for params, _ in routes)
    methods = set().union(*(m for params, m in routes if params == fewest))
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)


def shadowed_resource_methods(request: Request) -> list[str] | None:
    """The Allow list when the request reached a parameterised route only because a literal one beside it does not
    serve its method (GET /jobs/batch reaching /jobs/{job_id}): the path names the literal resource, so the answer is
    405, not the parameterised route's 404 or 422. Worked out on those error paths only, never on a normal request."""
    matched = request.scope.get("route")
    path = getattr(matched, "path", None)
    if not path or "{" not in path:
        return None
    routes = _path_routes(request)
    if not routes or min(params for params, _ in routes) >= path.count("{"):
        return None
    return allowed_methods(request)


# --- The error responses in the OpenAPI document -----------------------------------------------------------------
# FastAPI documents only the success response and its own 422 (as application/json, which the handler above never
# sends). Every error the API really returns is declared here, in one pass over the generated document, from what
# each route declares: its permission (signed in or not), its path parameters, its body and its method.

PROBLEM_SCHEMA = {
    "title": "Problem",
    "description": "An RFC 9457 problem: every error the API returns has this shape.",
    "type": "object",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string", "description": "urn:allotment:problem:CODE"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string", "description": "one sentence naming the problem"},
        "code": {"type": "string", "description": "a stable machine-readable code"},
        "errors": {
            "type": "array",
            "description": "one entry per refused field",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}

ERROR_DESCRIPTIONS = {
    400: "The request could not be read (a malformed body)",
    401: "Not signed in, or the token or credential is invalid, expired or revoked",
    403: "Signed in but not allowed to do this",
    404: "An object the request names does not exist (or is not visible to the caller)",
    409: "The request conflicts with the current state (a duplicate name, an object still in use)",
    413: "The request body or one of its fields is larger than the server accepts",
    422: "The request is well-formed but invalid; `errors` names every refused field",
    429: "Too many requests from this source; retry after the number of seconds in Retry-After",
}
UNSAFE_METHODS = {"post", "put", "patch", "delete"}
SECURITY_SCHEMES = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "A session token from POST /api/v1/auth/login, or ACCESS_KEY:SECRET of an API credential. "
                       "The console's session cookie is accepted too.",
    },
}
# Sign-in answers with the errors of a failed password check too: wrong credentials (401, also for a locked account)
# and per-source throttling (429). Signed-in operations that confirm a password (a password change) need nothing
# more: a wrong current password is a 403 and too many of them a 429, which every signed-in operation declares.
PASSWORD_CHECK_ERRORS = {
    ("post", "/api/v1/auth/login"): {401, 429},
}


def route_permissions(app: FastAPI) -> dict[tuple[str, str], object]:
    """(lower-case method, path) -> the Permission the route declares through `require`."""
    found: dict[tuple[str, str], object] = {}

    def permission_of(dependant):
        for dep in dependant.dependencies:
            permission = getattr(dep.call, "permission", None) or permission_of(dep)
            if permission is not None:
                return permission
        return None

    for route in iter_route_contexts(app.routes):
        dependant = getattr(route, "dependant", None)
        if dependant is None or not route.path:
            continue
        permission = permission_of(dependant)
        for method in route.methods or ():
            found[(method.lower(), route.path)] = permission
    return found


def operation_errors(method: str, path: str, operation: dict, permission, object_params: set[str]) -> set[int]:
    """The error statuses an operation can return, from what its route declares. `object_params` are the names that
    path parameters use for objects (cluster, user, quota...): a query parameter of such a name names an object too."""
    params = operation.get("parameters", [])
    has_body = "requestBody" in operation
    codes = set(PASSWORD_CHECK_ERRORS.get((method, path), ()))
    if params or has_body:
        codes.add(422)
    if has_body:
        codes |= {400, 413}
    if permission is not None and permission.kind == "public":
        return codes  # health, metrics and sign-in: no object named, nothing shared changed, no caller to refuse
    if has_body or any(p.get("in") == "path" or p.get("name") in object_params for p in params):
        codes.add(404)  # a path or a query parameter names an object; a body may name others (quota, pool, user)
    if method in UNSAFE_METHODS and (params or has_body):
        codes.add(409)
    return codes | {401, 403, 429}  # 429: failed credential attempts are throttled per source


def problem_response(status: int) -> dict:
    response: dict = {
        "description": ERROR_DESCRIPTIONS[status],
        "content": {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }
    if status == 429:
        response["headers"] = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}}
    return response


def declare_errors(document: dict, permissions: dict[tuple[str, str], object]) -> dict:
    """Add the Problem schema, the bearer security scheme and each operation's error responses to `document`."""
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas["Problem"] = PROBLEM_SCHEMA
    components["securitySchemes"] = SECURITY_SCHEMES
    object_params = {param["name"] for item in document.get("paths", {}).values() for operation in item.values()
                     if isinstance(operation, dict) for param in operation.get("parameters", [])
                     if param.get("in") == "path"}
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            if method not in {"get", "put", "post", "delete", "options", "head", "patch", "trace"}:
                continue
            permission = permissions.get((method, path))
            if permission is not None and permission.kind != "public":
                operation["security"] = [{"bearer": []}]
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)  # FastAPI's HTTPValidationError, sent as application/json: not what we send
            for status in sorted(operation_errors(method, path, operation, permission, object_params)):
                responses.setdefault(str(status), problem_response(status))
    # FastAPI's validation error schemas are no longer referenced.
    for unused in ("HTTPValidationError", "ValidationError"):
        if unused in schemas and f"#/components/schemas/{unused}" not in str(document.get("paths")):
            del schemas[unused]
    return document


def install_openapi(app: FastAPI) -> None:
    """Make app.openapi() (served at openapi_url) return the document with its error responses declared."""
    generate = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            app.openapi_schema = declare_errors(generate(), route_permissions(app))
        return app.openapi_schema

    app.openapi = openapi
