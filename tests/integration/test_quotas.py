"""Quota trees through the API: validation as a whole, PAI scale, bindings and who may change quotas."""

from __future__ import annotations

from inventory_helpers import API, make_user, quota, register_node


def pai_tree(client, headers):
    register_node(client, headers, "gpu-01", "A100", 8)
    client.post(f"{API}/clusters/local/pools", headers=headers, json={"name": "a100", "nodes": ["gpu-01"]})
    quota(client, headers, "Quota1", gpu="128", limit="128", pool="a100", child_preemption=True)
    quota(client, headers, "Quota1.1", parent="Quota1", gpu="48", limit="48", pool="a100")
    quota(client, headers, "Quota1.2", parent="Quota1", gpu="80", limit="80", pool="a100")


def gpu_of(client, headers, name):
    body = client.get(f"{API}/quotas/{name}", headers=headers).json()
    (res,) = [r for r in body["resources"] if r["resource"] == "gpu"]
    return res["guarantee"], res["limit"]


def test_a_quota_tree_is_created_and_shown_with_children(client, admin_headers):
    pai_tree(client, admin_headers)
    body = client.get(f"{API}/quotas/Quota1", headers=admin_headers).json()
    assert body["children"] == ["Quota1.1", "Quota1.2"]
    assert body["child_preemption"] is True
    assert body["resources"] == [{"resource": "gpu", "pool": "a100", "guarantee": "128", "limit": "128",
                                  "lending_limit": None, "in_use": "0"}]
    listed = client.get(f"{API}/quotas?cluster=local", headers=admin_headers).json()
    assert [q["name"] for q in listed["items"]] == ["Quota1", "Quota1.1", "Quota1.2"]


def test_children_guarantees_may_not_exceed_the_parent_and_the_error_names_the_numbers(client, admin_headers):
    pai_tree(client, admin_headers)
    r = quota(client, admin_headers, "Quota1.3", parent="Quota1", gpu="8", pool="a100", expect=422)
    assert r["detail"] == "children of quota Quota1 guarantee 136 gpu in pool a100 but Quota1 guarantees 128"
    assert r["errors"][0]["field"] == "resources"
    assert client.get(f"{API}/quotas/Quota1.3", headers=admin_headers).status_code == 404


def test_limit_must_be_at_least_the_guarantee(client, admin_headers):
    r = quota(client, admin_headers, "small", gpu="8", limit="4", expect=422)
    assert "limit of 4 gpu in all pools is below its guarantee of 8" in r["detail"]
    r = quota(client, admin_headers, "big", gpu="unlimited", expect=422)
    assert r["errors"][0] == {"field": "resources.0.guarantee", "message": "cannot be unlimited"}


def test_a_cycle_is_refused(client, admin_headers):
    quota(client, admin_headers, "a")
    quota(client, admin_headers, "b", parent="a")
    quota(client, admin_headers, "c", parent="b")
    r = client.patch(f"{API}/quotas/a", headers=admin_headers, json={"parent": "c"})
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "parent"
    assert "cycle" in r.json()["detail"]
    assert client.get(f"{API}/quotas/a", headers=admin_headers).json()["parent"] is None
    r = client.patch(f"{API}/quotas/c", headers=admin_headers, json={"parent": None})
    assert r.status_code == 200 and r.json()["parent"] is None


def test_field_errors_of_a_quota(client, admin_headers):
    r = client.post(f"{API}/clusters/local/quotas", headers=admin_headers, json={
        "name": "x", "reclaim": "sometimes", "within_quota_preemption": "any", "weight": -1,
        "allowed_priority_classes": ["urgent"],
        "resources": [{"resource": "tpu", "guarantee": 1}, {"resource": "gpu", "pool": "nope", "guarantee": 1}]})
    assert r.status_code == 422
    fields = {e["field"] for e in r.json()["errors"]}
    assert fields == {"reclaim", "within_quota_preemption", "weight", "allowed_priority_classes"}
    r = client.post(f"{API}/clusters/local/quotas", headers=admin_headers, json={
        "name": "x", "resources": [{"resource": "tpu", "guarantee": 1}, {"resource": "gpu", "pool": "nope"},
                                   {"resource": "memory", "guarantee": "16Qi"}]})
    assert {e["field"] for e in r.json()["errors"]} == {"resources.0.resource", "resources.1.pool",
                                                       "resources.2.guarantee"}
    assert quota(client, admin_headers, "dup")["name"] == "dup"
    assert quota(client, admin_headers, "dup", expect=409)["status"] == 409


def test_pai_scale_moves_capacity_between_siblings_in_one_call(client, admin_headers):
    pai_tree(client, admin_headers)
    r = client.post(f"{API}/clusters/local/quotas/scale", headers=admin_headers, json={"changes": [
        {"quota": "Quota1.1", "pool": "a100", "resource": "gpu", "guarantee": 56},
        {"quota": "Quota1.2", "pool": "a100", "resource": "gpu", "guarantee": 72}]})
    assert r.status_code == 200, r.text
    assert gpu_of(client, admin_headers, "Quota1.1") == ("56", "56")  # fixed-size quotas stay fixed-size
    assert gpu_of(client, admin_headers, "Quota1.2") == ("72", "72")
    audit = client.get(f"{API}/audit?action=quota.scale", headers=admin_headers)
    if audit.status_code == 200:  # the audit API belongs to another domain
        assert audit.json()["total"] >= 1


