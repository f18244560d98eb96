"""Clusters, nodes, devices and DKube's pool rules through the API."""

from __future__ import annotations

from inventory_helpers import API, hold_devices, make_user, register_node


def pools_by_name(client, headers, cluster="local"):
    r = client.get(f"{API}/clusters/{cluster}/pools", headers=headers)
    assert r.status_code == 200, r.text
    return {p["name"]: p for p in r.json()["items"]}


def test_clusters_list_follows_the_contract(client, admin_headers):
    register_node(client, admin_headers, "gpu-01", "H100", 4)
    body = client.get(f"{API}/clusters", headers=admin_headers).json()
    assert body["total"] == 1
    local = body["items"][0]
    assert (local["name"], local["backend"], local["status"]) == ("local", "local", "ready")
    assert local["pools"] == [{"name": "default", "is_default": True, "device_model": None, "devices": 4, "gpus": 4,
                               "memory": "320Gi", "cpu": "64", "host_memory": "512Gi", "machine_type": None,
                               "preemptible": False, "min_nodes": None, "max_nodes": None, "nodes": 1,
                               "machines": [{"nodes": 1, "cpu": "64", "memory": "512Gi",
                                             "gpus": [{"count": 4, "model": "H100"}]}]}]
    assert (local["region"], local["zones"]) == (None, [])


