"""`allot admin get-clusters` and who may use a cluster with which role (Neu.ro's cluster user commands)."""

from __future__ import annotations

from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from allotment.cli.client import Client, segment
from allotment.cli.output import console, emit_json, human_bytes, table, yes_no

ROLE_HELP = "user, manager or admin (DKube aliases: data-scientist = user, operator = admin)"


def count(value: Any) -> str:
    """A pool's device count: the API may give a number or the list of devices."""
    if value is None:
        return ""
    return str(len(value)) if isinstance(value, (list, tuple)) else str(value)


def pool_table(pools: list[dict[str, Any]]) -> Table:
    """Devices first (model, count, usable GPUs, GPU memory); host CPU and memory when the pools report them."""
    columns = [("Pool", "name"), ("Device model", "device_model"), ("Devices", "devices"), ("GPUs", "gpus"),
               ("GPU memory", "memory")]
    columns += [(h, k) for h, k in (("CPU", "cpu"), ("Host memory", "host_memory")) if any(p.get(k) for p in pools)]
    t = Table(show_edge=False, pad_edge=False)
    for header, _ in columns:
        t.add_column(header)
    for pool in pools:
        cells = []
        for _, key in columns:
            value = pool.get(key)
            if key == "name":
                cells.append(str(value or "") + (" (default)" if pool.get("is_default") else ""))
            elif key in ("devices", "gpus"):
                cells.append(count(value))
            elif key in ("memory", "host_memory"):
                cells.append(human_bytes(value))
            else:
                cells.append("-" if value in (None, "") else str(value))
        t.add_row(*(escape(c) for c in cells))
    return t


def print_cluster(cluster: dict[str, Any]) -> None:
    """In the spirit of `neuro admin get-clusters`: the name, its facts, then its pools as a table."""
    console.print(f"[bold]{escape(cluster.get('name', ''))}[/bold]")
    facts = [("Status", cluster.get("status")), ("Backend", cluster.get("backend"))]
    facts += [(k.replace("_", " ").capitalize(), yes_no(v) if isinstance(v, bool) else v) for k, v in cluster.items()
              if k not in {"name", "status", "backend", "pools", "id"} and v is not None
              and not isinstance(v, (dict, list))]
    width = max(len(k) for k, _ in facts)
    for key, value in facts:
        console.print(f"{key.ljust(width)}  {escape('' if value is None else str(value))}", highlight=False)
    pools = cluster.get("pools") or []
    if pools:
        console.print("Pools")
        console.print(pool_table(pools))
    else:
        console.print("Pools   none")


def role_of(answer: Any, asked: str) -> str:
    """The role the server recorded (aliases resolved), falling back to what was asked for."""
    return answer.get("role", asked) if isinstance(answer, dict) else asked


def register(admin: typer.Typer) -> None:
    @admin.command("get-clusters")
    def get_clusters(json_: bool = typer.Option(False, "--json")) -> None:
        """Clusters with status, backend and pools (device model, count, memory)."""
        body = Client().get("clusters")
        clusters = body.get("items", []) if isinstance(body, dict) else body
        if json_:
            emit_json(clusters)
            return
        for i, cluster in enumerate(clusters):
            if i:
                console.print()
            print_cluster(cluster)

    @admin.command("get-cluster-users")
    def get_cluster_users(cluster: str = typer.Argument(...), json_: bool = typer.Option(False, "--json")) -> None:
        """Who may use CLUSTER, with which role and whether directly or through a group."""
        body = Client().get(f"clusters/{segment(cluster)}/users")
        users = body.get("items", []) if isinstance(body, dict) else body
        if json_:
            emit_json(users)
        else:
            table(users, [("username", "USER"), ("role", "ROLE"), ("via", "VIA")], empty=f"nobody has access to {cluster}")

    @admin.command("add-cluster-user")
    def add_cluster_user(cluster: str = typer.Argument(...), user: str = typer.Argument(...),
                         role: str = typer.Argument("user", help=ROLE_HELP)) -> None:
        """Give USER access to CLUSTER with ROLE (default: user)."""
        answer = Client().put(f"clusters/{segment(cluster)}/users/{segment(user)}", json={"role": role})
        console.print(f"Added {user} to cluster {cluster} as {role_of(answer, role)}", highlight=False)

    @admin.command("set-cluster-role")
    def set_cluster_role(cluster: str = typer.Argument(...), user: str = typer.Argument(...),
                         role: str = typer.Argument(..., help=ROLE_HELP)) -> None:
        """Change USER's role on CLUSTER in one step."""
        answer = Client().put(f"clusters/{segment(cluster)}/users/{segment(user)}", json={"role": role})
        console.print(f"{user} is now {role_of(answer, role)} on cluster {cluster}", highlight=False)

    @admin.command("remove-cluster-user")
    def remove_cluster_user(cluster: str = typer.Argument(...), user: str = typer.Argument(...)) -> None:
        """Revoke USER's access to CLUSTER. Their jobs, storage and usage are kept; adding them back restores access."""
        Client().delete(f"clusters/{segment(cluster)}/users/{segment(user)}")
        console.print(f"Removed {user} from cluster {cluster}", highlight=False)

    @admin.command("add-cluster-group")
    def add_cluster_group(cluster: str = typer.Argument(...), group: str = typer.Argument(...),
                          role: str = typer.Argument("user", help=ROLE_HELP)) -> None:
        """Give every member of GROUP access to CLUSTER with ROLE (or change the group's role)."""
        answer = Client().put(f"clusters/{segment(cluster)}/groups/{segment(group)}", json={"role": role})
        console.print(f"Group {group} has role {role_of(answer, role)} on cluster {cluster}", highlight=False)

    @admin.command("remove-cluster-group")
    def remove_cluster_group(cluster: str = typer.Argument(...), group: str = typer.Argument(...)) -> None:
        """Revoke what GROUP granted on CLUSTER (direct grants of its members stay)."""
        Client().delete(f"clusters/{segment(cluster)}/groups/{segment(group)}")
        console.print(f"Removed group {group} from cluster {cluster}", highlight=False)
