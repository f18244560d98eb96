"""`allot pools list|show|create|update|assign|unassign|rename|delete|nodes|devices` (registered by cli/quotas.py)."""

from __future__ import annotations

from typing import Annotated

import typer

from allotment.cli.admin_clusters import pool_table
from allotment.cli.client import Client, segment
from allotment.cli.output import console, emit_json, print_table, show

POOL_COLUMNS = ["name", "device_model", "devices", "gpus", "memory", "cpu", "host_memory", "machine_type",
                "preemptible", "nodes", "min_nodes", "max_nodes"]
CLEARABLE = {"machine-type": "machine_type", "min-nodes": "min_nodes", "max-nodes": "max_nodes"}
DEVICE_COLUMNS = ["id", "node", "index", "model", "memory", "pool", "health", "utilisation", "job_id"]


def register(app: typer.Typer) -> None:
    pools = typer.Typer(no_args_is_help=True, help="Pools of devices (one GPU model each) and the cluster inventory.")
    app.add_typer(pools, name="pools")
    cluster_opt = typer.Option("local", "--cluster")

    @pools.command("list")
    def list_pools(cluster: str = cluster_opt, json_: bool = typer.Option(False, "--json")) -> None:
        body = Client().get(f"clusters/{cluster}/pools")
        show(body if json_ else body["items"], json_, POOL_COLUMNS, title=f"pools of {cluster}")

    @pools.command("show")
    def show_pool(name: str, cluster: str = cluster_opt, json_: bool = typer.Option(False, "--json")) -> None:
        pool = Client().get(f"clusters/{cluster}/pools/{name}")
        if json_:
            emit_json(pool)
            return
        show({k: pool[k] for k in POOL_COLUMNS} | {"profile_order": ", ".join(pool["profile_order"])}, False)
        show(pool["device_list"], False, DEVICE_COLUMNS, title="devices")

    @pools.command("create")
    def create(name: str, cluster: str = cluster_opt,
               device: Annotated[list[str] | None, typer.Option("--device", help="device id or NODE:INDEX (repeat)")] = None,
               node: Annotated[list[str] | None, typer.Option("--node", help="a whole node (repeat)")] = None) -> None:
        """Create a pool; devices given leave the default pool. A pool holds one GPU model."""
        pool = Client().post(f"clusters/{cluster}/pools", json={"name": name, "devices": device or [], "nodes": node or []})
        console.print(f"pool {pool['name']} created with {pool['devices']} device(s)")

    @pools.command("assign")
    def assign(name: str, cluster: str = cluster_opt,
               device: Annotated[list[str] | None, typer.Option("--device", help="device id or NODE:INDEX (repeat)")] = None,
               node: Annotated[list[str] | None, typer.Option("--node", help="a whole node (repeat)")] = None) -> None:
        """Move devices or whole nodes into a pool."""
        if not device and not node:
            raise typer.BadParameter("give --device or --node")
        pool = Client().post(f"clusters/{cluster}/pools/{name}/devices", json={"devices": device or [], "nodes": node or []})
        console.print(f"pool {pool['name']} now holds {pool['devices']} device(s)")

    @pools.command("unassign")
    def unassign(name: str, device: str = typer.Argument(..., help="device id or NODE:INDEX"),
                 cluster: str = cluster_opt) -> None:
        """Return a device to the default pool."""
        Client().delete(f"clusters/{cluster}/pools/{name}/devices/{device}")
        console.print(f"device {device} returned to the default pool")

    @pools.command("update")
    def update(name: str, cluster: str = cluster_opt,
               machine_type: Annotated[str | None, typer.Option("--machine-type", help="the machines' type, "
                                                                "shown by get-clusters")] = None,
               preemptible: Annotated[bool | None, typer.Option("--preemptible/--no-preemptible",
                                                                help="whether the machines are preemptible (spot)")] = None,
               min_nodes: Annotated[int | None, typer.Option("--min-nodes", help="fewest nodes the pool may span: "
                                                             "taking nodes or devices out below it is refused")] = None,
               max_nodes: Annotated[int | None, typer.Option("--max-nodes", help="most nodes the pool may span: "
                                                             "adding nodes or devices beyond it is refused")] = None,
               description: Annotated[str | None, typer.Option("--description")] = None,
               clear: Annotated[list[str] | None, typer.Option("--clear", help="remove machine-type, min-nodes or "
                                                               "max-nodes (repeat)")] = None,
               json_: bool = typer.Option(False, "--json")) -> None:
        """Set a pool's node-pool attributes (Neu.ro): machine type, preemptible, min and max nodes."""
        body: dict = {k: v for k, v in (("machine_type", machine_type), ("preemptible", preemptible),
                                        ("min_nodes", min_nodes), ("max_nodes", max_nodes),
                                        ("description", description)) if v is not None}
        for item in clear or ():
            if item not in CLEARABLE:
                raise typer.BadParameter(f"--clear takes {', '.join(CLEARABLE)}, got {item!r}")
            if CLEARABLE[item] in body:
                raise typer.BadParameter(f"--clear {item} and --{item} together")
            body[CLEARABLE[item]] = None
        if not body:
            raise typer.BadParameter("nothing to change: give --machine-type, --preemptible, --min-nodes, "
                                     "--max-nodes, --description or --clear")
        pool = Client().patch(f"clusters/{segment(cluster)}/pools/{segment(name)}", json=body)
        if json_:
            emit_json(pool)
            return
        console.print(f"pool {pool['name']} updated: {', '.join(body)}", highlight=False)
        print_table(pool_table([pool]))

    @pools.command("rename")
    def rename(name: str, new_name: str, cluster: str = cluster_opt) -> None:
        Client().patch(f"clusters/{cluster}/pools/{name}", json={"name": new_name})
        console.print(f"pool {name} renamed to {new_name}")

    @pools.command("delete")
    def delete(name: str, cluster: str = cluster_opt) -> None:
        """Delete a pool (refused while its devices run jobs); its devices return to the default pool."""
        Client().delete(f"clusters/{cluster}/pools/{name}")
        console.print(f"pool {name} deleted; its devices are back in the default pool")

    @pools.command("nodes")
    def nodes(cluster: str = cluster_opt, json_: bool = typer.Option(False, "--json")) -> None:
        """Nodes with status, health and utilisation."""
        body = Client().get(f"clusters/{cluster}/nodes")
        rows = [{**n, "devices": len(n["devices"])} for n in body["items"]]
        show(body if json_ else rows, json_,
             ["name", "pool", "status", "health", "cpu", "memory", "devices", "utilisation"], title="nodes")

    @pools.command("devices")
    def devices(cluster: str = cluster_opt, json_: bool = typer.Option(False, "--json")) -> None:
        """Every device with its pool, health, utilisation and the job holding it."""
        body = Client().get(f"clusters/{cluster}/devices")
        show(body if json_ else body["items"], json_, DEVICE_COLUMNS, title="devices")
