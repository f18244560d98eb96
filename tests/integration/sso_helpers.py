"""A real OIDC provider (oidc-provider-mock) on a free port, and the browser's steps of a login through it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

API = "/api/v1"
TESTSERVER = "http://testserver"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def oidc_provider(*args: str) -> Iterator[str]:
    """Start oidc-provider-mock (nonce required) and yield its issuer URL."""
    port = free_port()
    exe = Path(sys.executable).with_name("oidc-provider-mock")
    proc = subprocess.Popen([str(exe), "--port", str(port), "--require-nonce", "true", *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/.well-known/openid-configuration", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("oidc-provider-mock did not start")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def set_claims(issuer: str, sub: str, **claims) -> None:
    r = httpx.put(f"{issuer}/users/{sub}", json=claims, timeout=5)
    assert r.status_code == 204, r.text


def oidc_connection(name: str, issuer: str, **settings) -> dict:
    return {"name": name, "protocol": "oidc", "provider": "custom",
            "settings": {"issuer": issuer, "client_id": "allotment", **settings},
            "secrets": {"client_secret": "s3cret-client"}}


def create_connection(client, headers, body: dict) -> dict:
    r = client.post(f"{API}/sso/connections", json=body, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


def to_provider(client, start_path: str) -> str:
    r = client.get(start_path, follow_redirects=False)
    assert r.status_code == 303, r.text
    return r.headers["location"]


def provider_answers(authorize_url: str, sub: str) -> str:
    """The user `sub` signs in at the provider; returns the path of our callback it redirects to."""
    r = httpx.post(authorize_url, data={"sub": sub}, follow_redirects=False, timeout=10)
    assert r.status_code in (302, 303), r.text
    location = r.headers["location"]
    assert location.startswith(TESTSERVER), location
    return location.removeprefix(TESTSERVER)


def sso_login(client, connection_id: int, sub: str, next_page: str | None = None):
    """The whole browser round trip; returns our callback's response (not followed)."""
    start = f"/login/sso/{connection_id}" + (f"?next={next_page}" if next_page else "")
    callback = provider_answers(to_provider(client, start), sub)
    return client.get(callback, follow_redirects=False)
