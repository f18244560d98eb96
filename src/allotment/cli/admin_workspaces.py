"""`allot admin workspaces list|show|create|rename|describe|delete|add-member|remove-member` (PAI workspaces: their
members may submit to the quotas bound to them: `allot quotas bind QUOTA --workspace NAME`)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from allotment.cli.client import Client, segment
from allotment.cli.inputs import confirm
from allotment.cli.output import console, emit_json, show, table

CLUSTER = typer.Option("local", "--cluster", help="the workspace's cluster")


def members_text(workspace: dict[str, Any]) -> str:
    return ", ".join(f"{m['kind']}:{m['name']}" for m in workspace.get("members") or []) or "-"


def row(workspace: dict[str, Any]) -> dict[str, Any]:
    return {"name": workspace["name"], "description": workspace.get("description") or "",
            "members": members_text(workspace), "quotas": ", ".join(workspace.get("quotas") or []) or "-"}


def _member(user: str | None, group: str | None) -> tuple[str, str]:
    if (user is None) == (group is None):
        raise typer.BadParameter("give exactly one of --user or --group")
    return ("users", user) if user else ("groups", group)


def register(admin: typer.Typer) -> None:
    workspaces = typer.Typer(help="Workspaces (PAI): members may submit to the quotas bound to the workspace.",
                             no_args_is_help=True)
    admin.add_typer(workspaces, name="workspaces")

    def base(cluster: str) -> str:
        return f"clusters/{segment(cluster)}/workspaces"

    @workspaces.command("list")
    def list_workspaces(cluster: str = CLUSTER, json_: bool = typer.Option(False, "--json")) -> None:
        """The cluster's workspaces with their members and bound quotas."""
        body = Client().get(base(cluster))
        if json_:
            emit_json(body)
            return
        table([row(w) for w in body["items"]], [("name", "NAME"), ("description", "DESCRIPTION"),
                                                ("members", "MEMBERS"), ("quotas", "QUOTAS")],
              empty=f"no workspaces in cluster {cluster}")

    @workspaces.command("show")
    def show_workspace(name: str, cluster: str = CLUSTER, json_: bool = typer.Option(False, "--json")) -> None:
        data = Client().get(f"{base(cluster)}/{segment(name)}")
        show(data if json_ else row(data), json_)

    @workspaces.command("create")
    def create(name: str, cluster: str = CLUSTER, description: str = typer.Option(None, "--description"),
               users: Annotated[list[str] | None, typer.Option("--user", help="a member (repeatable)")] = None,
               groups: Annotated[list[str] | None, typer.Option("--group", help="a member group (repeatable)")] = None,
               quotas: Annotated[list[str] | None, typer.Option("--quota", help="bind it to this quota (repeatable)")]
               = None) -> None:
        """Create a workspace, e.g. allot admin workspaces create workspace-b --group team-b --quota Quota1.1."""
        client = Client()
        body: dict[str, Any] = {"name": name, "users": users or [], "groups": groups or []}
        if description is not None:
            body["description"] = description
        client.post(base(cluster), json=body)
        for quota in quotas or []:
            client.put(f"quotas/{segment(quota)}/bindings/workspaces/{segment(name)}")
        bound = f", bound to {', '.join(quotas)}" if quotas else ""
        console.print(f"workspace {name} created{bound}", highlight=False)

    @workspaces.command("rename")
    def rename(name: str, new_name: str, cluster: str = CLUSTER) -> None:
        Client().patch(f"{base(cluster)}/{segment(name)}", json={"name": new_name})
        console.print(f"workspace {name} renamed to {new_name}", highlight=False)

    @workspaces.command("describe")
    def describe(name: str, description: str, cluster: str = CLUSTER) -> None:
        Client().patch(f"{base(cluster)}/{segment(name)}", json={"description": description})
        console.print(f"updated the description of workspace {name}", highlight=False)

    @workspaces.command("delete")
    def delete(name: str, cluster: str = CLUSTER,
               yes: bool = typer.Option(False, "--yes", "-y", help="do not ask for confirmation")) -> None:
        """Delete a workspace: its members lose what it granted (its quota bindings); jobs stay."""
        confirm(f"Delete workspace {name} and its quota bindings?", yes, f"workspace {name} was kept")
        Client().delete(f"{base(cluster)}/{segment(name)}")
        console.print(f"workspace {name} deleted", highlight=False)

    @workspaces.command("add-member")
    def add_member(name: str, cluster: str = CLUSTER, user: str = typer.Option(None, "--user"),
                   group: str = typer.Option(None, "--group")) -> None:
        kind, ref = _member(user, group)
        Client().put(f"{base(cluster)}/{segment(name)}/members/{kind}/{segment(ref)}")
        console.print(f"{kind[:-1]} {ref} added to workspace {name}", highlight=False)

    @workspaces.command("remove-member")
    def remove_member(name: str, cluster: str = CLUSTER, user: str = typer.Option(None, "--user"),
                      group: str = typer.Option(None, "--group")) -> None:
        """Remove a member: it may no longer submit to the workspace's quotas (from its next submission)."""
        kind, ref = _member(user, group)
        Client().delete(f"{base(cluster)}/{segment(name)}/members/{kind}/{segment(ref)}")
        console.print(f"{kind[:-1]} {ref} removed from workspace {name}", highlight=False)
