"""Map every error onto RFC 9457 problem+json; no stack trace ever reaches a client."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from allotment.errors import DomainError

log = logging.getLogger("allotment.api")
PROBLEM = "application/problem+json"


def problem(status: int, title: str, detail: str, code: str, errors: list[dict] | None = None, **extra) -> JSONResponse:
    body = {"type": f"urn:allotment:problem:{code}", "title": title, "status": status, "detail": detail, "code": code}
    if errors:
        body["errors"] = errors
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM)


def _field_path(loc: tuple) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "cookie")]
    return ".".join(parts) or str(loc[-1] if loc else "request")


def install(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(_: Request, exc: DomainError) -> JSONResponse:
        response = problem(exc.status, exc.title, exc.detail, exc.code, [e.as_dict() for e in exc.errors])
        response.headers.update(getattr(exc, "headers", None) or {})  # Retry-After of a 429 (errors.TooManyRequests)
        return response

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        for err in exc.errors():
            message = str(err.get("msg", "invalid value"))
            message = message.removeprefix("Value error, ")
            errors.append({"field": _field_path(tuple(err.get("loc", ()))), "message": message})
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors) or "invalid request"
        return problem(422, "Validation failed", detail, "validation_failed", errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        titles = {404: "Not found", 405: "Method not allowed", 401: "Unauthorized", 403: "Forbidden"}
        return problem(exc.status_code, titles.get(exc.status_code, "Error"), str(exc.detail), f"http_{exc.status_code}")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(500, "Internal server error", "the server failed to handle this request; see the server log",
                       "internal")
