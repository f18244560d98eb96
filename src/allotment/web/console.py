"""What every console page shares: templates, the navigation, CSRF tokens, one-shot notices and error pages.

The console authenticates with the same `allot_session` cookie as the API and authorises with the same `require(...)`
dependency; this module only turns the outcomes into HTML (a redirect to /login, a 403 page, field errors).
"""

from __future__ import annotations

import hmac
import logging
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import quote, unquote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from allotment import __version__
from allotment.api.deps import SESSION_COOKIE, app_state
from allotment.core.permissions import AUTHENTICATED, PLATFORM_ADMIN, Permission, Principal, allowed
from allotment.errors import FieldError, Forbidden, NotFound, invalid
from allotment.identity.secrets import session_csrf_token
from allotment.web.formatting import amounts_of, memory_text

log = logging.getLogger("allotment.web")

TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")
PRE_SESSION_COOKIE = "allot_csrf"  # protects the login form itself (login CSRF), before there is a session
NOTICE_COOKIE = "allot_notice"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
# Posts that come from elsewhere by design and carry their own proof instead of the console's form token: the SAML
# IdP's answer is signed by the IdP and must answer a request this server issued (federation/saml.py). An IdP on the
# same site as the console posts it with the session cookie attached.
CSRF_EXEMPT = frozenset({"/login/sso/acs"})
CONSOLE_PREFIXES = ("/ui", "/login", "/logout")


@dataclass(frozen=True)
class NavItem:
    label: str
    href: str
    permission: Permission
    section: str


# The sidebar; an item shows only when the policy allows its permission, the same one its page declares.
NAV = [
    NavItem("Dashboard", "/ui/", AUTHENTICATED, "Overview"),
    NavItem("Jobs", "/ui/jobs", AUTHENTICATED, "Overview"),
    NavItem("Quotas", "/ui/quotas", AUTHENTICATED, "Overview"),
    NavItem("Usage", "/ui/usage", AUTHENTICATED, "Overview"),
    NavItem("Clusters & pools", "/ui/clusters", AUTHENTICATED, "Overview"),
    NavItem("Resource policies", "/ui/resource-policies", AUTHENTICATED, "Overview"),
    NavItem("Priority classes", "/ui/priority-classes", AUTHENTICATED, "Overview"),
    NavItem("Workspaces", "/ui/workspaces", AUTHENTICATED, "Overview"),
    NavItem("Projects", "/ui/projects", AUTHENTICATED, "Overview"),
    NavItem("Access rules", "/ui/access-rules", AUTHENTICATED, "Overview"),
    NavItem("Folders", "/ui/folders", AUTHENTICATED, "Overview"),
    NavItem("Storage targets", "/ui/storage-targets", AUTHENTICATED, "Overview"),
    NavItem("Profile & password", "/ui/account", AUTHENTICATED, "Account"),
    NavItem("Credentials", "/ui/credentials", AUTHENTICATED, "Account"),
    NavItem("Configuration vaults", "/ui/vaults", AUTHENTICATED, "Account"),
    NavItem("Hide-list", "/ui/hide-list", AUTHENTICATED, "Account"),
    NavItem("Users", "/ui/users", PLATFORM_ADMIN, "Administration"),
    NavItem("Groups", "/ui/groups", PLATFORM_ADMIN, "Administration"),
    NavItem("Service accounts", "/ui/service-accounts", PLATFORM_ADMIN, "Administration"),
    NavItem("Storage hosts", "/ui/storage-hosts", PLATFORM_ADMIN, "Administration"),
    NavItem("Audit log", "/ui/audit", PLATFORM_ADMIN, "Administration"),
    NavItem("Single sign-on", "/ui/sso", PLATFORM_ADMIN, "Administration"),
    NavItem("SCIM provisioning", "/ui/scim", PLATFORM_ADMIN, "Administration"),
    NavItem("About", "/ui/about", AUTHENTICATED, "Help"),
]


def is_console_request(request: Request) -> bool:
    path = request.url.path
    return path == "/" or path.startswith(CONSOLE_PREFIXES)


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def csrf_token(request: Request) -> str:
    """Per session: an HMAC of the session cookie. Before login: a random value kept in a cookie (double submit)."""
    session = request.cookies.get(SESSION_COOKIE)
    if session:
        return session_csrf_token(app_state(request).secret_key, session)
    token = request.cookies.get(PRE_SESSION_COOKIE) or getattr(request.state, "new_pre_session_csrf", None)
    if not token:
        token = secrets.token_urlsafe(32)
        request.state.new_pre_session_csrf = token
    return token


async def check_csrf(request: Request) -> None:
    """Router-wide: an unsafe request carrying the session cookie must carry this session's token too.

    Requests without the cookie are anonymous to the console (the permission check turns them away) or authenticate
    with an Authorization header, which a foreign site cannot make a browser send. The login form checks its
    pre-session token itself (see `check_login_csrf`).
    """
    if request.method in ("GET", "HEAD", "OPTIONS") or "authorization" in request.headers:
        return
    if not request.cookies.get(SESSION_COOKIE) or request.url.path in CSRF_EXEMPT:
        return
    await _compare(request, csrf_token(request))


async def check_login_csrf(request: Request) -> None:
    expected = request.cookies.get(SESSION_COOKIE) and csrf_token(request) or request.cookies.get(PRE_SESSION_COOKIE)
    await _compare(request, expected)


