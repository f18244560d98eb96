"""`allot admin groups list|show|create|rename|describe|delete|add-member|remove-member`."""

from __future__ import annotations

from typing import Any

import typer

from allotment.cli.client import Client, segment
from allotment.cli.inputs import confirm
from allotment.cli.output import console, emit_json, show, table


def member_name(member: Any) -> str:
    return member.get("username", str(member)) if isinstance(member, dict) else str(member)


def group_row(group: dict[str, Any]) -> dict[str, Any]:
    members = group.get("members")
    size = group.get("member_count", len(members) if isinstance(members, list) else None)
    return {"name": group.get("name"), "description": group.get("description"), "members": size,
            "builtin": "built-in" if group.get("builtin") or group.get("is_builtin") else ""}


def register(admin: typer.Typer) -> None:
    groups = typer.Typer(help="Groups of users: membership and what is granted through them.", no_args_is_help=True)
    admin.add_typer(groups, name="groups")

    @groups.command("list")
    def list_groups(json_: bool = typer.Option(False, "--json")) -> None:
        """All groups."""
        body = Client().get("groups")
        items = body.get("items", []) if isinstance(body, dict) else body
        if json_:
            emit_json(items)
        else:
            table([group_row(g) for g in items],
                  [("name", "NAME"), ("description", "DESCRIPTION"), ("members", "MEMBERS"), ("builtin", "")])

    @groups.command("show")
    def show_group(group: str = typer.Argument(...), json_: bool = typer.Option(False, "--json")) -> None:
        """A group with its members."""
        data = Client().get(f"groups/{segment(group)}")
        if not json_:
            data = {**data, "members": ", ".join(member_name(m) for m in data.get("members") or [])}
            if isinstance(data.get("cluster_roles"), dict):
                data["cluster_roles"] = ", ".join(f"{c}={r}" for c, r in data["cluster_roles"].items())
        show(data, json_)

    @groups.command("create")
    def create_group(name: str = typer.Argument(...), description: str = typer.Option(None, "--description")) -> None:
        """Create a group."""
        body: dict[str, Any] = {"name": name}
        if description is not None:
            body["description"] = description
        created = Client().post("groups", json=body)
        console.print(f"Created group {created.get('name', name)}", highlight=False)

    @groups.command("rename")
    def rename_group(group: str = typer.Argument(...), new_name: str = typer.Argument(...)) -> None:
        """Rename a group (the built-in groups cannot be renamed)."""
        Client().patch(f"groups/{segment(group)}", json={"name": new_name})
        console.print(f"Renamed group {group} to {new_name}", highlight=False)

    @groups.command("describe")
    def describe_group(group: str = typer.Argument(...), description: str = typer.Argument(...)) -> None:
        """Change a group's description."""
        Client().patch(f"groups/{segment(group)}", json={"description": description})
        console.print(f"Updated the description of group {group}", highlight=False)

    @groups.command("delete")
    def delete_group(group: str = typer.Argument(...),
                     yes: bool = typer.Option(False, "--yes", "-y", help="do not ask for confirmation"),
                     force: bool = typer.Option(False, "--force", help="delete a group that has members or grants")
                     ) -> None:
        """Delete a group. One with members, cluster roles, quota bindings or workspace memberships is refused
        (they are listed) unless --force: then its members lose only what was granted through it and keep their
        direct grants."""
        confirm(f"Delete group {group} and what was granted through it?", yes, f"group {group} was kept")
        Client().delete(f"groups/{segment(group)}", params={"force": "true"} if force else None)
        console.print(f"Deleted group {group}", highlight=False)

    @groups.command("add-member")
    def add_member(group: str = typer.Argument(...), user: str = typer.Argument(...)) -> None:
        """Add USER to GROUP."""
        Client().put(f"groups/{segment(group)}/members/{segment(user)}")
        console.print(f"Added {user} to group {group}", highlight=False)

    @groups.command("remove-member")
    def remove_member(group: str = typer.Argument(...), user: str = typer.Argument(...)) -> None:
        """Remove USER from GROUP."""
        Client().delete(f"groups/{segment(group)}/members/{segment(user)}")
        console.print(f"Removed {user} from group {group}", highlight=False)
