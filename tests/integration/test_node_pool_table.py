"""Neu.ro's node-pool table (issue 11, rule 10): per pool the machine type, each node's CPU and memory, preemptible,
each node's GPUs, and min and max nodes, in the API, `allot admin get-clusters`, `allot pools update` and the
console; the cluster's region and zones; min and max nodes bound the nodes a pool spans."""

from __future__ import annotations

import re

import pytest
from cli_inprocess import cli_runner
from inventory_helpers import API, make_user, register_node

ADMIN_PASSWORD = "Adm1n-password!"  # the bootstrap admin of tests/conftest.py's settings
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def pools(client, headers, cluster="local") -> dict[str, dict]:
    r = client.get(f"{API}/clusters/{cluster}", headers=headers)
    assert r.status_code == 200, r.text
    return {p["name"]: p for p in r.json()["pools"]}


def patch_pool(client, headers, pool: str, **body):
    return client.patch(f"{API}/clusters/local/pools/{pool}", headers=headers, json=body)


def make_pool(client, headers, name: str, nodes=(), devices=()):
    r = client.post(f"{API}/clusters/local/pools", headers=headers,
                    json={"name": name, "nodes": list(nodes), "devices": list(devices)})
    assert r.status_code == 201, r.text


def field_errors(response) -> dict[str, str]:
    return {e["field"]: e["message"] for e in response.json().get("errors", [])}


# -- API ------------------------------------------------------------------------------------------------------------

def test_pools_report_their_machines_from_the_inventory(client, admin_headers):
    for name in ("a1", "a2"):
        register_node(client, admin_headers, name, "A100", 4, cpu="96", memory="1152Gi")
    register_node(client, admin_headers, "h1", "H100", 8, cpu="192", memory="2Ti")
    register_node(client, admin_headers, "cpu1", "T4", 0, cpu="8", memory="28Gi")
    make_pool(client, admin_headers, "a100", nodes=["a1", "a2"])
    make_pool(client, admin_headers, "h100-half", devices=[f"h1:{i}" for i in range(4)])

    shown = pools(client, admin_headers)
    assert shown["a100"]["nodes"] == 2
    assert shown["a100"]["machines"] == [{"nodes": 2, "cpu": "96", "memory": "1152Gi",
                                          "gpus": [{"count": 4, "model": "A100"}]}]
    # The pool holds half of h1's GPUs but not the node, whose CPU and memory count in the default pool.
    assert shown["h100-half"]["machines"] == [{"nodes": 1, "cpu": None, "memory": None,
                                               "gpus": [{"count": 4, "model": "H100"}]}]
    default = shown["default"]
    assert default["is_default"] and default["nodes"] == 2
    assert sorted(default["machines"], key=lambda m: m["cpu"]) == [
        {"nodes": 1, "cpu": "192", "memory": "2Ti", "gpus": [{"count": 4, "model": "H100"}]},
        {"nodes": 1, "cpu": "8", "memory": "28Gi", "gpus": []}]
    assert (default["machine_type"], default["preemptible"], default["min_nodes"], default["max_nodes"]) == (
        None, False, None, None)


def test_admin_sets_machine_type_preemptible_and_node_bounds(client, admin_headers):
    register_node(client, admin_headers, "a1", "A100", 4)
    make_pool(client, admin_headers, "a100", nodes=["a1"])
    r = patch_pool(client, admin_headers, "a100", machine_type="p4d.24xlarge", preemptible=True, min_nodes=1,
                   max_nodes=3)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["machine_type"], body["preemptible"], body["min_nodes"], body["max_nodes"]) == (
        "p4d.24xlarge", True, 1, 3)
    # Only what is given changes; null clears.
    r = patch_pool(client, admin_headers, "a100", max_nodes=None)
    assert r.status_code == 200, r.text
    assert (r.json()["machine_type"], r.json()["min_nodes"], r.json()["max_nodes"]) == ("p4d.24xlarge", 1, None)
    assert pools(client, admin_headers)["a100"]["preemptible"] is True
    events = client.get(f"{API}/audit", headers=admin_headers, params={"action": "pool.update"}).json()["items"]
    assert any(e["changes"]["after"].get("machine_type") == "p4d.24xlarge" for e in events)


