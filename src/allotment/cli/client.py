"""The CLI's HTTP client and its saved login (in ALLOT_CONFIG_DIR, default ~/.config/allotment)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx


class CliError(Exception):
    """One-line message, exit code 1."""


class ApiError(CliError):
    """The server refused a request; keeps the status and the problem+json body (e.g. an import's row report)."""

    def __init__(self, message: str, status: int, body: Any = None):
        super().__init__(message)
        self.status = status
        self.body = body


def config_dir() -> Path:
    return Path(os.environ.get("ALLOT_CONFIG_DIR") or Path.home() / ".config" / "allotment")


def config_path() -> Path:
    return config_dir() / "config.json"


def load_config() -> dict[str, Any]:
    path = config_path()
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise CliError(f"{path} is not valid JSON ({exc}); run `allot login` again") from exc


def save_config(data: dict[str, Any]) -> None:
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2))
    path.chmod(0o600)


def clear_config() -> None:
    config_path().unlink(missing_ok=True)


def problem_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}: {response.text[:200]}"
    if isinstance(body, dict):
        errors = body.get("errors") or []
        if errors:
            return "; ".join(f"{e.get('field')}: {e.get('message')}" for e in errors)
        if body.get("detail"):
            return str(body["detail"])
    return f"HTTP {response.status_code}"


class Client:
    def __init__(self, url: str | None = None, token: str | None = None, timeout: float = 30.0):
        cfg = load_config() if url is None or token is None else {}
        self.url = (url or os.environ.get("ALLOT_URL") or cfg.get("url") or "").rstrip("/")
        self.token = token or os.environ.get("ALLOT_TOKEN") or cfg.get("token")
        if not self.url:
            raise CliError("not logged in: run `allot login URL` first")
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def raw(self, method: str, path: str, **kwargs) -> httpx.Response:
        """The response of a successful request, unparsed (downloads); failures raise ApiError."""
        try:
            response = self._http.request(method, path if path.startswith("/") else f"/api/v1/{path}", **kwargs)
        except httpx.HTTPError as exc:
            raise CliError(f"cannot reach {self.url}: {exc}") from exc
        if response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                body = None
            message = problem_message(response)
            if response.status_code in (404, 405) and isinstance(body, dict) and body.get("code", "").startswith("http_"):
                # No such route at all (not a missing user or group): the server is older than this CLI.
                message = f"{self.url} does not offer {method} {response.request.url.path} ({message}); " \
                          f"the server may be older than this CLI"
            raise ApiError(message, response.status_code, body)
        return response

    @contextmanager
    def stream(self, method: str, path: str, **kwargs) -> Iterator[httpx.Response]:
        """A response read as it arrives (follow modes); failures raise ApiError, a broken connection CliError."""
        try:
            with self._http.stream(method, path if path.startswith("/") else f"/api/v1/{path}",
                                   **kwargs) as response:
                if response.status_code >= 400:
                    response.read()
                    try:
                        body = response.json()
                    except ValueError:
                        body = None
                    raise ApiError(problem_message(response), response.status_code, body)
                yield response
        except httpx.HTTPError as exc:
            raise CliError(f"cannot follow {self.url}: {exc}") from exc

    def request(self, method: str, path: str, **kwargs) -> Any:
        response = self.raw(method, path, **kwargs)
        if response.status_code == 204 or not response.content:
            return None
        if "json" in response.headers.get("content-type", ""):
            return response.json()
        return response.text

    def get(self, path: str, **kw) -> Any:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw) -> Any:
        return self.request("POST", path, **kw)

    def patch(self, path: str, **kw) -> Any:
        return self.request("PATCH", path, **kw)

    def put(self, path: str, **kw) -> Any:
        return self.request("PUT", path, **kw)

    def delete(self, path: str, **kw) -> Any:
        return self.request("DELETE", path, **kw)

    def get_all(self, path: str, params: dict[str, Any] | None = None, page: int = 50,
                limit: int | None = None) -> list[dict[str, Any]]:
        """Every item of a paginated list ({"items", "total"}), page by page; at most `limit` when given."""
        items: list[dict[str, Any]] = []
        while limit is None or len(items) < limit:
            size = page if limit is None else min(page, limit - len(items))
            body = self.get(path, params={**(params or {}), "limit": size, "offset": len(items)})
            batch = body.get("items", []) if isinstance(body, dict) else list(body or [])
            items.extend(batch)
            total = body.get("total") if isinstance(body, dict) else None
            if not batch or len(batch) != size or (total is not None and len(items) >= total):
                break
        return items


def segment(value: str) -> str:
    """One path segment: a username, e-mail, group or key, quoted so that '/' or '?' cannot change the route."""
    return quote(str(value), safe="@")
