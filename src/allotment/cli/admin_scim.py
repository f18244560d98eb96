"""`allot admin scim list|create|show|token-issue|token-revoke`: SCIM provisioning clients and their bearer tokens."""

from __future__ import annotations

from typing import Any

import typer

from allotment.cli.client import Client, segment
from allotment.cli.output import console, emit_json, table, when


def token_rows(tokens: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"id": t["id"], "hint": t["hint"] + "…", "label": t.get("label"), "status": t["status"],
             "created": when(t.get("created_at")), "last_used": when(t.get("last_used_at"))} for t in tokens]


TOKEN_COLUMNS = [("id", "ID"), ("hint", "STARTS WITH"), ("label", "LABEL"), ("status", "STATUS"),
                 ("created", "CREATED"), ("last_used", "LAST USED")]


def _admin_group(app: typer.Typer) -> typer.Typer:
    for group in app.registered_groups:
        if group.name == "admin" and group.typer_instance is not None:
            return group.typer_instance
    return app  # without the admin commands, `allot scim` stands alone


def register(app: typer.Typer) -> None:
    scim = typer.Typer(help="SCIM provisioning clients (identity providers) and their bearer tokens.",
                       no_args_is_help=True)
    _admin_group(app).add_typer(scim, name="scim")

    @scim.command("list")
    def list_clients(json_: bool = typer.Option(False, "--json")) -> None:
        """Every provisioning client, with its number of active tokens."""
        items = Client().get("scim/clients")["items"]
        if json_:
            emit_json(items)
            return
        table([{"name": c["name"], "description": c.get("description"), "created": when(c.get("created_at")),
                "tokens": sum(1 for t in c["tokens"] if t["status"] == "active")} for c in items],
              [("name", "NAME"), ("description", "DESCRIPTION"), ("tokens", "ACTIVE TOKENS"), ("created", "CREATED")],
              empty="no provisioning clients")

    @scim.command("create")
    def create_client(name: str = typer.Argument(..., help="the client's name; its changes are audited under it"),
                      description: str = typer.Option(None, "--description")) -> None:
        """Create a provisioning client (then issue it a token with `token-issue`)."""
        body: dict[str, Any] = {"name": name}
        if description is not None:
            body["description"] = description
        Client().post("scim/clients", json=body)
        console.print(f"Created provisioning client {name}; issue it a token with "
                      f"`allot admin scim token-issue {name}`", highlight=False)

    @scim.command("show")
    def show_client(name: str = typer.Argument(...), json_: bool = typer.Option(False, "--json")) -> None:
        """A client and its tokens (never the tokens themselves)."""
        client = Client().get(f"scim/clients/{segment(name)}")
        if json_:
            emit_json(client)
            return
        console.print(f"{client['name']}: {client.get('description') or ''}", highlight=False)
        table(token_rows(client["tokens"]), TOKEN_COLUMNS, empty="no tokens")

    @scim.command("token-issue")
    def issue_token(name: str = typer.Argument(...), label: str = typer.Option(None, "--label"),
                    json_: bool = typer.Option(False, "--json")) -> None:
        """Issue a bearer token for the client. It is printed once: configure it in the identity provider now."""
        body = {"label": label} if label is not None else {}
        created = Client().post(f"scim/clients/{segment(name)}/tokens", json=body)
        if json_:
            emit_json(created)
            return
        console.print(f"SCIM URL:     {created['scim_url']}", highlight=False)
        console.print(f"Bearer token: {created['token']}", highlight=False)
        console.print("The token is shown only now; revoke it with "
                      f"`allot admin scim token-revoke {name} {created['id']}`.", highlight=False)

    @scim.command("token-revoke")
    def revoke_token(name: str = typer.Argument(...), token_id: int = typer.Argument(..., help="the token's id")) -> None:
        """Revoke a token: requests with it are refused from now on."""
        Client().delete(f"scim/clients/{segment(name)}/tokens/{token_id}")
        console.print(f"Revoked token {token_id} of provisioning client {name}", highlight=False)
