"""ClearML profiles, pool links and orders, and the draft / provisioned resource configuration."""

from __future__ import annotations

import pytest
from inventory_helpers import API, make_user, register_node

BASE = f"{API}/clusters/local/resource-config"


@pytest.fixture
def pools(client, admin_headers):
    """ClearML's example: pools "Bare Metal" and "H100" with 8 GPUs each."""
    register_node(client, admin_headers, "bm-01", "L4", 8)
    register_node(client, admin_headers, "h100-01", "H100", 8)
    for name, node in (("Bare Metal", "bm-01"), ("H100", "h100-01")):
        r = client.post(f"{API}/clusters/local/pools", headers=admin_headers, json={"name": name, "nodes": [node]})
        assert r.status_code == 201, r.text


def clearml_document():
    policy = {"resources": [{"resource": "gpu", "guarantee": 8, "limit": 16}]}
    return {
        "quotas": [{"name": "Dev", **policy}, {"name": "Research", **policy}],
        "profiles": [
            {"name": "4xGPU", "gpu": 4, "pools": [{"pool": "Bare Metal", "name": "4 GPU Low End"},
                                                  {"pool": "H100", "name": "4 GPU H100 link"}],
             "policies": ["Dev", "Research"]},
            {"name": "2xGPU", "gpu": 2, "pools": [{"pool": "H100"}]},
        ],
        "pool_profile_order": {"H100": ["2xGPU", "4xGPU"]},
    }


def test_profiles_link_pools_in_order_and_pools_order_profiles(client, admin_headers, pools):
    r = client.post(f"{API}/clusters/local/profiles", headers=admin_headers, json={
        "name": "4xGPU", "gpu": 4, "pools": [{"pool": "Bare Metal", "name": "4 GPU Low End"}, {"pool": "H100"}]})
    assert r.status_code == 201, r.text
    assert [(p["pool"], p["position"]) for p in r.json()["pools"]] == [("Bare Metal", 0), ("H100", 1)]
    client.post(f"{API}/clusters/local/profiles", headers=admin_headers, json={"name": "half", "gpu": "0.5",
                                                                              "pools": [{"pool": "H100"}]})
    h100 = client.get(f"{API}/clusters/local/pools/H100", headers=admin_headers).json()
    assert h100["profile_order"] == ["4xGPU", "half"]
    r = client.put(f"{API}/clusters/local/pools/H100/profile-order", headers=admin_headers,
                   json={"names": ["half", "4xGPU"]})
    assert r.status_code == 200 and r.json()["names"] == ["half", "4xGPU"]
    bad = client.put(f"{API}/clusters/local/pools/H100/profile-order", headers=admin_headers,
                     json={"names": ["half"]})
    assert bad.status_code == 422 and "list each profile linked to pool H100 once" in bad.json()["detail"]
    r = client.put(f"{API}/clusters/local/profiles/4xGPU/pools", headers=admin_headers,
                   json=[{"pool": "H100"}, {"pool": "Bare Metal"}])
    assert [p["pool"] for p in r.json()["pools"]] == ["H100", "Bare Metal"]
    # the pool's execution order is kept when the profile reorders its own pools
    assert client.get(f"{API}/clusters/local/pools/H100", headers=admin_headers).json()["profile_order"] == \
        ["half", "4xGPU"]


