"""Errors on console pages become HTML: anonymous -> the login page, anything else -> a friendly page, never a trace.

The API keeps its problem+json handlers: each handler here delegates to the one it replaces for non-console paths.
"""

from __future__ import annotations

import json
import logging
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from allotment.api.deps import SESSION_COOKIE, optional_principal
from allotment.errors import DomainError, FieldError, Forbidden, Unauthenticated, ValidationFailed
from allotment.web.console import field_errors, is_console_request, is_htmx, redirect, render
from allotment.web.form_rerender import KeepFormBody, page_again

log = logging.getLogger("allotment.web")

HTTP_TITLES = {404: "Page not found", 405: "Not allowed here", 403: "Access denied", 401: "Sign-in required"}


def _principal_or_none(request: Request):
    """Who is asking, for the sidebar of an error page; an invalid session just means anonymous here."""
    try:
        return optional_principal(request)
    except DomainError:
        return None


def _sentence(text: str) -> str:
    """Service messages are lower-case clauses (they also end up in CLI output); pages show sentences."""
    text = text.strip()
    return (text[:1].upper() + text[1:] + ("" if text.endswith((".", "!", "?")) else ".")) if text else text


def to_login(request: Request, exc: Unauthenticated) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if request.method != "GET":
        target = "/ui/"
    had_session = SESSION_COOKIE in request.cookies
    response = redirect(f"/login?next={quote(target, safe='/')}",
                        notice=f"Your session has ended ({exc.detail}). Please sign in again." if had_session else None,
                        request=request)
    if had_session:
        response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def error_page(request: Request, status: int, title: str, detail: str) -> Response:
    principal = _principal_or_none(request)
    context = {"status": status, "title": title, "detail": detail}
    if is_htmx(request):
        # Shown in the page's notice area instead of replacing the element that asked.
        response = render(request, "_error_fragment.html", context, status=status, principal=principal)
        response.headers["HX-Retarget"] = "#notice-area"
        response.headers["HX-Reswap"] = "innerHTML"
        return response
    return render(request, "error.html", context, status=status, principal=principal)


def field_errors_response(exc: DomainError) -> Response:
    """An htmx form's field errors: nothing is swapped; console.js puts each message under its input in the form
    that was sent (the `allot:field-errors` event fires on it), so the page and what was typed stay."""
    payload = {"allot:field-errors": {"errors": field_errors(exc.errors), "detail": _sentence(exc.detail)}}
    return Response(status_code=exc.status, headers={"HX-Trigger": json.dumps(payload), "HX-Reswap": "none"})


def body_field_errors(exc: RequestValidationError) -> ValidationFailed | None:
    """A form's values the route could not even read (text in a number field), as field errors; None when something
    else than the form's fields is malformed."""
    errors = []
    for e in exc.errors():
        loc = tuple(e.get("loc", ()))
        if len(loc) != 2 or loc[0] != "body":
            return None
        message = str(e.get("msg", "is not valid"))
        errors.append(FieldError(str(loc[1]), message[:1].lower() + message[1:]))
    if not errors:
        return None
    return ValidationFailed("; ".join(f"{f.field}: {f.message}" for f in errors), errors)


async def form_refused(request: Request, exc: DomainError) -> Response | None:
    """A console form refused for its fields: for htmx, the messages for console.js to place; without htmx, the
    form's page again with the messages under the fields (form_rerender.py); None when neither applies."""
    if not exc.errors or request.method == "GET":
        return None
    if is_htmx(request):
        return field_errors_response(exc)
    return await page_again(request, exc.status, field_errors(exc.errors))


def install(app: FastAPI) -> None:
    app.add_middleware(KeepFormBody)
    api_domain = app.exception_handlers[DomainError]
    api_http = app.exception_handlers[StarletteHTTPException]
    api_validation = app.exception_handlers[RequestValidationError]
    api_unexpected = app.exception_handlers[Exception]

    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError):
        if not is_console_request(request):
            return await api_domain(request, exc)
        if isinstance(exc, Unauthenticated):
            return to_login(request, exc)
        if isinstance(exc, Forbidden):
            return error_page(request, 403, "Access denied", f"You cannot open this: {exc.detail}.")
        again = await form_refused(request, exc)
        if again is not None:
            return again
        return error_page(request, exc.status, exc.title, _sentence(exc.detail))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        if not is_console_request(request):
            return await api_http(request, exc)
        detail = "There is no such page in the console." if exc.status_code == 404 else str(exc.detail)
        return error_page(request, exc.status_code, HTTP_TITLES.get(exc.status_code, "Error"), detail)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        if not is_console_request(request):
            return await api_validation(request, exc)
        refused = body_field_errors(exc)
        again = await form_refused(request, refused) if refused is not None else None
        if again is not None:
            return again
        fields = ", ".join(".".join(str(p) for p in e.get("loc", ())[1:]) or "request" for e in exc.errors())
        return error_page(request, 400, "Bad request", f"The request was incomplete or malformed ({fields}).")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        if not is_console_request(request):
            return await api_unexpected(request, exc)
        log.exception("unhandled error on console page %s %s", request.method, request.url.path)
        return error_page(request, 500, "Something went wrong",
                          "The server could not show this page. The error has been logged; please try again.")
