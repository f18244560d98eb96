"""`allot login URL --sso NAME`: single sign-on for the CLI through a loopback redirect (RFC 8252).

The CLI listens on 127.0.0.1 at a free port and opens (or prints) the server's sign-in URL for the connection,
naming that port, a state of its own and a PKCE challenge. After the provider, the server redirects the browser to
the loopback address with a one-time code, which the CLI exchanges, with the challenge's verifier, for a session
token: a code caught on the way is useless without the verifier, which never leaves the CLI.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import webbrowser
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs, quote, urlsplit

import httpx

from allotment.cli.client import CliError, problem_message
from allotment.cli.output import err_console

DONE_PAGE = (b"<!doctype html><meta charset=utf-8><title>allot</title><p>Signed in. You can close this window and "
             b"return to the terminal.</p>")


def _connection_id(url: str, name: str) -> int:
    try:
        r = httpx.get(f"{url}/api/v1/sso/providers", timeout=30)
    except httpx.HTTPError as exc:
        raise CliError(f"cannot reach {url}: {exc}") from exc
    if r.status_code >= 400:
        raise CliError(problem_message(r))
    items = r.json()["items"]
    for item in items:
        if item["name"].lower() == name.strip().lower():
            return item["id"]
    offered = ", ".join(i["name"] for i in items) or "none"
    raise CliError(f"no active single sign-on connection named {name} (offered: {offered})")


def sso_token(url: str, name: str, open_browser: bool = True, wait_s: int = 300) -> str:
    connection_id = _connection_id(url, name)
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    state = secrets.token_urlsafe(24)
    received: dict[str, str] = {}
    arrived = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            if parts.path != "/callback" or not hmac.compare_digest(query.get("state", ""), state) \
                    or not query.get("code"):
                self.send_error(400, "not the sign-in this terminal is waiting for")
                return
            received["code"] = query["code"]
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write(DONE_PAGE)
            arrived.set()

        def log_message(self, *args) -> None:  # the terminal shows our messages only
            return

    server = HTTPServer(("127.0.0.1", 0), Handler)
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        start = (f"{url}/login/sso/{connection_id}?cli_port={port}&cli_state={quote(state)}"
                 f"&cli_challenge={challenge}")
        err_console.print(f"Open this URL in a browser to sign in through {name}:\n{start}", highlight=False,
                          soft_wrap=True)
        if open_browser:
            webbrowser.open(start)
        if not arrived.wait(wait_s):
            raise CliError(f"no sign-in arrived within {wait_s} s; run allot login again")
    finally:
        server.shutdown()
        server.server_close()
    try:
        r = httpx.post(f"{url}/api/v1/auth/sso/token", json={"code": received["code"], "code_verifier": verifier},
                       timeout=30)
    except httpx.HTTPError as exc:
        raise CliError(f"cannot reach {url}: {exc}") from exc
    if r.status_code >= 400:
        raise CliError(problem_message(r))
    return r.json()["token"]
