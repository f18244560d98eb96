"""Deleting a pool never silently changes a waiting job or a profile: refused while queued or preempted jobs are
pinned to it or while a profile would be left with no pool; otherwise its devices return to the default pool."""

from __future__ import annotations

import pytest
from inventory_helpers import API, register_node, set_state


@pytest.fixture
def pools(client, admin_headers):
    """Cluster local: pools h100 (gpu-01) and spare (gpu-02), quota team."""
    register_node(client, admin_headers, "gpu-01", "H100", 2)
    register_node(client, admin_headers, "gpu-02", "H100", 2)
    for name, node in (("h100", "gpu-01"), ("spare", "gpu-02")):
        r = client.post(f"{API}/clusters/local/pools", headers=admin_headers, json={"name": name, "nodes": [node]})
        assert r.status_code == 201, r.text
    assert client.post(f"{API}/clusters/local/quotas", headers=admin_headers, json={"name": "team"}).status_code == 201


def submit(client, headers, **fields) -> int:
    r = client.post(f"{API}/jobs", headers=headers, json={"quota": "team", "command": ["train"], **fields})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def delete_h100(client, headers):
    return client.delete(f"{API}/clusters/local/pools/h100", headers=headers)


def pool_names(client, headers) -> dict[str, int]:
    items = client.get(f"{API}/clusters/local/pools", headers=headers).json()["items"]
    return {p["name"]: p["devices"] for p in items}


def test_refused_while_queued_or_preempted_jobs_are_pinned_to_it(client, admin_headers, pools):
    pinned = [submit(client, admin_headers, gpu=1, pool="h100") for _ in range(12)]
    unpinned = submit(client, admin_headers, gpu=1)
    set_state(client, pinned[0], "preempted")  # waiting for the scheduler to requeue it: still pinned

    r = delete_h100(client, admin_headers)
    assert r.status_code == 409, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    detail = r.json()["detail"]
    assert detail.startswith("pool h100 cannot be deleted: 12 waiting job(s) are pinned to it (")
    assert ", ".join(str(j) for j in pinned[:10]) + ", ...)" in detail
    assert str(unpinned) not in detail
    # nothing changed: the pool, its devices and the pins are all still there
    assert pool_names(client, admin_headers)["h100"] == 2
    job = client.get(f"{API}/jobs/{pinned[1]}", headers=admin_headers).json()
    assert job["pool"] == "h100" and job["state"] == "queued"

    for job_id in pinned[1:]:
        assert client.post(f"{API}/jobs/{job_id}/cancel", headers=admin_headers).status_code == 200
    r = delete_h100(client, admin_headers)
    assert r.status_code == 409 and "1 waiting job(s) are pinned to it" in r.json()["detail"]  # the preempted one
    assert client.post(f"{API}/jobs/{pinned[0]}/cancel", headers=admin_headers).status_code == 200
    assert delete_h100(client, admin_headers).status_code == 204
    assert pool_names(client, admin_headers) == {"default": 2, "spare": 2}


def test_refused_while_a_profile_would_be_left_with_no_pool(client, admin_headers, pools):
    for name, links in (("only-h100", ["h100"]), ("also-h100", ["h100"]), ("both", ["h100", "spare"])):
        r = client.post(f"{API}/clusters/local/profiles", headers=admin_headers,
                        json={"name": name, "gpu": 1, "pools": [{"pool": p} for p in links]})
        assert r.status_code == 201, r.text

    r = delete_h100(client, admin_headers)
    assert r.status_code == 409, r.text
    assert r.json()["detail"] == ("pool h100 cannot be deleted: 2 profile(s) would be left with no pool "
                                  "(also-h100, only-h100); link them to another pool or delete them first")

    r = client.put(f"{API}/clusters/local/profiles/only-h100/pools", headers=admin_headers, json=[{"pool": "spare"}])
    assert r.status_code == 200, r.text
    assert client.delete(f"{API}/clusters/local/profiles/also-h100", headers=admin_headers).status_code == 204
    assert delete_h100(client, admin_headers).status_code == 204
    both = client.get(f"{API}/clusters/local/profiles/both", headers=admin_headers).json()
    assert [p["pool"] for p in both["pools"]] == ["spare"]  # the link to the deleted pool goes, the other stays


def test_allowed_when_nothing_waits_on_it_and_its_devices_return_to_the_default_pool(client, admin_headers, pools):
    done = submit(client, admin_headers, gpu=1, pool="h100")
    set_state(client, done, "succeeded")  # finished jobs do not hold a pool back
    elsewhere = submit(client, admin_headers, gpu=1, pool="spare")
    assert delete_h100(client, admin_headers).status_code == 204
    assert pool_names(client, admin_headers) == {"default": 2, "spare": 2}
    assert client.get(f"{API}/jobs/{elsewhere}", headers=admin_headers).json()["pool"] == "spare"
