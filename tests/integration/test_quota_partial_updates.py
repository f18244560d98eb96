"""Issue 11, rules 3, 4 and 12: scaling without a pool, partial updates of a quota's entries, and the configuration
version stepping by one per change."""

from __future__ import annotations

import pytest
from inventory_helpers import API, quota, register_node
from test_profiles_and_config import clearml_document
from test_quotas import gpu_of, pai_tree

SCALE = f"{API}/clusters/local/quotas/scale"


def entries(client, headers, name):
    body = client.get(f"{API}/quotas/{name}", headers=headers).json()
    return sorted((r["resource"], r["pool"], r["guarantee"], r["limit"], r["lending_limit"]) for r in body["resources"])


def version(client, headers):
    return client.get(f"{API}/clusters/local/resource-config", headers=headers).json()["version"]


# --- rule 3: scale without a pool ------------------------------------------------------------------------------


def test_scale_without_a_pool_scales_the_quotas_only_entry(client, admin_headers):
    pai_tree(client, admin_headers)
    r = client.post(SCALE, headers=admin_headers, json={"changes": [{"quota": "Quota1.1", "guarantee": 56},
                                                                    {"quota": "Quota1.2", "guarantee": 72}]})
    assert r.status_code == 200, r.text
    assert entries(client, admin_headers, "Quota1.1") == [("gpu", "a100", "56", "56", None)]
    assert entries(client, admin_headers, "Quota1.2") == [("gpu", "a100", "72", "72", None)]


def test_scale_beyond_the_parent_is_refused_with_and_without_a_pool(client, admin_headers):
    pai_tree(client, admin_headers)
    for change in ({"quota": "Quota1.1", "guarantee": 200}, {"quota": "Quota1.1", "guarantee": 200, "pool": "a100"},
                   {"quota": "Quota1.1", "guarantee": 200, "pool": "*"}):
        r = client.post(SCALE, headers=admin_headers, json={"changes": [change]})
        assert r.status_code == 422, (change, r.text)
        assert "Quota1 guarantees 128" in r.json()["detail"], r.json()["detail"]
    for entry in ({"resource": "gpu", "guarantee": 200, "limit": 200}, {"resource": "gpu", "pool": "*",
                                                                        "guarantee": 200}):
        r = client.patch(f"{API}/quotas/Quota1.1", headers=admin_headers, json={"resources": [entry]})
        assert r.status_code == 422 and "Quota1 guarantees 128" in r.json()["detail"], (entry, r.text)
    assert entries(client, admin_headers, "Quota1.1") == [("gpu", "a100", "48", "48", None)]


def test_scale_without_a_pool_is_refused_when_the_quota_has_several_entries_or_none(client, admin_headers):
    register_node(client, admin_headers, "gpu-01", "A100", 8)
    register_node(client, admin_headers, "gpu-02", "H100", 8)
    client.post(f"{API}/clusters/local/pools", headers=admin_headers, json={"name": "a100", "nodes": ["gpu-01"]})
    client.post(f"{API}/clusters/local/pools", headers=admin_headers, json={"name": "h100", "nodes": ["gpu-02"]})
    client.post(f"{API}/clusters/local/quotas", headers=admin_headers, json={"name": "two", "resources": [
        {"resource": "gpu", "pool": "a100", "guarantee": 4}, {"resource": "gpu", "pool": "h100", "guarantee": 2}]})
    quota(client, admin_headers, "none")
    r = client.post(SCALE, headers=admin_headers, json={"changes": [{"quota": "two", "guarantee": 6},
                                                                    {"quota": "none", "guarantee": 1}]})
    assert r.status_code == 422
    errors = {e["field"]: e["message"] for e in r.json()["errors"]}
    assert errors["changes.0.pool"] == ("quota two has gpu entries in pools a100 and h100: choose one of them "
                                        "with pool")
    assert errors["changes.1.pool"].startswith("quota none has no gpu entry: name the pool to scale (one of "
                                               "*, a100, default, h100)")
    assert entries(client, admin_headers, "two") == [("gpu", "a100", "4", "unlimited", None),
                                                     ("gpu", "h100", "2", "unlimited", None)]
    r = client.post(SCALE, headers=admin_headers, json={"changes": [{"quota": "two", "pool": "h100", "guarantee": 3}]})
    assert r.status_code == 200, r.text
    assert entries(client, admin_headers, "two")[1] == ("gpu", "h100", "3", "unlimited", None)


# --- rule 4: partial updates ----------------------------------------------------------------------------------


@pytest.fixture
def research(client, admin_headers):
    """ClearML's Research policy: 8 GPUs reserved, 16 at most (an all-pools entry), and 32 cpu in all pools."""
    r = client.post(f"{API}/clusters/local/quotas", headers=admin_headers, json={"name": "Research", "resources": [
        {"resource": "gpu", "guarantee": 8, "limit": 16, "lending_limit": 4}, {"resource": "cpu", "guarantee": 32}]})
    assert r.status_code == 201, r.text


def patch(client, headers, name, body, expect=200):
    r = client.patch(f"{API}/quotas/{name}", headers=headers, json=body)
    assert r.status_code == expect, r.text
    return r.json()


