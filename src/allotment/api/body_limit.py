"""Refuse request bodies over the limit with 413 before they are read whole.

Plain ASGI (like the metrics middleware): a declared Content-Length over the limit is answered at once, without
reading a byte of the body; a body without one (chunked) is counted as it streams, and the request fails as soon as
the count passes the limit, so the server never holds more than the limit plus one chunk.
"""

from __future__ import annotations

import json
import re

from starlette.exceptions import HTTPException

from allotment.core.limits import MAX_BODY_BYTES, MAX_CSV_BODY_BYTES

# Endpoints whose body is a file get their own, larger limit.
LARGER_LIMITS = {"/api/v1/users/import": MAX_CSV_BODY_BYTES}
# A folder's file (API upload, console upload form): bounded by the largest folder capacity a policy may give; the
# folder's own room is checked as the body streams to disk (storage/routes.py).
MAX_FOLDER_FILE_BYTES = 1024 * 2**30
LARGER_PATTERNS = ((re.compile(r"^/(api/v1|ui)/folders/[^/]+/(files/|upload$)"), MAX_FOLDER_FILE_BYTES),)


class BodyTooLarge(HTTPException):
    """An HTTPException, so that the framework's body reader passes it on and the problem handlers answer 413."""

    def __init__(self, limit: int):
        super().__init__(413, f"the request body must be at most {limit} bytes")


def _problem(limit: int, size: int | None) -> tuple[dict, bytes]:
    got = f" (got {size} bytes)" if size is not None else ""
    body = {"type": "urn:allotment:problem:body_too_large", "title": "Content too large", "status": 413,
            "detail": f"the request body must be at most {limit} bytes{got}", "code": "body_too_large",
            "limit": limit}
    start = {"type": "http.response.start", "status": 413,
             "headers": [(b"content-type", b"application/problem+json"), (b"connection", b"close")]}
    return start, json.dumps(body).encode()


class BodyLimitMiddleware:
    def __init__(self, app, default_limit: int = MAX_BODY_BYTES, larger: dict[str, int] | None = None):
        self.app = app
        self.default_limit = default_limit
        self.larger = LARGER_LIMITS if larger is None else larger

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.larger.get(scope.get("path", ""), self.default_limit)
        limit = next((most for pattern, most in LARGER_PATTERNS if pattern.match(scope.get("path", ""))), limit)
        declared = next((v for k, v in scope.get("headers", []) if k == b"content-length"), None)
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                size = None
            if size is None or size > limit:
                await self._refuse(send, limit, size)
                return

        received = 0
        started = False

        async def counting_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def noting_send(message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, noting_send)
        except BodyTooLarge:
            if not started:
                await self._refuse(send, limit, None)

    @staticmethod
    async def _refuse(send, limit: int, size: int | None) -> None:
        start, body = _problem(limit, size)
        start["headers"].append((b"content-length", str(len(body)).encode()))
        await send(start)
        await send({"type": "http.response.body", "body": body})