def test_profile_policy_order_and_validation(client, admin_headers, pools):
    client.post(f"{API}/clusters/local/quotas", headers=admin_headers, json={"name": "Dev"})
    client.post(f"{API}/clusters/local/quotas", headers=admin_headers, json={"name": "Research"})
    client.post(f"{API}/clusters/local/profiles", headers=admin_headers, json={"name": "4xGPU", "gpu": 4})
    r = client.put(f"{API}/clusters/local/profiles/4xGPU/policies", headers=admin_headers,
                   json={"names": ["Research", "Dev"]})
    assert r.status_code == 200 and r.json()["policies"] == ["Research", "Dev"]
    r = client.put(f"{API}/clusters/local/profiles/4xGPU/policies", headers=admin_headers,
                   json={"names": ["Dev", "Ops"]})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "policies.1"
    r = client.post(f"{API}/clusters/local/profiles", headers=admin_headers,
                    json={"name": "odd", "gpu": "0.335", "pools": [{"pool": "Nowhere"}]})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "gpu"
    r = client.post(f"{API}/clusters/local/profiles", headers=admin_headers,
                    json={"name": "lost", "gpu": 1, "pools": [{"pool": "Nowhere"}]})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "pools.0.pool"
    user = make_user(client, "u", cluster_role="user")
    assert client.get(f"{API}/clusters/local/profiles", headers=user).json()["total"] == 1
    assert client.post(f"{API}/clusters/local/profiles", headers=user, json={"name": "x", "gpu": 1}).status_code == 403


def test_draft_changes_nothing_until_provisioned(client, admin_headers, pools):
    r = client.put(f"{BASE}/draft", headers=admin_headers, json=clearml_document())
    assert r.status_code == 200, r.text
    status = r.json()
    assert status["has_draft"] is True and status["provisioned"]["quotas"] == []
    assert client.get(f"{API}/quotas", headers=admin_headers).json()["total"] == 0
    draft = client.get(f"{BASE}/draft", headers=admin_headers).json()
    assert [q["name"] for q in draft["quotas"]] == ["Dev", "Research"]

    r = client.post(f"{BASE}/provision", headers=admin_headers)
    assert r.status_code == 200, r.text
    status = r.json()
    assert status["has_draft"] is False and status["provisioned_by"] == "admin"
    assert [q["name"] for q in status["provisioned"]["quotas"]] == ["Dev", "Research"]
    profile = client.get(f"{API}/clusters/local/profiles/4xGPU", headers=admin_headers).json()
    assert [p["name"] for p in profile["pools"]] == ["4 GPU Low End", "4 GPU H100 link"]
    assert profile["policies"] == ["Dev", "Research"]
    h100 = client.get(f"{API}/clusters/local/pools/H100", headers=admin_headers).json()
    assert h100["profile_order"] == ["2xGPU", "4xGPU"]
    dev = client.get(f"{API}/quotas/Dev", headers=admin_headers).json()
    assert dev["resources"][0]["pool"] == "*" and (dev["resources"][0]["guarantee"],
                                                   dev["resources"][0]["limit"]) == ("8", "16")


def test_an_invalid_draft_is_refused_as_a_whole_and_reset_drops_it(client, admin_headers, pools):
    client.put(f"{BASE}/draft", headers=admin_headers, json=clearml_document())
    client.post(f"{BASE}/provision", headers=admin_headers)
    version = client.get(BASE, headers=admin_headers).json()["version"]
    doc = clearml_document()
    doc["quotas"].append({"name": "Ops", "resources": [{"resource": "gpu", "guarantee": 4, "limit": 2}]})
    doc["profiles"][0]["gpu"] = 8  # a valid edit in the same draft must not be applied either
    client.put(f"{BASE}/draft", headers=admin_headers, json=doc)
    r = client.post(f"{BASE}/provision", headers=admin_headers)
    assert r.status_code == 422
    assert "limit of 2 gpu in all pools is below its guarantee of 4" in r.json()["detail"]
    assert client.get(f"{API}/quotas/Ops", headers=admin_headers).status_code == 404
    assert client.get(f"{API}/clusters/local/profiles/4xGPU", headers=admin_headers).json()["gpu"] == "4"
    status = client.get(BASE, headers=admin_headers).json()
    assert status["has_draft"] is True and status["version"] == version
    r = client.post(f"{BASE}/reset", headers=admin_headers)
    assert r.status_code == 200 and r.json()["has_draft"] is False
    assert client.post(f"{BASE}/provision", headers=admin_headers).status_code == 409