async def _compare(request: Request, expected: str | None) -> None:
    provided = request.headers.get(CSRF_HEADER)
    if provided is None:
        provided = (await request.form()).get(CSRF_FIELD)
    if not expected or not isinstance(provided, str) or not hmac.compare_digest(expected, provided):
        raise Forbidden("this form has expired or did not come from this console; reload the page and try again")


def field_errors(errors: list[FieldError]) -> dict[str, list[str]]:
    """A service's FieldErrors by field, for the messages under each input."""
    by_field: dict[str, list[str]] = {}
    for error in errors:
        by_field.setdefault(error.field, []).append(error.message)
    return by_field


def form_lookup(field: str, find, *args):
    """`find(*args)` for a name typed into a form's `field`: an unknown name is that field's error (shown under it),
    not a page that does not exist."""
    try:
        return find(*args)
    except NotFound as exc:
        raise invalid(field, exc.detail) from None


def set_notice(response: Response, message: str) -> None:
    """A one-line message shown once on the next page (after a redirect)."""
    response.set_cookie(NOTICE_COOKIE, quote(message), max_age=60, httponly=True, samesite="lax", path="/")


ONCE_TTL_S = 300
_once_lock = threading.Lock()


def stash_once(request: Request, owner_id: int, payload: dict) -> str:
    """Keep `payload` (a secret just created) in this server's memory for the page that follows a POST's redirect.

    Post/redirect/get: the POST stores the result and redirects to a GET that takes it once, so reloading shows the
    list, not the secret, and creates nothing. Only the same principal can take it, within ONCE_TTL_S.
    """
    store: dict = request.app.state.allot.extras.setdefault("console_once", {})
    token = secrets.token_urlsafe(16)
    now = time.monotonic()
    with _once_lock:
        for key in [k for k, (_, expires, _) in store.items() if expires < now]:
            del store[key]
        store[token] = (owner_id, now + ONCE_TTL_S, payload)
    return token


def take_once(request: Request, owner_id: int, token: str | None) -> dict | None:
    if not token:
        return None
    store: dict = request.app.state.allot.extras.setdefault("console_once", {})
    with _once_lock:
        entry = store.get(token)
        if entry is None or entry[0] != owner_id or entry[1] < time.monotonic():
            return None
        del store[token]
    return entry[2]


def _notice(request: Request) -> str | None:
    raw = request.cookies.get(NOTICE_COOKIE)
    return unquote(raw)[:300] if raw else None


def nav_for(principal: Principal | None, current: str) -> list[tuple[str, list[dict]]]:
    sections: dict[str, list[dict]] = {}
    for item in NAV:
        if allowed(principal, item.permission):
            active = current == item.href or (item.href != "/ui/" and current.startswith(item.href))
            sections.setdefault(item.section, []).append({"label": item.label, "href": item.href, "active": active})
    return list(sections.items())


def render(request: Request, template: str, context: dict | None = None, status: int = 200,
           principal: Principal | None = None) -> HTMLResponse:
    principal = principal if principal is not None else getattr(request.state, "principal", None) or None
    ctx = {
        "principal": principal,
        "nav": nav_for(principal, request.url.path),
        "csrf_token": csrf_token(request),
        "version": __version__,
        "vendor": request.app.state.allot.extras.get("console_vendor", False),
    }
    ctx.update(context or {})
    ctx.setdefault("notice", _notice(request))
    response = TEMPLATES.TemplateResponse(request, template, ctx, status_code=status)
    if NOTICE_COOKIE in request.cookies:  # shown once
        response.delete_cookie(NOTICE_COOKIE, path="/")
    # Console pages are never framed (clickjacking) and never leak their URLs to other sites.
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = "frame-ancestors 'none'"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Content-Type-Options"] = "nosniff"
    new_token = getattr(request.state, "new_pre_session_csrf", None)
    if new_token:
        response.set_cookie(PRE_SESSION_COOKIE, new_token, httponly=True, samesite="lax", path="/")
    return response


def redirect(url: str, notice: str | None = None, request: Request | None = None) -> Response:
    """303 after a form POST; for htmx requests the HX-Redirect header makes the browser follow it."""
    if request is not None and is_htmx(request):
        response: Response = Response(status_code=200, headers={"HX-Redirect": url})
    else:
        response = RedirectResponse(url, status_code=303)
    if notice:
        set_notice(response, notice)
    return response


def safe_next(target: str | None) -> str:
    """Only local paths: an open redirect after login would help phishing."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/ui/"


def fmt_time(value: datetime | None) -> str:
    if value is None:
        return "—"
    return value.strftime("%Y-%m-%d %H:%M UTC")


TEMPLATES.env.filters["when"] = fmt_time


def field_message(message: str, label: str) -> str:
    """A service's message about one field, as shown under it. Services word most as clauses that read after the
    field's name ("must be at least 8 characters long"); some already start with it ("e-mail a@b.c is already
    registered"), and those are not prefixed a second time."""
    words = message.strip()
    name = label.strip().lower()
    if name and words.lower().startswith((name + " ", name.replace("-", "") + " ", name.replace(" ", "_") + " ")):
        return words[:1].upper() + words[1:]
    return f"{label} {words}"


TEMPLATES.env.filters["field_message"] = field_message
TEMPLATES.env.filters["amounts"] = amounts_of
TEMPLATES.env.filters["memory"] = memory_text


def url_segment(value) -> str:
    """One path segment of a console URL. Jinja's urlencode keeps '/', so a name holding '../' or '?' could point
    a button at another action; here everything but unreserved characters is escaped."""
    return quote(str(value), safe="")


TEMPLATES.env.filters["segment"] = url_segment
