"""A console form posted without htmx and refused for its fields: its page again, the messages under the fields.

Most form routes render their page again themselves when the service refuses a field. This is the console's
fallback for the ones that do not, and for values the route's parameters cannot even read (a number field given
text): the page the form was sent from (the request's same-origin Referer) is rendered again for the same
principal, and in the form whose action is the refused route, each message is put under its field, the field marked
invalid and what was typed put back. It is what console.js does with an htmx answer (the `allot:field-errors`
event), done on the server, so a browser without JavaScript gets the same page. When the page or the form cannot be
found, the caller shows the error page as before.
"""

from __future__ import annotations

import re
from html import escape
from urllib.parse import parse_qsl, urlsplit

import httpx
from fastapi import Request
from fastapi.responses import HTMLResponse

FORM = re.compile(r"<form\b[^>]*>.*?</form>", re.DOTALL | re.IGNORECASE)
ACTION = re.compile(r"""\baction\s*=\s*["']([^"']*)["']""", re.IGNORECASE)
FORWARDED = ("cookie", "authorization", "accept-language", "user-agent")
KEPT = "allot.posted_form"  # the scope key under which KeepFormBody leaves a console form's body
MAX_KEPT = 256 * 1024


class KeepFormBody:
    """ASGI middleware: keep a copy of a console POST's url-encoded body (what was typed) as it is read, so that
    `page_again` can put the values back; the route reads the body as usual. Multipart bodies (uploads) and large
    ones are not kept: their values are not put back."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("method") != "POST" or not scope.get("path", "").startswith("/ui"):
            return await self.app(scope, receive, send)
        content_type = dict(scope.get("headers") or ()).get(b"content-type", b"")
        if not content_type.startswith(b"application/x-www-form-urlencoded"):
            return await self.app(scope, receive, send)
        chunks: list[bytes] = []
        kept = scope.setdefault("state", {})

        async def keeping():
            message = await receive()
            if message["type"] == "http.request" and sum(map(len, chunks)) <= MAX_KEPT:
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    kept[KEPT] = b"".join(chunks)
            return message

        return await self.app(scope, keeping, send)


def _field_tag(name: str) -> re.Pattern:
    return re.compile(r"<(input|select|textarea)\b[^>]*\bname\s*=\s*[\"']" + re.escape(name) + r"[\"'][^>]*>",
                      re.IGNORECASE)


def _message_box(name: str, messages: list[str]) -> str:
    spans = "".join(f"<span>{escape(m[:1].upper() + m[1:])}</span>" for m in messages)
    ident = escape(re.sub(r"[^\w-]", "-", name))
    return (f'<small class="field-errors" id="{ident}-errors" data-testid="errors-{escape(name)}" '
            f'data-sent="1">{spans}</small>')


def _with_value(tag: str, kind: str, value: str) -> str:
    """An input's opening tag with the typed value (not for passwords, files, boxes or hidden values)."""
    low = tag.lower()
    input_type = re.search(r"""\btype\s*=\s*["']([^"']*)["']""", low)
    if kind != "input" or (input_type and input_type.group(1) in ("password", "file", "checkbox", "radio", "hidden",
                                                                  "submit", "button")):
        return tag
    tag = re.sub(r"""\svalue\s*=\s*("[^"]*"|'[^']*')""", "", tag, flags=re.IGNORECASE)
    return tag[:-1].rstrip("/").rstrip() + f' value="{escape(value)}">'


def mark_form(form_html: str, errors: dict[str, list[str]], values: dict[str, str]) -> str:
    """The form with each field's messages under it (aria-invalid, described by them) and the typed values back;
    messages for a field the form does not show go at its top."""
    out = form_html
    for name, value in values.items():
        pattern = _field_tag(name)
        found = pattern.search(out)
        if found is None:
            continue
        kind = found.group(1).lower()
        if kind == "input":
            out = out[:found.start()] + _with_value(found.group(0), kind, value) + out[found.end():]
        elif kind == "textarea":
            close = out.find("</textarea>", found.end())
            if close != -1:
                out = out[:found.end()] + escape(value) + out[close:]
        elif kind == "select":
            close = out.find("</select>", found.end())
            if close != -1:
                options = re.sub(r"\sselected(=\"[^\"]*\")?", "", out[found.end():close])
                options = re.sub(r"(<option\b[^>]*\bvalue=\"" + re.escape(escape(value)) + r"\")", r"\1 selected",
                                 options, count=1)
                out = out[:found.end()] + options + out[close:]
    loose: list[str] = []
    for name, messages in errors.items():
        found = _field_tag(name).search(out)
        if found is None:
            loose.extend(messages)
            continue
        ident = re.sub(r"[^\w-]", "-", name)
        tag = re.sub(r"\saria-(invalid|describedby)\s*=\s*(\"[^\"]*\"|'[^']*')", "", found.group(0))
        tag = tag[:-1].rstrip("/").rstrip() + f' aria-invalid="true" aria-describedby="{escape(ident)}-errors">'
        end = found.end()
        kind = found.group(1).lower()
        if kind in ("select", "textarea"):
            close = out.find(f"</{kind}>", end)
            end = close + len(f"</{kind}>") if close != -1 else end
        out = (out[:found.start()] + tag + out[found.end():end] + _message_box(name, messages) + out[end:])
    if loose:
        opening = re.match(r"<form\b[^>]*>", out, re.IGNORECASE)
        notice = ('<div class="notice error" role="alert" data-testid="errors-form">'
                  + " ".join(f"<span>{escape(m[:1].upper() + m[1:])}</span>" for m in loose) + "</div>")
        out = out[:opening.end()] + notice + out[opening.end():]
    return out


def mark_page(html: str, action: str, errors: dict[str, list[str]], values: dict[str, str]) -> str | None:
    """The page with the form posting to `action` marked (mark_form); None when the page has no such form."""
    for found in FORM.finditer(html):
        opening = html[found.start():html.index(">", found.start()) + 1]
        target = ACTION.search(opening)
        if target is not None and urlsplit(target.group(1)).path == action:
            return html[:found.start()] + mark_form(found.group(0), errors, values) + html[found.end():]
    return None


def _referring_page(request: Request) -> str | None:
    referer = request.headers.get("referer")
    if not referer:
        return None
    parts = urlsplit(referer)
    if parts.netloc and parts.netloc != request.url.netloc:
        return None
    if not parts.path.startswith("/ui"):
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")


async def page_again(request: Request, status: int, errors: dict[str, list[str]]) -> HTMLResponse | None:
    """The refused form's page rendered again for the same principal, marked; None when it cannot be."""
    page = _referring_page(request)
    if page is None:
        return None
    body = request.scope.get("state", {}).get(KEPT) or b""
    values = {k: v for k, v in parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
              if k != "csrf_token"}
    headers = {k: v for k, v in request.headers.items() if k.lower() in FORWARDED}
    transport = httpx.ASGITransport(app=request.app)
    async with httpx.AsyncClient(transport=transport, base_url=str(request.base_url).rstrip("/")) as client:
        answer = await client.get(page, headers=headers)
    if answer.status_code != 200 or "text/html" not in answer.headers.get("content-type", ""):
        return None
    marked = mark_page(answer.text, request.url.path, errors, values)
    if marked is None:
        return None
    return HTMLResponse(marked, status_code=status)