@pytest.mark.parametrize(("body", "status", "field", "words"), [
    ({"min_nodes": 4, "max_nodes": 2}, 422, "min_nodes", "must not be above max_nodes"),
    ({"min_nodes": -1}, 422, "min_nodes", "greater than or equal to 0"),
    ({"max_nodes": "two"}, 422, "max_nodes", ""),
    ({"max_nodes": 1.5}, 422, "max_nodes", ""),
    ({"preemptible": "yes"}, 422, "preemptible", ""),
    ({"machine_type": "x" * 65}, 422, "machine_type", "at most 64 characters"),
    ({"max_nodes": 0}, 409, "max_nodes", "spans 1 node(s), more than max_nodes 0"),
    ({"zones": ["a"]}, 422, "zones", ""),
])
def test_bad_pool_attributes_are_refused_naming_the_field(client, admin_headers, body, status, field, words):
    register_node(client, admin_headers, "a1", "A100", 2)
    make_pool(client, admin_headers, "a100", nodes=["a1"])
    r = patch_pool(client, admin_headers, "a100", **body)
    assert r.status_code == status, r.text
    errors = field_errors(r)
    assert field in errors, errors
    assert words in errors[field] or words in r.json()["detail"]


def test_a_later_bound_is_checked_against_the_stored_one(client, admin_headers):
    assert patch_pool(client, admin_headers, "default", machine_type="m5.large").status_code == 200
    make_pool(client, admin_headers, "spare")
    assert patch_pool(client, admin_headers, "spare", max_nodes=2).status_code == 200
    r = patch_pool(client, admin_headers, "spare", min_nodes=3)
    assert r.status_code == 422 and "min_nodes (3) must not be above max_nodes (2)" in field_errors(r)["min_nodes"]


def test_the_default_pool_takes_no_node_bounds(client, admin_headers):
    r = patch_pool(client, admin_headers, "default", max_nodes=4)
    assert r.status_code == 422
    assert "takes no node bounds" in field_errors(r)["max_nodes"]
    assert patch_pool(client, admin_headers, "default", preemptible=True).status_code == 200


def test_only_cluster_admins_set_pool_attributes(client, admin_headers):
    manager = make_user(client, "mia", cluster_role="manager")
    r = patch_pool(client, manager, "default", machine_type="m5.large")
    assert r.status_code == 403
    assert pools(client, admin_headers)["default"]["machine_type"] is None


def test_max_nodes_refuses_nodes_and_devices_beyond_it(client, admin_headers):
    for name in ("a1", "a2", "a3"):
        register_node(client, admin_headers, name, "A100", 2)
    make_pool(client, admin_headers, "a100", nodes=["a1"])
    assert patch_pool(client, admin_headers, "a100", max_nodes=2).status_code == 200

    r = client.post(f"{API}/clusters/local/pools/a100/devices", headers=admin_headers, json={"nodes": ["a2", "a3"]})
    assert r.status_code == 409, r.text
    assert "pool a100 may span at most 2 node(s) (its max_nodes) and would span 3" in field_errors(r)["nodes"]
    assert pools(client, admin_headers)["a100"]["nodes"] == 1  # nothing moved
    # One device of another node makes the pool span that node too.
    assert client.post(f"{API}/clusters/local/pools/a100/devices", headers=admin_headers,
                       json={"devices": ["a2:0"]}).status_code == 200
    r = client.post(f"{API}/clusters/local/pools/a100/devices", headers=admin_headers, json={"devices": ["a3:1"]})
    assert r.status_code == 409 and "would span 3" in r.json()["detail"]
    # More devices of a node it spans already are fine.
    assert client.post(f"{API}/clusters/local/pools/a100/devices", headers=admin_headers,
                       json={"devices": ["a2:1"]}).status_code == 200
    assert pools(client, admin_headers)["a100"]["nodes"] == 2


def test_min_nodes_refuses_taking_nodes_out_below_it(client, admin_headers):
    for name in ("a1", "a2"):
        register_node(client, admin_headers, name, "A100", 2)
    make_pool(client, admin_headers, "a100", nodes=["a1", "a2"])
    make_pool(client, admin_headers, "other")
    assert patch_pool(client, admin_headers, "a100", min_nodes=2).status_code == 200

    r = client.post(f"{API}/clusters/local/pools/other/devices", headers=admin_headers, json={"nodes": ["a2"]})
    assert r.status_code == 409
    assert "pool a100 must span at least 2 node(s) (its min_nodes) and would span 1" in field_errors(r)["nodes"]
    r = client.delete(f"{API}/clusters/local/nodes/a2", headers=admin_headers)
    assert r.status_code == 409 and "must span at least 2" in r.json()["detail"]
    # A device out, while its node stays in the pool, keeps the count.
    assert client.delete(f"{API}/clusters/local/pools/a100/devices/a2:1", headers=admin_headers).status_code == 200
    assert patch_pool(client, admin_headers, "a100", min_nodes=None).status_code == 200
    assert client.delete(f"{API}/clusters/local/nodes/a2", headers=admin_headers).status_code == 204


