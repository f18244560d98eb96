"""`allot workspaces ...`: the caller's workspaces (ClearML, PAI): create, rename, describe, members with their roles,
invitations by e-mail (invite, invitations, accept, cancel-invitation), leave, remove-member, set-role, credentials
scoped to a workspace and who may submit to each bound quota (submit-rules). Cluster admins also have
`allot admin workspaces`."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from allotment.cli.admin_workspaces import row
from allotment.cli.client import Client, segment
from allotment.cli.output import console, emit_json, show, table

CLUSTER = typer.Option("local", "--cluster", help="the workspace's cluster")
JSON = typer.Option(False, "--json")
KINDS = {"user": "users", "service-account": "service-accounts", "group": "groups"}


def _base(cluster: str, name: str | None = None) -> str:
    path = f"clusters/{segment(cluster)}/workspaces"
    return f"{path}/{segment(name)}" if name is not None else path


def _member_path(cluster: str, name: str, member: str) -> str:
    """MEMBER is `bob`, `user:bob`, `service-account:ci` or `group:team-b`."""
    kind, sep, ref = member.partition(":")
    if not sep:
        kind, ref = "user", member
    if kind not in KINDS or not ref:
        raise typer.BadParameter(f"'{member}': give a username, or user:NAME, service-account:NAME or group:NAME",
                                 param_hint="MEMBER")
    return f"{_base(cluster, name)}/members/{KINDS[kind]}/{segment(ref)}"


def register(app: typer.Typer) -> None:
    ws = typer.Typer(help="Workspaces: members with roles, invitations, leaving, scoped credentials.",
                     no_args_is_help=True)
    app.add_typer(ws, name="workspaces")

    @ws.command("list")
    def list_mine(json_: bool = JSON) -> None:
        """Your workspaces in every cluster (your personal one first) and your role in each."""
        items = Client().get("workspaces")
        if json_:
            emit_json(items)
            return
        table([row(w) | {"cluster": w["cluster"], "role": w.get("my_role") or "-"} for w in items],
              [("cluster", "CLUSTER"), ("name", "NAME"), ("role", "ROLE"), ("members", "MEMBERS"),
               ("quotas", "QUOTAS")], empty="you are in no workspace")

    @ws.command("create")
    def create(name: str, cluster: str = CLUSTER, description: str = typer.Option(None, "--description")) -> None:
        """Create a workspace; you become its owner."""
        body: dict[str, Any] = {"name": name}
        if description is not None:
            body["description"] = description
        Client().post(_base(cluster), json=body)
        console.print(f"workspace {name} created; you own it", highlight=False)

    @ws.command("rename")
    def rename(name: str, new_name: str, cluster: str = CLUSTER) -> None:
        Client().patch(_base(cluster, name), json={"name": new_name})
        console.print(f"workspace {name} renamed to {new_name}", highlight=False)

    @ws.command("describe")
    def describe(name: str, description: str, cluster: str = CLUSTER) -> None:
        Client().patch(_base(cluster, name), json={"description": description})
        console.print(f"updated the description of workspace {name}", highlight=False)

    @ws.command("show")
    def show_one(name: str, cluster: str = CLUSTER, json_: bool = JSON) -> None:
        data = Client().get(_base(cluster, name))
        show(data if json_ else row(data) | {"your role": data.get("my_role") or "-"}, json_)

    @ws.command("members")
    def members(name: str, cluster: str = CLUSTER, json_: bool = JSON) -> None:
        """Members with their roles, and the pending invitations with their dates."""
        client = Client()
        data = client.get(_base(cluster, name))
        pending = client.get(f"{_base(cluster, name)}/invitations")
        if json_:
            emit_json({"members": data["members"], "invitations": pending})
            return
        rows = [{"member": f"{m['kind']}:{m['name']}", "role": m["role"], "since": m["since"], "status": "member"}
                for m in data["members"]]
        rows += [{"member": i["email"], "role": i["role"], "since": i["invited_at"],
                  "status": "invitation expired" if i["status"] == "expired" else f"invited until {i['expires_at']}"}
                 for i in pending]
        table(rows, [("member", "MEMBER"), ("role", "ROLE"), ("status", "STATUS"), ("since", "SINCE")],
              empty=f"workspace {name} has no members")

    @ws.command("invite")
    def invite(name: str, email: str, cluster: str = CLUSTER,
               role: str = typer.Option("member", "--role", help="owner, admin, member or viewer"),
               days: int = typer.Option(7, "--days", help="days the invitation may be accepted in (1 to 90)")) -> None:
        """Invite an e-mail address; prints the token and link (shown once) to send to the invitee."""
        sent = Client().post(f"{_base(cluster, name)}/invitations",
                             json={"email": email, "role": role, "lifetime_days": days})
        console.print(f"invited {sent['email']} to workspace {name} as {sent['role']} (invitation {sent['id']}); "
                      f"it expires {sent['expires_at']}\n"
                      f"token: {sent['token']}\nlink: {sent['link']}", highlight=False)

    @ws.command("invitations")
    def invitations(name: Annotated[str | None, typer.Argument(help="a workspace: its pending invitations; "
                                                                    "none: those for you")] = None,
                    cluster: str = CLUSTER, json_: bool = JSON) -> None:
        items = Client().get(f"{_base(cluster, name)}/invitations" if name else "workspace-invitations")
        if json_:
            emit_json(items)
            return
        table(items, [("id", "ID"), ("cluster", "CLUSTER"), ("workspace", "WORKSPACE"), ("email", "EMAIL"),
                      ("role", "ROLE"), ("invited_at", "INVITED"), ("expires_at", "EXPIRES"), ("status", "STATUS")],
              empty="no pending invitations")

    @ws.command("accept")
    def accept(invitation: Annotated[str, typer.Argument(help="the invitation's token, or its id when it names "
                                                              "your e-mail address")]) -> None:
        client = Client()
        if invitation.strip().isdigit():
            done = client.post(f"workspace-invitations/{invitation.strip()}/accept")
        else:
            done = client.post("workspace-invitations/accept", json={"token": invitation})
        console.print(f"you joined workspace {done['workspace']} (cluster {done['cluster']}) as {done['role']}",
                      highlight=False)

    @ws.command("cancel-invitation")
    def cancel_invitation(name: str, invitation: int, cluster: str = CLUSTER) -> None:
        Client().delete(f"{_base(cluster, name)}/invitations/{invitation}")
        console.print(f"invitation {invitation} to workspace {name} cancelled", highlight=False)

    @ws.command("leave")
    def leave(name: str, cluster: str = CLUSTER) -> None:
        """Leave a workspace: its quotas and your credentials scoped to it go; your jobs stay."""
        done = Client().post(f"{_base(cluster, name)}/leave")
        revoked = done.get("revoked_credentials") or []
        note = f"; revoked credential(s) {', '.join(revoked)}" if revoked else ""
        console.print(f"you left workspace {name}{note}", highlight=False)

    @ws.command("add-member")
    def add_member(name: str, member: str, cluster: str = CLUSTER,
                   role: str = typer.Option("member", "--role", help="owner, admin, member or viewer")) -> None:
        """Add a user, service account (service-account:NAME) or group (group:NAME) directly."""
        Client().put(_member_path(cluster, name, member), json={"role": role})
        console.print(f"{member} added to workspace {name} as {role}", highlight=False)

    @ws.command("remove-member")
    def remove_member(name: str, member: str, cluster: str = CLUSTER) -> None:
        """Remove a member: its credentials scoped to the workspace are revoked; its jobs stay."""
        Client().delete(_member_path(cluster, name, member))
        console.print(f"{member} removed from workspace {name}", highlight=False)

    @ws.command("set-role")
    def set_role(name: str, member: str, role: str, cluster: str = CLUSTER) -> None:
        Client().patch(_member_path(cluster, name, member), json={"role": role})
        console.print(f"{member} is now {role} of workspace {name}", highlight=False)

    @ws.command("create-credential")
    def create_credential(name: str, cluster: str = CLUSTER, label: str = typer.Option(None, "--label")) -> None:
        """A credential of yours that acts in this workspace only (the secret is shown once)."""
        made = Client().post(f"{_base(cluster, name)}/credentials", json={"label": label})
        console.print(f"access key: {made['access_key']}\nsecret key: {made['secret_key']}\n"
                      f"scoped to workspace {made['workspace']}", highlight=False)

    @ws.command("submit-rules")
    def submit_rules(name: str, quota: Annotated[str | None, typer.Argument(help="a bound quota to set")] = None,
                     cluster: str = CLUSTER,
                     roles: Annotated[list[str] | None, typer.Option("--role", help="a role that may submit")] = None,
                     users: Annotated[list[str] | None, typer.Option("--user", help="a member who may submit")]
                     = None, json_: bool = JSON) -> None:
        """PAI resource user roles: who may submit to each bound quota (no rule: member and up). With QUOTA, replace
        its rules (no --role and no --user restores the default)."""
        client = Client()
        if quota is not None:
            client.put(f"{_base(cluster, name)}/submit-rules/{segment(quota)}",
                       json={"roles": roles or [], "users": users or []})
        items = client.get(f"{_base(cluster, name)}/submit-rules")
        if json_:
            emit_json(items)
            return
        table([{"quota": r["quota"], "roles": ", ".join(r["roles"]) if r["roles"] is not None else "member and up",
                "users": ", ".join(r["users"]) or "-"} for r in items],
              [("quota", "QUOTA"), ("roles", "ROLES"), ("users", "MEMBERS")], empty=f"no quota is bound to {name}")