def test_provision_updates_kept_quotas_in_place_and_removes_dropped_ones(client, admin_headers, pools):
    client.put(f"{BASE}/draft", headers=admin_headers, json=clearml_document())
    client.post(f"{BASE}/provision", headers=admin_headers)
    dev_id = client.get(f"{API}/quotas/Dev", headers=admin_headers).json()["id"]
    client.post(f"{API}/jobs", headers=admin_headers, json={"quota": "Dev", "profile": "4xGPU", "command": ["x"]})
    doc = client.get(f"{BASE}/draft", headers=admin_headers).json()
    doc["quotas"] = [q for q in doc["quotas"] if q["name"] != "Research"]
    doc["quotas"][0]["weight"] = 3
    next(p for p in doc["profiles"] if p["name"] == "4xGPU")["policies"] = ["Dev"]
    client.put(f"{BASE}/draft", headers=admin_headers, json=doc)
    r = client.post(f"{BASE}/provision", headers=admin_headers)
    assert r.status_code == 200, r.text
    dev = client.get(f"{API}/quotas/Dev", headers=admin_headers).json()
    assert (dev["id"], dev["weight"]) == (dev_id, 3.0)
    assert client.get(f"{API}/quotas/Research", headers=admin_headers).status_code == 404
    doc["quotas"] = []
    client.put(f"{BASE}/draft", headers=admin_headers, json=doc)
    r = client.post(f"{BASE}/provision", headers=admin_headers)
    assert r.status_code == 422 and "has 1 queued or running jobs" in r.json()["detail"]


def test_the_switch_enables_and_disables_resource_management(client, admin_headers):
    wakeup = client.app.state.allot.scheduler_wakeup
    wakeup.clear()
    r = client.put(f"{BASE}/enabled", headers=admin_headers, json={"enabled": False})
    assert r.status_code == 200 and r.json()["resource_management_enabled"] is False and wakeup.is_set()
    listed = client.get(f"{API}/clusters", headers=admin_headers).json()["items"][0]
    assert listed["resource_management_enabled"] is False
    assert client.put(f"{BASE}/enabled", headers=admin_headers, json={"enabled": True}).json()[
        "resource_management_enabled"] is True
    manager = make_user(client, "mgr", cluster_role="manager")
    assert client.put(f"{BASE}/enabled", headers=manager, json={"enabled": False}).status_code == 403
    assert client.get(BASE, headers=manager).status_code == 403


def provisioned(client, admin_headers):
    client.put(f"{BASE}/draft", headers=admin_headers, json=clearml_document())
    r = client.post(f"{BASE}/provision", headers=admin_headers)
    assert r.status_code == 200, r.text


def test_a_live_edit_after_the_draft_was_saved_makes_provision_refuse_it(client, admin_headers, pools):
    provisioned(client, admin_headers)
    doc = client.get(f"{BASE}/draft", headers=admin_headers).json()
    assert doc["stale"] is False and doc["based_on_version"] == client.get(BASE, headers=admin_headers).json()["version"]
    doc["quotas"][0]["weight"] = 5  # the draft's own edit
    r = client.put(f"{BASE}/draft", headers=admin_headers, json=doc)
    assert r.status_code == 200 and r.json()["draft_stale"] is False
    saved_at = r.json()["draft_based_on_version"]
    # direct live edits, the API's normal path: a new quota and a changed one
    assert client.post(f"{API}/clusters/local/quotas", headers=admin_headers, json={"name": "Ops"}).status_code == 201
    assert client.patch(f"{API}/quotas/Research", headers=admin_headers, json={"weight": 2}).status_code == 200
    live_version = client.get(BASE, headers=admin_headers).json()["version"]
    assert live_version > saved_at

    draft = client.get(f"{BASE}/draft", headers=admin_headers).json()
    assert (draft["based_on_version"], draft["stale"]) == (saved_at, True)
    status = client.get(BASE, headers=admin_headers).json()
    assert (status["draft_based_on_version"], status["draft_stale"]) == (saved_at, True)

    r = client.post(f"{BASE}/provision", headers=admin_headers)
    assert r.status_code == 409 and r.headers["content-type"].startswith("application/problem+json")
    problem = r.json()
    assert problem["code"] == "draft_stale"
    assert f"version {saved_at}" in problem["detail"] and f"now version {live_version}" in problem["detail"]
    assert "reset the draft" in problem["detail"].lower() and "re-save" in problem["detail"]
    # nothing changed: the live quota survives, the live edit stands, the draft's edit is not applied, draft kept
    assert client.get(f"{API}/quotas/Ops", headers=admin_headers).status_code == 200
    assert client.get(f"{API}/quotas/Research", headers=admin_headers).json()["weight"] == 2.0
    assert client.get(f"{API}/quotas/Dev", headers=admin_headers).json()["weight"] == 1.0
    status = client.get(BASE, headers=admin_headers).json()
    assert status["has_draft"] is True and status["version"] == live_version