def test_platform_admin_labels_the_cluster_region_and_zones(client, admin_headers):
    r = client.patch(f"{API}/clusters/local", headers=admin_headers, json={"region": "eastus", "zones": ["1", "2"]})
    assert r.status_code == 200, r.text
    assert (r.json()["region"], r.json()["zones"]) == ("eastus", ["1", "2"])
    r = client.patch(f"{API}/clusters/local", headers=admin_headers, json={"zones": ["1", " 1 "]})
    assert r.status_code == 422 and "listed twice" in field_errors(r)["zones.1"]
    r = client.patch(f"{API}/clusters/local", headers=admin_headers, json={"region": "r" * 65})
    assert r.status_code == 422 and "region" in field_errors(r)
    r = client.patch(f"{API}/clusters/local", headers=admin_headers, json={"description": "rack 7"})
    assert r.json()["region"] == "eastus"  # left out: kept
    r = client.patch(f"{API}/clusters/local", headers=admin_headers, json={"region": "", "zones": None})
    assert (r.json()["region"], r.json()["zones"]) == (None, [])
    user = make_user(client, "uma", cluster_role="admin")
    assert client.patch(f"{API}/clusters/local", headers=user, json={"region": "x"}).status_code == 403


# -- CLI ------------------------------------------------------------------------------------------------------------

@pytest.fixture
def allot(client, admin_headers, monkeypatch, tmp_path):
    """Run `allot ARGS...` as the admin against the app in-process; returns (exit code, output)."""
    return cli_runner(client, monkeypatch, tmp_path)(admin_headers)


def table_rows(out: str, cluster: str) -> tuple[list[str], list[list[str]]]:
    """The header and rows of a cluster's node-pool table in get-clusters' output."""
    block = ("\n" + out)[("\n" + out).index(f"\n{cluster}\n") + 1:].split("\n\n")[0].splitlines()
    start = block.index("Node pools")
    header = [c.strip() for c in block[start + 1].split("┃")]
    rows = [[c.strip() for c in line.split("│")] for line in block[start + 3:] if "│" in line]
    return header, rows


def test_get_clusters_prints_neuro_node_pool_table(allot, client, admin_headers):
    for name in ("a1", "a2"):
        register_node(client, admin_headers, name, "nvidia-tesla-k80", 1, cpu="5", memory="50Gi")
    register_node(client, admin_headers, "d1", "T4", 0, cpu="7", memory="28Gi")
    make_pool(client, admin_headers, "k80", nodes=["a1", "a2"])
    code, out = allot("pools", "update", "k80", "--machine-type", "Standard_NC6", "--preemptible",
                      "--min-nodes", "0", "--max-nodes", "30")
    assert code == 0, out
    assert "pool k80 updated" in out
    code, out = allot("pools", "update", "default", "--machine-type", "Standard_D8_v3")
    assert code == 0, out
    code, out = allot("admin", "update-cluster", "local", "--region", "eastus", "--zone", "2")
    assert code == 0, out

    code, out = allot("admin", "get-clusters")
    assert code == 0, out
    block = ("\n" + out)[("\n" + out).index("\nlocal\n") + 1:].split("\n\n")[0].splitlines()
    assert ["Region", "eastus"] in [line.split() for line in block]
    assert ["Zones", "2"] in [line.split() for line in block]
    header, rows = table_rows(out, "local")
    assert header == ["Pool", "Machine", "CPU", "Memory", "Preemptible", "GPU", "Nodes", "Min", "Max"]
    assert ["default", "Standard_D8_v3", "7", "28Gi", "no", "-", "1", "-", "-"] in rows
    assert ["k80", "Standard_NC6", "5", "50Gi", "yes", "1 x nvidia-tesla-k80", "2", "0", "30"] in rows


