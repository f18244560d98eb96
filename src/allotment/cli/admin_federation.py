"""`allot sso ...`: identity provider connections (platform admins) and the site's password sign-in rule.

Settings are given as `--set KEY=VALUE` (booleans as true/false, scopes comma-separated, `claims.FIELD=CLAIM` for a
claim mapping, `KEY=@FILE` to read a file such as the IdP metadata); secrets only from stdin or a file, never on
the command line.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import typer

from allotment.cli.client import Client, CliError, segment
from allotment.cli.inputs import confirm
from allotment.cli.output import console, emit_json, show, table, when, yes_no

SETTINGS = typer.Option(None, "--set", help="KEY=VALUE (repeat); KEY=@FILE reads a file")
CLEAR = typer.Option(None, "--clear", help="reset a setting, or clear a secret (repeat)")
BREAK_GLASS = typer.Option(None, "--break-glass", help="username that keeps password sign-in (repeat; replaces "
                                                       "the list)")
BOOLEAN_WORDS = {"true": True, "false": False, "yes": True, "no": False, "on": True, "off": False}


def parse_settings(pairs: list[str] | None) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise typer.BadParameter(f"--set {pair!r}: write KEY=VALUE")
        if value.startswith("@"):
            try:
                value = Path(value[1:]).expanduser().read_text()
            except OSError as exc:
                raise typer.BadParameter(f"--set {key}: cannot read {value[1:]}: {exc.strerror}") from exc
        if key.startswith("claims."):
            settings.setdefault("claims", {})[key.removeprefix("claims.")] = value
        elif value.lower() in BOOLEAN_WORDS and not key.endswith(("url", "endpoint", "uri", "_id", "metadata")):
            settings[key] = BOOLEAN_WORDS[value.lower()]
        else:
            settings[key] = value
    return settings


def _secret(stdin: bool, path: str | None, what: str) -> str | None:
    if stdin and path:
        raise typer.BadParameter(f"give the {what} from stdin or from a file, not both")
    if stdin:
        return sys.stdin.read().strip()
    if path:
        try:
            return Path(path).expanduser().read_text()
        except OSError as exc:
            raise CliError(f"cannot read {path}: {exc.strerror}") from exc
    return None


def connection_row(c: dict[str, Any]) -> dict[str, Any]:
    return {"active": yes_no(c["active"]), "name": c["name"], "provider": c["provider"],
            "protocol": c["protocol"].upper(), "id": c["id"], "updated": when(c["updated_at"])}


def register(app: typer.Typer) -> None:
    sso = typer.Typer(help="Single sign-on: identity provider connections (OIDC, OAuth 2.0, SAML 2.0) and "
                           "password sign-in.", no_args_is_help=True)
    app.add_typer(sso, name="sso")

    @sso.command("list")
    def list_connections(json_: bool = typer.Option(False, "--json")) -> None:
        """Every connection: active, name, provider, protocol, id, last update."""
        items = Client().get("sso/connections")["items"]
        if json_:
            emit_json(items)
            return
        table([connection_row(c) for c in items], [("active", "ACTIVE"), ("name", "NAME"), ("provider", "PROVIDER"),
                                                   ("protocol", "PROTOCOL"), ("id", "ID"), ("updated", "UPDATED")],
              empty="no connections")

    @sso.command("show")
    def show_connection(name: str, json_: bool = typer.Option(False, "--json")) -> None:
        """One connection's settings, the URLs to give the provider, and which secrets are set (never their value)."""
        c = Client().get(f"sso/connections/{segment(name)}")
        if json_:
            emit_json(c)
            return
        shown = {**connection_row(c), **{k: v for k, v in c["settings"].items() if k != "idp_metadata"},
                 "secrets": ", ".join(f"{k}: {'set (write-only)' if v['set'] else 'not set'}"
                                      for k, v in c["secrets"].items())}
        for key in ("callback_url", "acs_url", "metadata_url", "sp_entity_id"):
            if c.get(key):
                shown[key] = c[key]
        show(shown, False)

    @sso.command("create")
    def create_connection(
        name: str = typer.Argument(..., help="display name on the login page (unique)"),
        protocol: str = typer.Option(..., "--protocol", help="oidc | oauth2 | saml"),
        provider: str = typer.Option("custom", "--provider"),
        set_: list[str] | None = SETTINGS,
        client_secret_stdin: bool = typer.Option(False, "--client-secret-stdin"),
        private_key_file: str = typer.Option(None, "--private-key-file", help="SAML: PEM key that signs requests"),
        generate_key_pair: bool = typer.Option(False, "--generate-key-pair", help="SAML: generate that key pair"),
        inactive: bool = typer.Option(False, "--inactive", help="create it turned off"),
        json_: bool = typer.Option(False, "--json"),
    ) -> None:
        """Create a connection."""
        secrets = {}
        if (secret := _secret(client_secret_stdin, None, "client secret")) is not None:
            secrets["client_secret"] = secret
        if (key := _secret(False, private_key_file, "private key")) is not None:
            secrets["private_key"] = key
        created = Client().post("sso/connections", json={
            "name": name, "protocol": protocol, "provider": provider, "active": not inactive,
            "settings": parse_settings(set_), "secrets": secrets, "generate_key_pair": generate_key_pair})
        if json_:
            emit_json(created)
            return
        url = created.get("callback_url") or created.get("acs_url")
        console.print(f"created connection {created['name']} (id {created['id']}); give the provider {url}",
                      highlight=False)

    @sso.command("update")
    def update_connection(
        name: str,
        new_name: str = typer.Option(None, "--name"),
        provider: str = typer.Option(None, "--provider"),
        active: bool = typer.Option(None, "--active/--inactive"),
        set_: list[str] | None = SETTINGS,
        clear: list[str] | None = CLEAR,
        client_secret_stdin: bool = typer.Option(False, "--client-secret-stdin"),
        private_key_file: str = typer.Option(None, "--private-key-file"),
        generate_key_pair: bool = typer.Option(False, "--generate-key-pair"),
        json_: bool = typer.Option(False, "--json"),
    ) -> None:
        """Change what is named; everything else stays."""
        body: dict[str, Any] = {"generate_key_pair": generate_key_pair}
        for key, value in (("name", new_name), ("provider", provider), ("active", active)):
            if value is not None:
                body[key] = value
        settings = parse_settings(set_)
        secrets: dict[str, Any] = {}
        for key in clear or []:
            (secrets if key in ("client_secret", "private_key") else settings)[key] = None
        if (secret := _secret(client_secret_stdin, None, "client secret")) is not None:
            secrets["client_secret"] = secret
        if (key := _secret(False, private_key_file, "private key")) is not None:
            secrets["private_key"] = key
        if settings:
            body["settings"] = settings
        if secrets:
            body["secrets"] = secrets
        updated = Client().patch(f"sso/connections/{segment(name)}", json=body)
        if json_:
            emit_json(updated)
        else:
            console.print(f"updated connection {updated['name']}", highlight=False)

    @sso.command("delete")
    def delete_connection(name: str, yes: bool = typer.Option(False, "--yes")) -> None:
        """Delete a connection; its users keep their accounts."""
        confirm(f"Delete connection {name}?", yes, "not deleted")
        Client().delete(f"sso/connections/{segment(name)}")
        console.print(f"deleted connection {name}", highlight=False)

    @sso.command("test")
    def test_connection(name: str, wait: int = typer.Option(300, "--wait", help="seconds to wait for the answer"),
                        json_: bool = typer.Option(False, "--json")) -> None:
        """Test Provider: open the printed URL, sign in at the provider, and see the user it maps to."""
        client = Client()
        started = client.post(f"sso/connections/{segment(name)}/test")
        if started["status"] == "error":
            raise CliError(f"the provider cannot be used: {started['error']}")
        console.print(f"Open this URL in a browser and sign in:\n{started['authorize_url']}", highlight=False,
                      soft_wrap=True)
        deadline = time.monotonic() + wait
        while True:
            result = client.get(f"sso/tests/{started['test_id']}")
            if result["status"] != "pending":
                break
            if time.monotonic() > deadline:
                raise CliError(f"no answer from the provider within {wait} s")
            time.sleep(1)
        if result["status"] == "error":
            raise CliError(f"the provider answered with an error: {result['error']}")
        if json_:
            emit_json(result["user"])
        else:
            show({**result["user"], "groups": ", ".join(result["user"]["groups"])}, False)

    @sso.command("password-login")
    def password_login(
        on: bool = typer.Option(None, "--on/--off", help="turn password sign-in on or off"),
        break_glass: list[str] | None = BREAK_GLASS,
        json_: bool = typer.Option(False, "--json"),
    ) -> None:
        """Show or set whether people may sign in with a password; break-glass admins always may."""
        client = Client()
        if on is None and not break_glass:
            policy = client.get("sso/password-login")
        else:
            current = client.get("sso/password-login")
            body: dict[str, Any] = {"enabled": current["enabled"] if on is None else on}
            if break_glass:
                body["break_glass"] = break_glass
            policy = client.put("sso/password-login", json=body)
        show({"password sign-in": "on" if policy["enabled"] else "off",
              "break-glass accounts": ", ".join(policy["break_glass"]) or "none"}, False) if not json_ \
            else emit_json(policy)