def test_created_cluster_makes_its_creator_cluster_admin_and_has_a_default_pool(client, admin_headers):
    r = client.post(f"{API}/clusters", headers=admin_headers, json={"name": "rack2", "backend": "slurm",
                                                                "engine": {"log_dir": "/srv/slurm-jobs"}})
    assert r.status_code == 201, r.text
    assert [p["name"] for p in r.json()["pools"]] == ["default"]
    me = client.get(f"{API}/auth/whoami", headers=admin_headers).json()
    assert me["cluster_roles"]["rack2"] == "admin"
    assert client.post(f"{API}/clusters", headers=admin_headers, json={"name": "rack2"}).status_code == 409
    bad = client.post(f"{API}/clusters", headers=admin_headers, json={"name": "rack3", "backend": "k8s"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "backend"
    assert client.delete(f"{API}/clusters/rack2", headers=admin_headers).status_code == 204
    assert client.get(f"{API}/clusters/rack2", headers=admin_headers).status_code == 404


def test_cluster_users_see_their_clusters_only_and_cannot_configure_them(client, admin_headers):
    client.post(f"{API}/clusters", headers=admin_headers, json={"name": "other"})
    alice = make_user(client, "alice", cluster_role="user")
    names = [c["name"] for c in client.get(f"{API}/clusters", headers=alice).json()["items"]]
    assert names == ["local"]
    assert client.get(f"{API}/clusters/other/pools", headers=alice).status_code == 403
    assert client.post(f"{API}/clusters/local/pools", headers=alice, json={"name": "p"}).status_code == 403
    r = client.post(f"{API}/clusters/local/nodes", headers=alice, json={"name": "n1"})
    assert r.status_code == 403
    assert client.post(f"{API}/clusters", headers=alice, json={"name": "mine"}).status_code == 403


def test_new_devices_land_in_the_default_pool_and_reports_refresh_them(client, admin_headers):
    register_node(client, admin_headers, "gpu-01", "H100", 2)
    assert pools_by_name(client, admin_headers)["default"]["devices"] == 2
    r = client.post(f"{API}/clusters/local/nodes", headers=admin_headers, json={
        "name": "gpu-01", "cpu": "64", "memory": "512Gi",
        "devices": [{"index": 0, "model": "H100", "memory": "80Gi", "utilisation": 87.5},
                    {"index": 2, "model": "H100", "memory": "80Gi"}]})
    assert r.status_code == 200, r.text
    devices = {d["index"]: d for d in r.json()["devices"]}
    assert devices[0]["utilisation"] == 87.5
    assert devices[1]["health"] == "unknown"  # no longer reported: kept, but not healthy
    assert devices[2]["pool"] == "default"
    listed = client.get(f"{API}/clusters/local/devices", headers=admin_headers).json()
    assert listed["total"] == 3


def test_node_report_errors_name_the_fields(client, admin_headers):
    r = client.post(f"{API}/clusters/local/nodes", headers=admin_headers, json={
        "name": "n1", "cpu": "lots", "memory": "16Gi", "status": "sleepy",
        "devices": [{"index": 0, "model": "H100", "utilisation": 140}, {"index": 0, "model": "H100"}]})
    assert r.status_code == 422
    fields = {e["field"] for e in r.json()["errors"]}
    assert fields == {"cpu", "status", "devices.0.utilisation", "devices.1.index"}


def test_assigning_devices_takes_them_out_of_the_default_pool(client, admin_headers):
    register_node(client, admin_headers, "gpu-01", "H100", 4)
    r = client.post(f"{API}/clusters/local/pools", headers=admin_headers,
                    json={"name": "h100", "devices": ["gpu-01:0", "gpu-01:1"]})
    assert r.status_code == 201, r.text
    assert (r.json()["device_model"], r.json()["devices"]) == ("H100", 2)
    pools = pools_by_name(client, admin_headers)
    assert pools["default"]["devices"] == 2 and pools["h100"]["devices"] == 2
    total = sum(p["devices"] for p in pools.values())
    assert total == 4  # every device in exactly one pool


def test_a_pool_holds_one_gpu_model(client, admin_headers):
    register_node(client, admin_headers, "gpu-01", "H100", 2)
    register_node(client, admin_headers, "gpu-02", "A100", 2)
    client.post(f"{API}/clusters/local/pools", headers=admin_headers, json={"name": "h100", "devices": ["gpu-01:0"]})
    r = client.post(f"{API}/clusters/local/pools/h100/devices", headers=admin_headers,
                    json={"devices": ["gpu-01:1", "gpu-02:0"]})
    assert r.status_code == 422
    assert "device gpu-02:0 is a A100 but pool h100 holds H100 devices" in r.json()["detail"]
    # all or nothing: the H100 of the same request did not move either
    assert pools_by_name(client, admin_headers)["h100"]["devices"] == 1
    mixed = client.post(f"{API}/clusters/local/pools", headers=admin_headers,
                        json={"name": "mixed", "devices": ["gpu-01:1", "gpu-02:1"]})
    assert mixed.status_code == 422 and "single GPU model" in mixed.json()["detail"]
    assert "mixed" not in pools_by_name(client, admin_headers)


def test_whole_nodes_move_with_their_cpu_and_memory(client, admin_headers):
    register_node(client, admin_headers, "cpu-01", "H100", 0, cpu="32", memory="128Gi")
    r = client.post(f"{API}/clusters/local/pools", headers=admin_headers, json={"name": "cpu", "nodes": ["cpu-01"]})
    assert r.status_code == 201, r.text
    assert (r.json()["cpu"], r.json()["host_memory"]) == ("32", "128Gi")
    assert pools_by_name(client, admin_headers)["default"]["cpu"] is None


def test_deleting_a_pool_is_refused_while_a_device_runs_a_job_then_devices_return_to_default(client, admin_headers):
    register_node(client, admin_headers, "gpu-01", "H100", 4)
    client.post(f"{API}/clusters/local/pools", headers=admin_headers,
                json={"name": "h100", "devices": ["gpu-01:0", "gpu-01:1"]})
    client.post(f"{API}/clusters/local/quotas", headers=admin_headers, json={"name": "team"})
    job = client.post(f"{API}/jobs", headers=admin_headers,
                      json={"quota": "team", "gpu": 1, "command": ["sleep", "60"]}).json()
    hold_devices(client, job["id"], ["gpu-01:1"], "h100")
    r = client.delete(f"{API}/clusters/local/pools/h100", headers=admin_headers)
    assert r.status_code == 409
    assert f"its devices run 1 job(s) ({job['id']})" in r.json()["detail"]
    moving = client.delete(f"{API}/clusters/local/pools/h100/devices/gpu-01:1", headers=admin_headers)
    assert moving.status_code == 409 and f"runs job {job['id']}" in moving.json()["detail"]
    devices = {d["index"]: d for d in client.get(f"{API}/clusters/local/devices", headers=admin_headers).json()["items"]}
    assert devices[1]["job_id"] == job["id"]

    client.post(f"{API}/jobs/{job['id']}/cancel", headers=admin_headers)
    from inventory_helpers import set_state

    set_state(client, job["id"], "cancelled")
    assert client.delete(f"{API}/clusters/local/pools/h100", headers=admin_headers).status_code == 204
    pools = pools_by_name(client, admin_headers)
    assert list(pools) == ["default"] and pools["default"]["devices"] == 4


def test_the_default_pool_cannot_be_deleted_and_pools_can_be_renamed(client, admin_headers):
    r = client.delete(f"{API}/clusters/local/pools/default", headers=admin_headers)
    assert r.status_code == 409 and "default pool" in r.json()["detail"]
    client.post(f"{API}/clusters/local/pools", headers=admin_headers, json={"name": "a"})
    client.post(f"{API}/clusters/local/pools", headers=admin_headers, json={"name": "b"})
    assert client.patch(f"{API}/clusters/local/pools/a", headers=admin_headers, json={"name": "b"}).status_code == 409
    r = client.patch(f"{API}/clusters/local/pools/a", headers=admin_headers, json={"name": "fast"})
    assert r.status_code == 200 and r.json()["name"] == "fast"


def test_nodes_can_be_drained_and_unhealthy_devices_are_not_counted_as_usable(client, admin_headers):
    register_node(client, admin_headers, "gpu-01", "H100", 2)
    r = client.patch(f"{API}/clusters/local/nodes/gpu-01", headers=admin_headers, json={"status": "draining"})
    assert r.status_code == 200 and r.json()["status"] == "draining"
    default = pools_by_name(client, admin_headers)["default"]
    assert (default["devices"], default["gpus"]) == (2, 0)
    assert client.delete(f"{API}/clusters/local/nodes/gpu-01", headers=admin_headers).status_code == 204
    assert client.get(f"{API}/clusters/local/nodes", headers=admin_headers).json()["total"] == 0
