"""The CLI's HTTP client and its saved login (in ALLOT_CONFIG_DIR, default ~/.config/allotment)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import httpx


class CliError(Exception):
    """One-line message, exit code 1."""


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

    def request(self, method: str, path: str, **kwargs) -> Any:
        try:
            response = self._http.request(method, path if path.startswith("/") else f"/api/v1/{path}", **kwargs)
        except httpx.HTTPError as exc:
            raise CliError(f"cannot reach {self.url}: {exc}") from exc
        if response.status_code >= 400:
            raise CliError(problem_message(response))
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
