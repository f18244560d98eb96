"""The console's pools and nodes over HTTP: the cluster page's per-node summary ("8 of 8 allocated") with filters
and each node's devices on demand; creating, renaming and deleting pools (refused while a job runs on one, said
beside the pool) and moving nodes and devices into a pool, each error under its field."""

from __future__ import annotations

import re

from inventory_helpers import API, hold_devices, set_state
from sched_helpers import Harness
from test_web_console import ADMIN_PASSWORD, csrf, make_user, sign_in

POOLS = "/ui/clusters/sim/pools"


def cluster(client, admin_headers) -> Harness:
    h = Harness(client, admin_headers, cluster="sim")
    h.node("a1", gpus=8, model="A100")
    h.node("a2", gpus=8, model="A100")
    h.node("h1", gpus=8, model="H100")
    h.quota("team", [{"resource": "gpu", "guarantee": 24}])
    return h


def node_names(page: str) -> list[str]:
    return re.findall(r'<tr data-testid="node-([^"]+)">', page)


def test_the_cluster_page_summarises_each_node_and_filters_them(client, admin_headers):
    h = cluster(client, admin_headers)
    h.pool("a100", ["a1", "a2"])
    full = h.submit("team", gpu=8, pool="a100")
    hold_devices(client, full, [f"a1:{i}" for i in range(8)], "a100")
    part = h.submit("team", gpu=2, pool="a100")
    hold_devices(client, part, ["a2:0", "a2:1"], "a100")
    sign_in(client, "admin", ADMIN_PASSWORD)
    page = client.get("/ui/clusters/sim").text
    assert node_names(page) == ["a1", "a2", "h1"]
    assert "8 of 8 allocated" in page and "2 of 8 allocated" in page and "0 of 8 allocated" in page
    assert "a1:0 · A100" not in page and "devices-a1" not in page  # no device rows until asked for
    assert "3 of 3 nodes · 10 of 24 GPUs allocated" in page
    assert node_names(client.get("/ui/clusters/sim?allocation=full").text) == ["a1"]
    assert node_names(client.get("/ui/clusters/sim?allocation=partly").text) == ["a2"]
    assert node_names(client.get("/ui/clusters/sim?pool=default").text) == ["h1"]
    assert node_names(client.get("/ui/clusters/sim?q=A&pool=a100&allocation=free").text) == []
    assert "No node matches" in client.get("/ui/clusters/sim?q=zzz").text
    assert node_names(client.get("/ui/clusters/sim?status=bogus").text) == ["a1", "a2", "h1"]  # ignored
    # Details on demand: the fragment for htmx, the node's page otherwise.
    fragment = client.get("/ui/clusters/sim/nodes/a2", headers={"HX-Request": "true"}).text
    assert "<html" not in fragment and "a2:0 · A100" in fragment and f"job {part}" in fragment
    assert "a2:7 · A100" in client.get("/ui/clusters/sim/nodes/a2").text


def test_create_rename_and_delete_pools_with_errors_beside_their_fields(client, admin_headers):
    h = cluster(client, admin_headers)
    sign_in(client, "admin", ADMIN_PASSWORD)
    token = csrf(client, POOLS)
    r = client.post(POOLS, data={"csrf_token": token, "name": "h100", "nodes": "h1, nowhere"})
    assert r.status_code == 422 and 'data-testid="errors-nodes"' in r.text and "nowhere" in r.text
    assert 'value="h1, nowhere"' in r.text
    r = client.post(POOLS, data={"csrf_token": token, "name": "h100", "nodes": "h1"}, follow_redirects=False)
    assert r.status_code == 303, r.text
    assert h.get("/clusters/sim/pools/h100")["devices"] == 8
    r = client.post(POOLS, data={"csrf_token": token, "name": "h100"})
    assert r.status_code == 409 and 'data-testid="errors-name"' in r.text
    r = client.post(f"{POOLS}/h100/rename", data={"csrf_token": token, "name": "hopper"}, follow_redirects=False)
    assert r.status_code == 303
    assert client.get(f"{API}/clusters/sim/pools/hopper", headers=admin_headers).status_code == 200
    r = client.post(f"{POOLS}/hopper/rename", data={"csrf_token": token, "name": "default"})
    assert r.status_code == 409 and re.search(r'<details open>\s*<summary>Rename</summary>', r.text)
    job = h.submit("team", gpu=1, pool="hopper")
    hold_devices(client, job, ["h1:0"], "hopper")
    r = client.post(f"{POOLS}/hopper/delete", data={"csrf_token": token})
    assert r.status_code == 409 and 'data-testid="refusal"' in r.text and f"({job})" in r.text
    assert 'data-testid="error-page"' not in r.text
    set_state(client, job, "succeeded")
    r = client.post(f"{POOLS}/hopper/delete", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303, re.findall(r'data-testid="refusal">(.*?)</div>', r.text)
    assert client.get(f"{API}/clusters/sim/pools/hopper", headers=admin_headers).status_code == 404


def test_assign_nodes_and_devices_into_a_pool(client, admin_headers):
    h = cluster(client, admin_headers)
    h.pool("a100", ["a1"])
    sign_in(client, "admin", ADMIN_PASSWORD)
    token = csrf(client, POOLS)
    r = client.post(f"{POOLS}/a100/assign", data={"csrf_token": token, "devices": "h1:0"})
    assert r.status_code == 422 and 'data-testid="errors-devices"' in r.text and "single GPU model" in r.text
    r = client.post(f"{POOLS}/a100/assign", data={"csrf_token": token, "devices": ""})
    assert r.status_code == 422 and "at least one node or device" in r.text
    r = client.post(f"{POOLS}/a100/assign", data={"csrf_token": token, "devices": "a2:0, a2:1"},
                    follow_redirects=False)
    assert r.status_code == 303, r.text
    assert h.get("/clusters/sim/pools/a100")["devices"] == 10
    r = client.post(f"{POOLS}/a100/assign", data={"csrf_token": token, "nodes": "a2"}, follow_redirects=False)
    assert r.status_code == 303
    assert h.get("/clusters/sim/pools/a100")["devices"] == 16
    assert "pool.assign" in {e["action"] for e in h.get("/audit?target_type=pool")["items"]}


def test_pool_management_needs_the_cluster_admin_role(client, admin_headers):
    cluster(client, admin_headers)
    make_user(client, admin_headers, "carol")
    client.cookies.clear()
    sign_in(client, "carol", "Passw0rd!x")
    token = csrf(client, "/ui/quotas")
    assert client.get(POOLS).status_code == 403
    assert client.post(POOLS, data={"csrf_token": token, "name": "x"}).status_code == 403
    assert client.post(f"{POOLS}/default/delete", data={"csrf_token": token}).status_code == 403
    assert client.get("/ui/clusters/sim/nodes/a1").status_code == 403
