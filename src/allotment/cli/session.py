"""`allot login`, `allot logout`, `allot whoami`, `allot profile` (your own username and full name)."""

from __future__ import annotations

import sys

import httpx
import typer

from allotment.cli.client import Client, CliError, clear_config, load_config, problem_message, save_config
from allotment.cli.output import console, show


def register(app: typer.Typer) -> None:
    @app.command()
    def login(
        url: str = typer.Argument(..., help="server address, for example http://127.0.0.1:8080"),
        username: str = typer.Option(None, "--username", "-u"),
        password_stdin: bool = typer.Option(False, "--password-stdin", help="read the password from stdin"),
        access_key: str = typer.Option(None, "--access-key"),
        secret_stdin: bool = typer.Option(False, "--secret-stdin", help="read the secret key from stdin"),
        sso: str = typer.Option(None, "--sso", help="sign in through this identity provider connection (by name)"),
        no_browser: bool = typer.Option(False, "--no-browser", help="with --sso: only print the URL to open"),
        sso_wait: int = typer.Option(300, "--sso-wait", help="with --sso: seconds to wait for the sign-in"),
    ) -> None:
        """Log in and remember the server and token."""
        url = url.rstrip("/")
        if sso:
            from allotment.cli.sso_login import sso_token

            token = sso_token(url, sso, open_browser=not no_browser, wait_s=sso_wait)
        elif access_key:
            if not secret_stdin:
                raise typer.BadParameter("--access-key needs --secret-stdin")
            token = f"{access_key}:{sys.stdin.readline().strip()}"
        else:
            if not username:
                raise typer.BadParameter("give --username (with --password-stdin) or --access-key")
            password = sys.stdin.readline().rstrip("\n") if password_stdin else typer.prompt("Password",
                                                                                                hide_input=True)
            try:
                r = httpx.post(f"{url}/api/v1/auth/login", json={"username": username, "password": password},
                               timeout=30)
            except httpx.HTTPError as exc:
                raise CliError(f"cannot reach {url}: {exc}") from exc
            if r.status_code >= 400:
                raise CliError(problem_message(r))
            token = r.json()["token"]
        me = Client(url, token).get("auth/whoami")
        save_config({"url": url, "token": token, "username": me["username"]})
        console.print(f"logged in to {url} as {me['username']}")

    @app.command()
    def logout() -> None:
        """Forget the saved login (and end the session on the server)."""
        cfg = load_config()
        if cfg.get("token", "").startswith("st_"):
            try:
                Client(cfg["url"], cfg["token"]).post("auth/logout")
            except CliError:
                pass
        clear_config()
        console.print("logged out")

    @app.command()
    def whoami(json_: bool = typer.Option(False, "--json")) -> None:
        """Who the saved login is, with groups and cluster roles."""
        me = Client().get("auth/whoami")
        if not json_:
            me = {**me, "groups": ", ".join(me["groups"]),
                  "cluster_roles": ", ".join(f"{c}={r}" for c, r in me["cluster_roles"].items())}
        show(me, json_)

    @app.command()
    def profile(username: str = typer.Option(None, "--username", help="your new username"),
                full_name: str = typer.Option(None, "--full-name", help="your full name ('' clears it)"),
                json_: bool = typer.Option(False, "--json")) -> None:
        """Show your profile, or change your own username or full name. Your login stays valid."""
        client = Client()
        me = client.get("auth/whoami")
        body = {}
        if username is not None:
            body["username"] = username
        if full_name is not None:
            body["full_name"] = full_name.strip() or None
        user = client.patch(f"users/{me['id']}", json=body) if body else client.get(f"users/{me['id']}")
        if body:
            cfg = load_config()
            if cfg.get("username") and cfg.get("username") != user["username"]:
                save_config({**cfg, "username": user["username"]})
        shown = {k: user.get(k) for k in ("username", "full_name", "email")}
        show(shown, json_)