def test_patching_a_limit_keeps_the_guarantee_and_the_other_entries(client, admin_headers, research):
    patch(client, admin_headers, "Research", {"resources": [{"resource": "gpu", "limit": 14}]})
    assert entries(client, admin_headers, "Research") == [("cpu", "*", "32", "unlimited", None),
                                                          ("gpu", "*", "8", "14", "4")]
    patch(client, admin_headers, "Research", {"resources": [{"resource": "gpu", "guarantee": 6}]})
    assert entries(client, admin_headers, "Research")[1] == ("gpu", "*", "6", "14", "4")
    # explicit null: unlimited (limit) and "all of it may be lent" (lending_limit)
    patch(client, admin_headers, "Research", {"resources": [{"resource": "gpu", "limit": None,
                                                             "lending_limit": None}]})
    assert entries(client, admin_headers, "Research")[1] == ("gpu", "*", "6", "unlimited", None)
    patch(client, admin_headers, "Research", {"resources": [{"resource": "gpu", "pool": "*", "limit": "unlimited",
                                                             "guarantee": 2}]})
    assert entries(client, admin_headers, "Research")[1] == ("gpu", "*", "2", "unlimited", None)
    # removing an entry takes `remove`; a new entry starts at guarantee 0, no limit
    patch(client, admin_headers, "Research", {"resources": [{"resource": "cpu", "remove": True},
                                                            {"resource": "memory", "limit": "64Gi"}]})
    assert entries(client, admin_headers, "Research") == [("gpu", "*", "2", "unlimited", None),
                                                          ("memory", "*", "0", "64Gi", None)]


def test_a_partial_update_is_still_checked_as_a_whole(client, admin_headers, research):
    body = patch(client, admin_headers, "Research", {"resources": [{"resource": "gpu", "limit": 4}]}, expect=422)
    assert "limit of 4 gpu in all pools is below its guarantee of 8" in body["detail"]
    body = patch(client, admin_headers, "Research", {"resources": [{"resource": "gpu", "guarantee": None}]},
                 expect=422)
    assert body["errors"][0]["field"] == "resources.0.guarantee" and "must be a number" in body["errors"][0]["message"]
    body = patch(client, admin_headers, "Research", {"resources": [{"resource": "gpu", "remove": True,
                                                                    "limit": 3}]}, expect=422)
    assert body["errors"][0] == {"field": "resources.0.remove",
                                 "message": "an entry that is removed takes no guarantee, limit or lending_limit"}
    body = patch(client, admin_headers, "Research", {"resources": [{"resource": "gpu", "limit": 9},
                                                                   {"resource": "gpu", "pool": "*", "limit": 10}]},
                 expect=422)
    assert body["errors"][0]["field"] == "resources.1"
    assert entries(client, admin_headers, "Research")[1] == ("gpu", "*", "8", "16", "4")


def test_a_partial_update_without_a_pool_needs_one_when_the_quota_has_several(client, admin_headers):
    register_node(client, admin_headers, "gpu-01", "A100", 8)
    client.post(f"{API}/clusters/local/pools", headers=admin_headers, json={"name": "a100", "nodes": ["gpu-01"]})
    client.post(f"{API}/clusters/local/quotas", headers=admin_headers, json={"name": "two", "resources": [
        {"resource": "gpu", "pool": "a100", "guarantee": 4, "limit": 8}, {"resource": "gpu", "guarantee": 2}]})
    body = patch(client, admin_headers, "two", {"resources": [{"resource": "gpu", "limit": 6}]}, expect=422)
    assert body["errors"] == [{"field": "resources.0.pool", "message": "quota two has gpu entries in pools * and "
                                                                        "a100: choose one of them with pool"}]
    patch(client, admin_headers, "two", {"resources": [{"resource": "gpu", "pool": "a100", "limit": 6}]})
    assert entries(client, admin_headers, "two") == [("gpu", "*", "2", "unlimited", None),
                                                     ("gpu", "a100", "4", "6", None)]


# --- rule 12: one version step per change ---------------------------------------------------------------------


def test_provisioning_steps_the_configuration_version_by_one(client, admin_headers):
    register_node(client, admin_headers, "bm-01", "L4", 8)
    register_node(client, admin_headers, "h100-01", "H100", 8)
    for name, node in (("Bare Metal", "bm-01"), ("H100", "h100-01")):
        client.post(f"{API}/clusters/local/pools", headers=admin_headers, json={"name": name, "nodes": [node]})
    base = f"{API}/clusters/local/resource-config"
    start = version(client, admin_headers)
    assert client.put(f"{base}/draft", headers=admin_headers, json=clearml_document()).status_code == 200
    assert version(client, admin_headers) == start  # saving a draft changes nothing live
    r = client.post(f"{base}/provision", headers=admin_headers)
    assert r.status_code == 200, r.text
    assert r.json()["version"] == start + 1
    document = clearml_document()
    document["quotas"][0]["resources"][0]["limit"] = 12
    document["profiles"][1]["gpu"] = 1
    client.put(f"{base}/draft", headers=admin_headers, json=document)
    assert client.post(f"{base}/provision", headers=admin_headers).json()["version"] == start + 2
    audit = client.get(f"{API}/audit?action=resource_config.provision", headers=admin_headers)
    if audit.status_code == 200:
        assert audit.json()["total"] == 2


def test_each_direct_quota_change_steps_the_version_by_one(client, admin_headers):
    pai_tree(client, admin_headers)
    start = version(client, admin_headers)
    quota(client, admin_headers, "other")
    assert version(client, admin_headers) == start + 1
    client.post(SCALE, headers=admin_headers, json={"changes": [{"quota": "Quota1.1", "guarantee": 56},
                                                                {"quota": "Quota1.2", "guarantee": 72}]})
    patch(client, admin_headers, "Quota1.1", {"resources": [{"resource": "gpu", "limit": 60}], "weight": 2})
    assert version(client, admin_headers) == start + 3
    assert gpu_of(client, admin_headers, "Quota1.1") == ("56", "60")
