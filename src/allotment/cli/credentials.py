"""`allot credentials create|list|revoke`: access key + secret key pairs for the API and the CLI."""

from __future__ import annotations

from typing import Any

import typer

from allotment.cli.client import Client, segment
from allotment.cli.output import console, emit_json, table, when

CREDENTIAL_COLUMNS = [("access_key", "ACCESS KEY"), ("label", "LABEL"), ("owner", "OWNER"), ("status", "STATUS"),
                      ("created", "CREATED"), ("expires", "EXPIRES"), ("last_used", "LAST USED"),
                      ("last_used_from", "FROM")]


def credential_row(cred: dict[str, Any]) -> dict[str, Any]:
    return {**cred, "created": when(cred.get("created_at")), "expires": when(cred.get("expires_at")) or "never",
            "last_used": when(cred.get("last_used_at")) or "never"}


def print_new_credential(cred: dict[str, Any], as_json: bool) -> None:
    """The one and only time the secret is shown. Plain print, never Rich: no wrapping may break a key or the
    snippet when it is copied from a narrow terminal."""
    if as_json:
        emit_json(cred)
        return
    print(f"Access key  {cred['access_key']}")
    print(f"Secret key  {cred['secret_key']}")
    print(f"Owner       {cred.get('owner', '')}")
    if cred.get("label"):
        print(f"Label       {cred['label']}")
    print(f"Expires     {when(cred.get('expires_at')) or 'never'}")
    print()
    print("The secret key is shown only now: store it safely. To use this credential with the CLI:")
    snippet = cred.get("cli_snippet") or f"allot login URL --access-key {cred['access_key']} --secret-stdin"
    print(f"  {snippet}")
    print("and type (or pipe in) the secret key.")
    if cred.get("env_snippet"):
        print("Or, for scripts and other tools, set:")
        for line in str(cred["env_snippet"]).splitlines():
            print(f"  {line}")


def credential_body(label: str | None, expires: str | None, user: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if label is not None:
        body["label"] = label
    if expires is not None:
        body["expires_in"] = expires
    if user is not None:
        body["user"] = user
    return body


def register(app: typer.Typer) -> None:
    creds = typer.Typer(help="API credentials: access key + secret key pairs.", no_args_is_help=True)
    app.add_typer(creds, name="credentials")

    @creds.command("create")
    def create(
        label: str = typer.Option(None, "--label", help="what the credential is for"),
        expires: str = typer.Option(None, "--expires", help="lifetime such as 30d or 12h (default: no expiry)"),
        user: str = typer.Option(None, "--user", help="owner, when not yourself (platform admins only)"),
        json_: bool = typer.Option(False, "--json"),
    ) -> None:
        """Create a credential; its secret key is printed once."""
        cred = Client().post("credentials", json=credential_body(label, expires, user))
        print_new_credential(cred, json_)

    @creds.command("list")
    def list_(
        user: str = typer.Option(None, "--user", help="another user's credentials (platform admins only)"),
        all_: bool = typer.Option(False, "--all", help="everyone's credentials (platform admins only)"),
        json_: bool = typer.Option(False, "--json"),
    ) -> None:
        """Your credentials (never their secrets), with last use and status."""
        params: dict[str, Any] = {}
        if user:
            params["user"] = user
        if all_:
            params["all"] = "true"
        body = Client().get("credentials", params=params)
        items = body.get("items", []) if isinstance(body, dict) else body
        if json_:
            emit_json(items)
        else:
            table([credential_row(c) for c in items], CREDENTIAL_COLUMNS, empty="no credentials")

    @creds.command("revoke")
    def revoke(access_key: str = typer.Argument(..., help="the access key to revoke")) -> None:
        """Revoke a credential; it stops working on the next request."""
        Client().delete(f"credentials/{segment(access_key)}")
        console.print(f"Revoked {access_key}", highlight=False)