def test_scale_beyond_the_parent_is_refused_and_changes_nothing(client, admin_headers):
    pai_tree(client, admin_headers)
    r = client.post(f"{API}/clusters/local/quotas/scale", headers=admin_headers, json={"changes": [
        {"quota": "Quota1.1", "pool": "a100", "guarantee": 56},
        {"quota": "Quota1.2", "pool": "a100", "guarantee": 80}]})
    assert r.status_code == 422
    assert r.json()["detail"] == "children of quota Quota1 guarantee 136 gpu in pool a100 but Quota1 guarantees 128"
    assert gpu_of(client, admin_headers, "Quota1.1") == ("48", "48")
    assert gpu_of(client, admin_headers, "Quota1.2") == ("80", "80")
    r = client.post(f"{API}/clusters/local/quotas/scale", headers=admin_headers,
                    json={"changes": [{"quota": "Nope", "guarantee": 1}]})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "changes.0.quota"


def test_shrinking_a_parent_below_its_children_is_refused(client, admin_headers):
    pai_tree(client, admin_headers)
    r = client.patch(f"{API}/quotas/Quota1", headers=admin_headers,
                     json={"resources": [{"resource": "gpu", "pool": "a100", "guarantee": 100, "limit": 100}]})
    assert r.status_code == 422 and "but Quota1 guarantees 100" in r.json()["detail"]


def test_a_quota_with_children_or_active_jobs_cannot_be_deleted(client, admin_headers):
    pai_tree(client, admin_headers)
    r = client.delete(f"{API}/quotas/Quota1", headers=admin_headers)
    assert r.status_code == 409 and "Quota1.1, Quota1.2" in r.json()["detail"]
    client.post(f"{API}/jobs", headers=admin_headers, json={"quota": "Quota1.1", "gpu": 1, "command": ["true"]})
    r = client.delete(f"{API}/quotas/Quota1.1", headers=admin_headers)
    assert r.status_code == 409 and "1 queued or running jobs" in r.json()["detail"]
    assert client.delete(f"{API}/quotas/Quota1.2", headers=admin_headers).status_code == 204


def test_bindings_decide_who_may_submit(client, admin_headers):
    quota(client, admin_headers, "research")
    alice = make_user(client, "alice", groups=("team-b",), cluster_role="user")
    bob = make_user(client, "bob", cluster_role="user")
    job = {"quota": "research", "gpu": 1, "command": ["python", "train.py"]}
    r = client.post(f"{API}/jobs", headers=alice, json=job)
    assert r.status_code == 403 and "not bound to you" in r.json()["detail"]
    assert client.put(f"{API}/quotas/research/bindings/groups/team-b", headers=admin_headers).status_code == 204
    assert client.post(f"{API}/jobs", headers=alice, json=job).status_code == 201
    assert client.post(f"{API}/jobs", headers=bob, json=job).status_code == 403
    assert client.put(f"{API}/quotas/research/bindings/users/bob", headers=admin_headers).status_code == 204
    assert client.post(f"{API}/jobs", headers=bob, json=job).status_code == 201
    bindings = client.get(f"{API}/quotas/research/bindings", headers=admin_headers).json()
    assert {(b["kind"], b["name"]) for b in bindings} == {("group", "team-b"), ("user", "bob")}
    assert client.get(f"{API}/quotas/research", headers=bob).json()["can_submit"] is True
    assert client.delete(f"{API}/quotas/research/bindings/users/bob", headers=admin_headers).status_code == 204
    assert client.post(f"{API}/jobs", headers=bob, json=job).status_code == 403
    assert client.delete(f"{API}/quotas/research/bindings/users/bob", headers=admin_headers).status_code == 404


def test_everyone_group_binding_and_cluster_admins_submit_anywhere(client, admin_headers):
    quota(client, admin_headers, "open")
    quota(client, admin_headers, "closed")
    client.put(f"{API}/quotas/open/bindings/groups/users", headers=admin_headers)
    carol = make_user(client, "carol", cluster_role="user")
    dave = make_user(client, "dave", cluster_role="admin")
    job = {"gpu": "0.5", "command": ["nvidia-smi"]}
    assert client.post(f"{API}/jobs", headers=carol, json={**job, "quota": "open"}).status_code == 201
    assert client.post(f"{API}/jobs", headers=carol, json={**job, "quota": "closed"}).status_code == 403
    assert client.post(f"{API}/jobs", headers=dave, json={**job, "quota": "closed"}).status_code == 201


def test_only_cluster_admins_change_quotas(client, admin_headers):
    quota(client, admin_headers, "q")
    manager = make_user(client, "mgr", cluster_role="manager")
    operator = make_user(client, "op", cluster_role="admin")
    assert client.get(f"{API}/quotas/q", headers=manager).status_code == 200
    assert client.patch(f"{API}/quotas/q", headers=manager, json={"weight": 2}).status_code == 403
    assert client.post(f"{API}/clusters/local/quotas", headers=manager, json={"name": "m"}).status_code == 403
    assert client.put(f"{API}/quotas/q/bindings/users/mgr", headers=manager).status_code == 403
    r = client.patch(f"{API}/quotas/q", headers=operator, json={"weight": 2, "reclaim": "any", "min_runtime_s": 60})
    assert r.status_code == 200
    assert (r.json()["weight"], r.json()["reclaim"], r.json()["min_runtime_s"]) == (2.0, "any", 60)
