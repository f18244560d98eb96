"""`allot vaults ...` (ClearML configuration vaults: list, show, create, edit, enable, disable, delete, download,
import) and `allot config effective` (the merge of the enabled vaults that apply to you, each key with its source)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from allotment.cli.client import Client, CliError, segment
from allotment.cli.groups import CONFIG_HELP, shared_group
from allotment.cli.output import console, emit_json, show, table, when
from allotment.vaults.formats import format_of_filename

JSON = typer.Option(False, "--json")
USER = typer.Option(None, "--user", help="a user's vaults (admins)")
SERVICE_ACCOUNT = typer.Option(None, "--service-account", help="a service account's vaults (admins)")
GROUP = typer.Option(None, "--group", help="a group's vaults (admins create them)")
FORMAT = typer.Option(None, "--format", help="json, yaml or hocon (default: from the file's extension, else hocon)")


def _owner(user: str | None, service_account: str | None, group: str | None) -> dict[str, str]:
    return {k: v for k, v in (("user", user), ("service_account", service_account), ("group", group)) if v}


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read {path}: {exc}") from exc


def _row(v: dict[str, Any]) -> dict[str, Any]:
    return {"name": v["name"], "owner": f"{v['owner_kind']}:{v['owner']}", "format": v["format"],
            "enabled": "on" if v["enabled"] else "off", "position": v["position"], "updated": when(v["updated_at"]),
            "size": f"{len(v['content'])} chars"}


def register(app: typer.Typer) -> None:
    vaults = typer.Typer(help="Configuration vaults: settings merged into your jobs' configuration file.",
                         no_args_is_help=True)
    app.add_typer(vaults, name="vaults")

    @vaults.command("list")
    def list_vaults(user: str = USER, service_account: str = SERVICE_ACCOUNT, group: str = GROUP,
                    json_: bool = JSON) -> None:
        """Your vaults and your groups' (every vault for admins), in merge order."""
        items = Client().get("vaults", params=_owner(user, service_account, group))["items"]
        if json_:
            emit_json(items)
            return
        table([_row(v) for v in items], ["name", "owner", "format", "enabled", "position", "updated", "size"],
              empty="no vaults")

    @vaults.command("show")
    def show_vault(name: str, json_: bool = JSON) -> None:
        """A vault's settings and content."""
        vault = Client().get(f"vaults/{segment(name)}")
        if json_:
            emit_json(vault)
            return
        show(_row(vault) | {"updated by": vault.get("updated_by") or ""}, False)
        console.print(vault["content"], highlight=False, markup=False)

    @vaults.command("create")
    def create(name: str, file: Annotated[Path | None, typer.Option("--file", help="read the content from this file")] = None,
               content: str = typer.Option(None, "--content", help="the content itself"),
               fmt: str = FORMAT, user: str = USER, service_account: str = SERVICE_ACCOUNT, group: str = GROUP,
               position: int = typer.Option(0, "--position", help="merge order: lower first, later wins"),
               enable: bool = typer.Option(False, "--enable", help="apply it at once (default: disabled)")) -> None:
        """Create a vault (yours, or for admins a user's, service account's or group's)."""
        text = _read(file) if file is not None else (content or "")
        body = {"name": name, "format": fmt or format_of_filename(file.name if file else None) or "hocon",
                "content": text, "enabled": enable, "position": position, **_owner(user, service_account, group)}
        Client().post("vaults", json=body)
        console.print(f"vault {name} created ({'enabled' if enable else 'disabled'})", highlight=False)

    @vaults.command("edit")
    def edit(name: str, file: Annotated[Path | None, typer.Option("--file", help="replace the content")] = None,
             content: str = typer.Option(None, "--content"), fmt: str = FORMAT,
             position: int = typer.Option(None, "--position"), rename: str = typer.Option(None, "--rename")) -> None:
        """Change a vault's content, format, merge position or name."""
        body: dict[str, Any] = {}
        if file is not None:
            body["content"] = _read(file)
        elif content is not None:
            body["content"] = content
        for key, value in (("format", fmt), ("position", position), ("name", rename)):
            if value is not None:
                body[key] = value
        if not body:
            raise typer.BadParameter("give --file, --content, --format, --position or --rename")
        Client().patch(f"vaults/{segment(name)}", json=body)
        console.print(f"vault {rename or name} updated", highlight=False)

    @vaults.command("enable")
    def enable(name: str) -> None:
        """Apply the vault to jobs from now on."""
        Client().patch(f"vaults/{segment(name)}", json={"enabled": True})
        console.print(f"vault {name} enabled", highlight=False)

    @vaults.command("disable")
    def disable(name: str) -> None:
        """Stop applying the vault (its content is kept)."""
        Client().patch(f"vaults/{segment(name)}", json={"enabled": False})
        console.print(f"vault {name} disabled", highlight=False)

    @vaults.command("delete")
    def delete(name: str) -> None:
        Client().delete(f"vaults/{segment(name)}")
        console.print(f"vault {name} deleted", highlight=False)

    @vaults.command("download")
    def download(name: str, output: Annotated[Path | None, typer.Option("--output", "-o", help="write here (default: "
                                                                                     "print)")] = None) -> None:
        """The vault's content as written, to a file or standard output."""
        text = Client().raw("GET", f"vaults/{segment(name)}/download").text
        if output is None:
            typer.echo(text, nl=False)
            return
        output.write_text(text, encoding="utf-8")
        console.print(f"vault {name} written to {output}", highlight=False)

    @vaults.command("import")
    def import_file(file: Path, name: str = typer.Option(None, "--name", help="default: the file's name without "
                                                                             "its extension"),
                    fmt: str = FORMAT, user: str = USER, service_account: str = SERVICE_ACCOUNT, group: str = GROUP,
                    enable: bool = typer.Option(False, "--enable")) -> None:
        """Create a vault from a file, or replace the content of the vault of that name."""
        name = name or file.stem
        text = _read(file)
        fmt = fmt or format_of_filename(file.name) or "hocon"
        client = Client()
        existing = {v["name"].lower() for v in client.get("vaults", params=_owner(user, service_account,
                                                                                   group))["items"]}
        if name.lower() in existing:
            body: dict[str, Any] = {"content": text, "format": fmt}
            if enable:
                body["enabled"] = True
            client.patch(f"vaults/{segment(name)}", json=body)
            console.print(f"vault {name} replaced from {file}", highlight=False)
            return
        client.post("vaults", json={"name": name, "format": fmt, "content": text, "enabled": enable,
                                    **_owner(user, service_account, group)})
        console.print(f"vault {name} imported from {file}", highlight=False)

    config = shared_group(app, "config", CONFIG_HELP)

    @config.command("effective")
    def effective(user: str = typer.Option(None, "--user", help="another user's (admins)"),
                  json_: bool = JSON) -> None:
        """The merge of the enabled vaults that apply (groups' in order, then your own), each key with its vault."""
        out = Client().get("config/effective", params={"user": user} if user else None)
        if json_:
            emit_json(out)
            return
        console.print(f"effective configuration of {out['user']} (vaults merged in order: "
                      f"{', '.join(out['vaults']) or 'none'})", highlight=False)
        table([{"key": k["key"], "value": json.dumps(k["value"]), "source": k["source"]} for k in out["keys"]],
              ["key", "value", "source"], empty="no key is set")
