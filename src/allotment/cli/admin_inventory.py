"""`allot admin nodes` and `allot admin devices`: every engine's nodes and devices with their health and utilisation,
across all clusters or one (`--cluster`). The same listings as `allot pools nodes|devices --cluster C`
(GET /clusters/{cluster}/nodes and /devices), with the cluster named on each row."""

from __future__ import annotations

from typing import Any

import typer

from allotment.cli.client import Client, segment
from allotment.cli.output import show

NODE_COLUMNS = ["cluster", "name", "status", "health", "pool", "cpu", "memory", "devices", "utilisation"]
DEVICE_COLUMNS = ["cluster", "node", "index", "model", "memory", "pool", "health", "utilisation", "job_id"]
CLUSTER = typer.Option(None, "--cluster", help="one cluster (default: every cluster you may see)")


def cluster_names(client: Client, cluster: str | None) -> list[str]:
    if cluster is not None:
        return [cluster]
    body = client.get("clusters")
    clusters = body.get("items", []) if isinstance(body, dict) else body
    return [c["name"] for c in clusters]


def listing(what: str, cluster: str | None) -> list[dict[str, Any]]:
    """Each cluster's nodes or devices, the cluster's name first on each."""
    client = Client()
    rows = []
    for name in cluster_names(client, cluster):
        body = client.get(f"clusters/{segment(name)}/{what}")
        rows += [{"cluster": name, **item} for item in body["items"]]
    return rows


def register(admin: typer.Typer) -> None:
    @admin.command("nodes")
    def nodes(cluster: str = CLUSTER, json_: bool = typer.Option(False, "--json")) -> None:
        """Every engine's nodes: status (ready, draining, down), health, CPU, memory, devices, mean utilisation."""
        rows = listing("nodes", cluster)
        if json_:
            show(rows, True)
            return
        show([{**n, "devices": len(n["devices"])} for n in rows], False, NODE_COLUMNS, title="nodes")

    @admin.command("devices")
    def devices(cluster: str = CLUSTER, json_: bool = typer.Option(False, "--json")) -> None:
        """Every engine's devices: model, memory, pool, health, utilisation (percent) and the job holding each."""
        show(listing("devices", cluster), json_, DEVICE_COLUMNS, title="devices")
