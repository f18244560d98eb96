"""Issue 11, rules 3 and 4 from the CLI: `allot quotas scale` without --pool and partial `allot quotas set`."""

from __future__ import annotations

import json

from inventory_helpers import API, register_node
from test_cli_quotas_jobs import allot  # noqa: F401 - a fixture


def gpu_entries(allot, name):  # noqa: F811
    code, out = allot("quotas", "show", name, "--json")
    assert code == 0, out
    return sorted((r["pool"], r["guarantee"], r["limit"]) for r in json.loads(out)["resources"]
                  if r["resource"] == "gpu")


def pai_tree(allot):  # noqa: F811
    assert allot("quotas", "create", "Quota1", "--pool", "a100", "--gpu", "128", "--gpu-limit", "128")[0] == 0
    for name, size in (("Quota1.1", "48"), ("Quota1.2", "80")):
        code, out = allot("quotas", "create", name, "--parent", "Quota1", "--pool", "a100", "--gpu", size,
                          "--gpu-limit", size)
        assert code == 0, out


def test_scale_without_pool_as_the_readme_writes_it(allot, client, admin_headers):  # noqa: F811
    register_node(client, admin_headers, "gpu-01", "A100", 8)
    assert allot("pools", "create", "a100", "--node", "gpu-01")[0] == 0
    pai_tree(allot)
    code, out = allot("quotas", "scale", "Quota1.1=56", "Quota1.2=72")
    assert code == 0, out
    assert gpu_entries(allot, "Quota1.1") == [("a100", "56", "56")]
    assert gpu_entries(allot, "Quota1.2") == [("a100", "72", "72")]
    for pool in ([], ["--pool", "a100"], ["--pool", "*"]):
        code, out = allot("quotas", "scale", "Quota1.1=200", *pool)
        assert code == 1 and "Quota1 guarantees 128" in out, (pool, out)
    assert gpu_entries(allot, "Quota1.1") == [("a100", "56", "56")]


def test_scale_without_pool_names_the_pools_to_choose_from(allot, client, admin_headers):  # noqa: F811
    register_node(client, admin_headers, "gpu-01", "A100", 8)
    assert allot("pools", "create", "a100", "--node", "gpu-01")[0] == 0
    r = client.post(f"{API}/clusters/local/quotas", headers=admin_headers, json={"name": "two", "resources": [
        {"resource": "gpu", "pool": "a100", "guarantee": 4}, {"resource": "gpu", "guarantee": 2}]})
    assert r.status_code == 201, r.text
    code, out = allot("quotas", "scale", "two=6")
    assert code == 1
    assert "quota two has gpu entries in pools * and a100: choose one of them with pool" in out
    assert "--pool" in out
    code, out = allot("quotas", "scale", "two=6", "--pool", "a100")
    assert code == 0, out
    assert gpu_entries(allot, "two") == [("*", "2", "unlimited"), ("a100", "6", "unlimited")]


def test_set_changes_only_the_amounts_given(allot):  # noqa: F811
    assert allot("quotas", "create", "Research", "--gpu", "8", "--gpu-limit", "16", "--cpu", "32")[0] == 0
    code, out = allot("quotas", "set", "Research", "--gpu-limit", "14")
    assert code == 0, out
    assert gpu_entries(allot, "Research") == [("*", "8", "14")]
    assert allot("quotas", "set", "Research", "--gpu", "6")[0] == 0
    assert gpu_entries(allot, "Research") == [("*", "6", "14")]
    assert allot("quotas", "set", "Research", "--gpu-limit", "unlimited", "--weight", "2")[0] == 0
    assert gpu_entries(allot, "Research") == [("*", "6", "unlimited")]
    code, out = allot("quotas", "show", "Research", "--json")
    shown = json.loads(out)
    assert shown["weight"] == 2.0
    assert [(r["resource"], r["guarantee"]) for r in shown["resources"] if r["resource"] == "cpu"] == [("cpu", "32")]
    assert allot("quotas", "set", "Research", "--gpu-limit", "14")[0] == 0
    code, out = allot("quotas", "set", "Research", "--gpu", "20")
    assert code == 1 and "limit of 14 gpu in all pools is below its guarantee of 20" in out
    assert gpu_entries(allot, "Research") == [("*", "6", "14")]
