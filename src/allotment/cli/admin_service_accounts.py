"""`allot admin service-accounts list|create|update|delete|create-credential`: API-only principals."""

from __future__ import annotations

from typing import Any

import typer

from allotment.cli.client import Client, segment
from allotment.cli.credentials import credential_body, print_new_credential
from allotment.cli.inputs import confirm
from allotment.cli.output import console, emit_json, table, when, yes_no


def account_row(account: dict[str, Any]) -> dict[str, Any]:
    return {"name": account.get("name") or account.get("username"), "description": account.get("description"),
            "impersonation": yes_no(account.get("allow_impersonation")), "created": when(account.get("created_at")),
            "credentials": account.get("credential_count")}


def register(admin: typer.Typer) -> None:
    accounts = typer.Typer(help="Service accounts: principals for automation that never log in.",
                           no_args_is_help=True)
    admin.add_typer(accounts, name="service-accounts")

    @accounts.command("list")
    def list_accounts(json_: bool = typer.Option(False, "--json")) -> None:
        """All service accounts."""
        body = Client().get("service-accounts")
        items = body.get("items", []) if isinstance(body, dict) else body
        if json_:
            emit_json(items)
        else:
            table([account_row(a) for a in items],
                  [("name", "NAME"), ("description", "DESCRIPTION"), ("impersonation", "MAY IMPERSONATE"),
                   ("credentials", "CREDENTIALS"), ("created", "CREATED")], empty="no service accounts")

    @accounts.command("create")
    def create_account(
        name: str = typer.Argument(...),
        description: str = typer.Option(None, "--description"),
        allow_impersonation: bool = typer.Option(False, "--allow-impersonation",
                                                 help="may act on behalf of users (X-Allot-On-Behalf-Of)"),
        no_credential: bool = typer.Option(False, "--no-credential",
                                           help="do not create a first credential (add one later with "
                                                "`create-credential`)"),
        json_: bool = typer.Option(False, "--json"),
    ) -> None:
        """Create a service account, with a first credential whose secret is printed once (unless --no-credential)."""
        body: dict[str, Any] = {"name": name, "allow_impersonation": allow_impersonation}
        if description is not None:
            body["description"] = description
        if no_credential:
            body["with_credential"] = False
        created = Client().post("service-accounts", json=body)
        if json_:
            emit_json(created)
            return
        extra = " (may act on behalf of users)" if allow_impersonation else ""
        console.print(f"Created service account {name}{extra}", highlight=False)
        if isinstance(created, dict) and created.get("credential"):
            print()
            print_new_credential(created["credential"], as_json=False)

    @accounts.command("update")
    def update_account(
        name: str = typer.Argument(...),
        description: str = typer.Option(None, "--description"),
        allow_impersonation: bool = typer.Option(None, "--allow-impersonation/--no-allow-impersonation"),
    ) -> None:
        """Change a service account's description or impersonation permission."""
        body: dict[str, Any] = {}
        if description is not None:
            body["description"] = description
        if allow_impersonation is not None:
            body["allow_impersonation"] = allow_impersonation
        if not body:
            raise typer.BadParameter("nothing to change: give --description or --[no-]allow-impersonation")
        Client().patch(f"service-accounts/{segment(name)}", json=body)
        console.print(f"Updated service account {name}: {', '.join(k.replace('_', ' ') for k in body)}",
                      highlight=False)

    @accounts.command("delete")
    def delete_account(name: str = typer.Argument(...),
                       yes: bool = typer.Option(False, "--yes", "-y", help="do not ask for confirmation")) -> None:
        """Delete a service account: its credentials are revoked, its jobs are kept."""
        confirm(f"Delete service account {name} and revoke its credentials?", yes, f"service account {name} was kept")
        Client().delete(f"service-accounts/{segment(name)}")
        console.print(f"Deleted service account {name}; its credentials are revoked", highlight=False)

    @accounts.command("create-credential")
    def create_credential(
        name: str = typer.Argument(...),
        label: str = typer.Option(None, "--label"),
        expires: str = typer.Option(None, "--expires", help="lifetime such as 30d or 12h (default: no expiry)"),
        json_: bool = typer.Option(False, "--json"),
    ) -> None:
        """Create a credential for a service account; its secret key is printed once."""
        cred = Client().post(f"service-accounts/{segment(name)}/credentials", json=credential_body(label, expires))
        print_new_credential(cred, json_)
