"""`allot admin nodes` and `allot admin devices` against a real server: every cluster's nodes and devices with
their health and utilisation, or one cluster's with --cluster, as tables and as JSON."""

from __future__ import annotations

import json

import pytest

from e2e.clitools import allot, api, ok, unique

pytestmark = pytest.mark.e2e


def add_cluster_with_node(cfg, name: str, node: str, model: str, health: str, utilisation: float) -> None:
    ok(allot("admin", "add-cluster", name, "--backend", "simulated", config_dir=cfg))
    api(cfg, "POST", f"clusters/{name}/nodes", json={
        "name": node, "cpu": 8, "memory": "32Gi", "status": "ready", "devices": [
            {"index": 0, "model": model, "memory": "80Gi", "health": "healthy", "utilisation": utilisation},
            {"index": 1, "model": model, "memory": "80Gi", "health": health, "utilisation": 0.0}]})


def test_admin_nodes_and_devices_span_every_cluster_or_one(admin_config):
    first, second = unique("inv"), unique("inv")
    add_cluster_with_node(admin_config, first, "gpu-a1", "a100", "healthy", 75.0)
    add_cluster_with_node(admin_config, second, "gpu-h1", "h100", "unhealthy", 10.0)
    try:
        nodes = json.loads(ok(allot("admin", "nodes", "--json", config_dir=admin_config)).stdout)
        mine = {n["name"]: n for n in nodes if n["cluster"] in (first, second)}
        assert {(n["cluster"], name) for name, n in mine.items()} == {(first, "gpu-a1"), (second, "gpu-h1")}
        assert mine["gpu-a1"]["status"] == "ready" and len(mine["gpu-a1"]["devices"]) == 2

        devices = json.loads(ok(allot("admin", "devices", "--cluster", second, "--json",
                                      config_dir=admin_config)).stdout)
        assert {d["cluster"] for d in devices} == {second}
        assert [(d["node"], d["index"], d["model"], d["health"], d["utilisation"]) for d in devices] == [
            ("gpu-h1", 0, "h100", "healthy", 10.0), ("gpu-h1", 1, "h100", "unhealthy", 0.0)]

        table = ok(allot("admin", "devices", config_dir=admin_config)).stdout
        assert "CLUSTER" in table and "HEALTH" in table and "UTILISATION" in table
        lines = [line for line in table.splitlines() if first in line or second in line]
        assert len(lines) == 4 and any("unhealthy" in line for line in lines)
        node_table = ok(allot("admin", "nodes", "--cluster", first, config_dir=admin_config)).stdout
        assert "gpu-a1" in node_table and "gpu-h1" not in node_table

        missing = allot("admin", "nodes", "--cluster", unique("nosuch"), config_dir=admin_config)
        assert missing.returncode != 0 and "Traceback" not in missing.stderr
    finally:
        for name in (first, second):
            ok(allot("admin", "remove-cluster", name, "--yes", config_dir=admin_config))
