"""`allot access-rules ...` (ClearML access rules): list with filters (workspace, resource type, resource, grantee),
create, edit, delete, and a workspace's default for objects no rule covers (`default`).

Grantees are given as `--user NAME`, `--service-account NAME` and `--group NAME`, each repeatable."""

from __future__ import annotations

from typing import Any

import typer

from allotment.cli.client import Client, segment
from allotment.cli.output import console, emit_json, show, table

CLUSTER = typer.Option("local", "--cluster", help="the workspace's (or quota's) cluster")
WORKSPACE = typer.Option(None, "--workspace", "-w", help="the workspace; none: platform rules (admins), and quotas")
JSON = typer.Option(False, "--json")
USERS = typer.Option(None, "--user", help="a user to grant (repeatable)")
ACCOUNTS = typer.Option(None, "--service-account", help="a service account to grant (repeatable)")
GROUPS = typer.Option(None, "--group", help="a group to grant (repeatable)")


def _grantees(users: list[str] | None, accounts: list[str] | None, groups: list[str] | None) -> list[dict[str, str]]:
    return ([{"kind": "user", "name": n} for n in users or []]
            + [{"kind": "service_account", "name": n} for n in accounts or []]
            + [{"kind": "group", "name": n} for n in groups or []])


def row(rule: dict[str, Any]) -> dict[str, Any]:
    return {"id": rule["id"], "workspace": rule["workspace"] or "(platform)", "type": rule["resource_type"],
            "resource": rule["resource"], "level": "read-only" if rule["level"] == "read" else "read & modify",
            "grantees": ", ".join(f"{g['kind'].replace('_', '-')}:{g['name']}" for g in rule["grantees"])}


COLUMNS = [("id", "ID"), ("workspace", "WORKSPACE"), ("type", "TYPE"), ("resource", "RESOURCE"), ("level", "LEVEL"),
           ("grantees", "GRANTEES")]


def register(app: typer.Typer) -> None:
    rules = typer.Typer(help="Access rules: who may read or modify projects, jobs, models, datasets and quotas.",
                        no_args_is_help=True)
    app.add_typer(rules, name="access-rules")

    @rules.command("list")
    def list_rules(cluster: str = CLUSTER, workspace: str = WORKSPACE,
                   resource_type: str = typer.Option(None, "--type", help="the View filter: project, job, model, "
                                                                          "dataset or quota"),
                   resource: str = typer.Option(None, "--resource", help="one object (with --type)"),
                   grantee: str = typer.Option(None, "--grantee", help="NAME, user:NAME, service-account:NAME or "
                                                                       "group:NAME"),
                   json_: bool = JSON) -> None:
        """The rules you may see, filtered."""
        params = {"cluster": cluster, "workspace": workspace, "resource_type": resource_type, "resource": resource,
                  "grantee": grantee.replace("service-account:", "service_account:") if grantee else None}
        found = Client().get("access-rules", params={k: v for k, v in params.items() if v})
        if json_:
            emit_json(found)
            return
        table([row(r) for r in found["items"]], COLUMNS, empty="no access rules")

    @rules.command("create")
    def create(resource_type: str = typer.Argument(help="project, job, model, dataset or quota"),
               level: str = typer.Argument(help="read (read-only) or modify (read and modify)"),
               resource: str = typer.Option(None, "--resource", help="one object: a project's path or id, a job's, "
                                                                     "model's or dataset's id, a quota's name; "
                                                                     "none: every object of the type"),
               cluster: str = CLUSTER, workspace: str = WORKSPACE, users: list[str] = USERS,
               accounts: list[str] = ACCOUNTS, groups: list[str] = GROUPS, json_: bool = JSON) -> None:
        """Grant LEVEL on a resource type, or on one object, to users, service accounts and groups."""
        body = {"cluster": cluster, "workspace": workspace, "resource_type": resource_type, "resource": resource,
                "level": level, "grantees": _grantees(users, accounts, groups)}
        made = Client().post("access-rules", json={k: v for k, v in body.items() if v is not None})
        if json_:
            emit_json(made)
            return
        console.print(f"access rule {made['id']} grants {row(made)['level']} on {made['resource']} to "
                      f"{row(made)['grantees']}", highlight=False)

    @rules.command("show")
    def show_one(rule: int, json_: bool = JSON) -> None:
        found = Client().get(f"access-rules/{rule}")
        show(found if json_ else row(found), json_)

    @rules.command("edit")
    def edit(rule: int,
             level: str = typer.Option(None, "--level", help="read or modify"),
             resource_type: str = typer.Option(None, "--type", help="a new resource type"),
             resource: str = typer.Option(None, "--resource", help="a new object (with or without --type)"),
             every: bool = typer.Option(False, "--every", help="cover every object of the type instead of one"),
             users: list[str] = USERS, accounts: list[str] = ACCOUNTS, groups: list[str] = GROUPS,
             json_: bool = JSON) -> None:
        """Change the level, the resource and/or the grantees (those given replace the old ones)."""
        body: dict[str, Any] = {}
        if level is not None:
            body["level"] = level
        if resource_type is not None:
            body["resource_type"] = resource_type
        if resource is not None or every:
            body["resource"] = None if every else resource
        grantees = _grantees(users, accounts, groups)
        if grantees:
            body["grantees"] = grantees
        if not body:
            raise typer.BadParameter("give --level, --type, --resource, --every or grantees to change")
        changed = Client().patch(f"access-rules/{rule}", json=body)
        if json_:
            emit_json(changed)
            return
        console.print(f"access rule {rule} now grants {row(changed)['level']} on {changed['resource']} to "
                      f"{row(changed)['grantees']}", highlight=False)

    @rules.command("delete")
    def delete(rule: int) -> None:
        """Its grantees lose what it granted, and only that."""
        Client().delete(f"access-rules/{rule}")
        console.print(f"access rule {rule} deleted", highlight=False)

    @rules.command("default")
    def default(workspace: str, level: str = typer.Argument(None, help="modify, read or none; omit to show it"),
                cluster: str = CLUSTER) -> None:
        """What objects no rule covers grant the workspace's members (ClearML's default: modify)."""
        path = f"clusters/{segment(cluster)}/workspaces/{segment(workspace)}/access-default"
        found = Client().put(path, json={"default": level}) if level else Client().get(path)
        console.print(f"workspace {workspace}: objects no rule covers grant {found['default']}", highlight=False)