def test_reset_then_resave_provisions_over_the_live_configuration(client, admin_headers, pools):
    provisioned(client, admin_headers)
    client.put(f"{BASE}/draft", headers=admin_headers, json=client.get(f"{BASE}/draft", headers=admin_headers).json())
    client.post(f"{API}/clusters/local/quotas", headers=admin_headers, json={"name": "Ops"})
    assert client.post(f"{BASE}/provision", headers=admin_headers).status_code == 409

    # reset: the editor starts again from the live configuration, which now has Ops
    assert client.post(f"{BASE}/reset", headers=admin_headers).json()["has_draft"] is False
    doc = client.get(f"{BASE}/draft", headers=admin_headers).json()
    assert doc["stale"] is False and "Ops" in [q["name"] for q in doc["quotas"]]
    next(q for q in doc["quotas"] if q["name"] == "Ops")["weight"] = 4
    assert client.put(f"{BASE}/draft", headers=admin_headers, json=doc).json()["draft_stale"] is False
    r = client.post(f"{BASE}/provision", headers=admin_headers)
    assert r.status_code == 200, r.text
    assert client.get(f"{API}/quotas/Ops", headers=admin_headers).json()["weight"] == 4.0

    # re-saving a stale draft as it is: the admin's word that it should win, so it provisions (and drops Ops)
    client.put(f"{BASE}/draft", headers=admin_headers, json=clearml_document())
    client.patch(f"{API}/quotas/Ops", headers=admin_headers, json={"weight": 6})
    stale = client.get(f"{BASE}/draft", headers=admin_headers).json()
    assert stale["stale"] is True
    assert client.put(f"{BASE}/draft", headers=admin_headers, json=stale).json()["draft_stale"] is False
    r = client.post(f"{BASE}/provision", headers=admin_headers)
    assert r.status_code == 200, r.text
    assert client.get(f"{API}/quotas/Ops", headers=admin_headers).status_code == 404


def test_an_unchanged_live_configuration_provisions_the_draft(client, admin_headers, pools):
    provisioned(client, admin_headers)
    doc = client.get(f"{BASE}/draft", headers=admin_headers).json()
    doc["quotas"].append({"name": "Ops", "resources": [{"resource": "gpu", "guarantee": 0, "limit": 4}]})
    client.put(f"{BASE}/draft", headers=admin_headers, json=doc)
    client.post(f"{API}/jobs", headers=admin_headers, json={"quota": "Dev", "profile": "4xGPU", "command": ["x"]})
    assert client.get(f"{BASE}/draft", headers=admin_headers).json()["stale"] is False
    r = client.post(f"{BASE}/provision", headers=admin_headers)
    assert r.status_code == 200, r.text
    assert r.json()["has_draft"] is False and r.json()["draft_stale"] is False
    assert client.get(f"{API}/quotas/Ops", headers=admin_headers).status_code == 200