def test_pools_update_refusals_name_the_field(allot, client, admin_headers):
    register_node(client, admin_headers, "a1", "A100", 1)
    register_node(client, admin_headers, "a2", "A100", 1)
    make_pool(client, admin_headers, "a100", nodes=["a1", "a2"])
    code, out = allot("pools", "update", "a100", "--min-nodes", "5", "--max-nodes", "2")
    assert code == 1 and "min_nodes" in out and "must not be above max_nodes" in out
    code, out = allot("pools", "update", "a100", "--max-nodes", "1")
    assert code == 1 and "spans 2 node(s), more than max_nodes 1" in out
    code, out = allot("pools", "update", "a100", "--clear", "max-nodes", "--max-nodes", "3")
    assert code != 0 and "--clear max-nodes and --max-nodes together" in out
    assert allot("pools", "update", "a100", "--max-nodes", "2")[0] == 0
    code, out = allot("pools", "update", "a100", "--clear", "max-nodes", "--json")
    assert code == 0 and '"max_nodes": null' in out


# -- console --------------------------------------------------------------------------------------------------------

def sign_in(client) -> str:
    """Sign the test client in to the console as the admin; returns a CSRF token."""
    token = CSRF.search(client.get("/login").text).group(1)
    r = client.post("/login", data={"username": "admin", "password": ADMIN_PASSWORD, "csrf_token": token,
                                    "next": "/ui/"}, follow_redirects=False)
    assert r.status_code == 303, r.text
    return CSRF.search(client.get("/ui/clusters/local").text).group(1)


def cells(html: str, testid: str) -> list[str]:
    row = re.search(rf'<tr data-testid="{re.escape(testid)}">(.*?)</tr>', html, re.DOTALL).group(1)
    return [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.DOTALL)]


def test_console_shows_the_node_pool_table_and_sets_pool_attributes(client, admin_headers):
    register_node(client, admin_headers, "a1", "A100", 4, cpu="96", memory="1152Gi")
    make_pool(client, admin_headers, "a100", nodes=["a1"])
    client.patch(f"{API}/clusters/local", headers=admin_headers, json={"region": "eastus", "zones": ["2"]})
    token = sign_in(client)
    r = client.post("/ui/clusters/local/pools/a100", data={"csrf_token": token, "machine_type": "p4d.24xlarge",
                                                            "preemptible": "yes", "min_nodes": "1",
                                                            "max_nodes": "4"}, follow_redirects=False)
    assert r.status_code == 303, r.text

    page = client.get("/ui/clusters").text
    assert "<th>Machine</th><th>CPU</th><th>Memory</th><th>Preemptible</th><th>GPU</th>" in page
    assert cells(page, "pool-local-a100") == ["a100", "p4d.24xlarge", "96", "1152Gi", "yes", "4 × A100", "1", "1",
                                               "4"]
    assert "region <strong>eastus</strong>" in page and "zones <strong>2</strong>" in page
    detail = client.get("/ui/clusters/local").text
    assert cells(detail, "pool-local-a100")[1] == "p4d.24xlarge"
    assert 'name="max_nodes"' in detail and 'value="p4d.24xlarge"' in detail

    # Refusals come back as a page naming the field; nothing changes.
    r = client.post("/ui/clusters/local/pools/a100", data={"csrf_token": token, "min_nodes": "5",
                                                            "max_nodes": "2"})
    assert r.status_code == 422 and "min_nodes" in r.text
    r = client.post("/ui/clusters/local/pools/a100", data={"csrf_token": token, "max_nodes": "lots"})
    assert r.status_code == 422 and "max_nodes: must be a whole number" in r.text.lower()
    assert pools(client, admin_headers)["a100"]["max_nodes"] == 4


def test_console_pool_form_needs_the_cluster_admin_role(client, admin_headers):
    make_user(client, "mia", cluster_role="manager")
    token = CSRF.search(client.get("/login").text).group(1)
    client.post("/login", data={"username": "mia", "password": "Us3r-password!", "csrf_token": token,
                                "next": "/ui/"}, follow_redirects=False)
    page = client.get("/ui/clusters/local")
    assert page.status_code == 200 and 'data-testid="pool-settings"' not in page.text
    token = CSRF.search(page.text).group(1)
    r = client.post("/ui/clusters/local/pools/default", data={"csrf_token": token, "machine_type": "x"})
    assert r.status_code == 403
    assert pools(client, admin_headers)["default"]["machine_type"] is None
