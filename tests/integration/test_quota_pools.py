"""DKube's "a group is bound to exactly one pool" as a first-class rule: a quota's `pools`. A group bound to a quota
restricted to pool v100 never runs elsewhere, pools created after the binding included (limit 0 on the other pools
left those open), nor do the quota's descendants; pins and profiles onto other pools are refused at submission."""

from __future__ import annotations

import pytest
from sched_helpers import API, Harness

from conftest import login

PASSWORD = "Str0ng-password!"


@pytest.fixture
def dkube(client, admin_headers):
    h = Harness(client, admin_headers)
    h.node("v100-node", gpus=4, model="V100")
    h.node("a100-node", gpus=4, model="A100")
    h.pool("v100", ["v100-node"])
    h.quota("vision", [{"resource": "gpu", "guarantee": 0, "limit": "unlimited"}], pools=["v100"])
    h.post("/groups", {"name": "vision-team"}, 201)
    h.post("/users", {"email": "bob@example.com", "username": "bob", "password": PASSWORD}, 201)
    h.put("/groups/vision-team/members/bob", status=204)
    h.put("/clusters/sim/users/bob", {"role": "user"})
    h.ok(client.put(f"{API}/quotas/vision/bindings/groups/vision-team", headers=admin_headers), 204)
    return h, login(client, "bob", PASSWORD)


def test_group_bound_to_a_pool_restricted_quota_runs_only_there_even_in_a_pool_created_later(dkube):
    h, bob = dkube
    quota = h.get("/quotas/vision")
    assert (quota["pools"], quota["usable_pools"]) == (["v100"], ["v100"])
    jobs = [h.submit("vision", gpu=2, headers=bob) for _ in range(3)]
    h.settle(2)
    # The default pool's 4 A100s are free, yet the third job waits for v100.
    assert h.states(jobs) == ["running", "running", "queued"]
    assert {h.job(j)["placement"]["pool"] for j in jobs[:2]} == {"v100"}
    assert "pool default" not in h.job(jobs[2])["reason"]

    # A pool created after the binding is not open to the group either.
    h.pool("a100", ["a100-node"])
    late = h.submit("vision", gpu=4, headers=bob)
    h.settle(2)
    assert h.states([jobs[2], late]) == ["queued", "queued"]
    assert {p["name"]: p["devices"] for p in h.get("/clusters/sim/pools")["items"]}["a100"] == 4
    for j in jobs[:2]:
        h.cancel(j)
    h.settle(3)
    assert h.job(jobs[2])["state"] == "running" and h.job(jobs[2])["placement"]["pool"] == "v100"

    # Opening the quota to every pool again ([] = all) lets the waiting job go to the new pool.
    h.ok(h.client.patch(f"{API}/quotas/vision", headers=h.headers, json={"pools": []}))
    h.settle(2)
    assert h.job(late)["state"] == "running" and h.job(late)["placement"]["pool"] == "a100"


def test_descendants_are_held_to_their_ancestors_pools(dkube):
    h, _ = dkube
    h.pool("a100", ["a100-node"])
    h.quota("vision-dev", [], parent="vision")
    child = h.get("/quotas/vision-dev")
    assert (child["pools"], child["usable_pools"]) == ([], ["v100"])
    jobs = [h.submit("vision-dev", gpu=4) for _ in range(2)]
    h.settle(2)
    assert h.states(jobs) == ["running", "queued"]
    assert h.job(jobs[0])["placement"]["pool"] == "v100"
    # A child may narrow its parent's pools but not escape them: lists are intersected along the path.
    h.ok(h.client.patch(f"{API}/quotas/vision-dev", headers=h.headers, json={"pools": ["a100"]}))
    assert h.get("/quotas/vision-dev")["usable_pools"] == []
    r = h.client.post(f"{API}/jobs", headers=h.headers, json={"quota": "vision-dev", "command": ["x"], "gpu": 1})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "quota"
    assert "quota vision-dev may use only pools (none)" in r.json()["errors"][0]["message"]


def test_pins_and_profiles_onto_other_pools_are_refused_naming_the_field_and_the_allowed_pools(dkube):
    h, bob = dkube
    h.pool("a100", ["a100-node"])
    r = h.client.post(f"{API}/jobs", headers=bob, json={"quota": "vision", "command": ["x"], "gpu": 1, "pool": "a100"})
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["errors"] == [{"field": "pool", "message": "quota vision may use only pools v100, not pool a100"}]

    h.post("/clusters/sim/profiles", {"name": "a100-only", "gpu": 1, "pools": [{"pool": "a100"}]}, 201)
    r = h.client.post(f"{API}/jobs", headers=bob, json={"quota": "vision", "command": ["x"], "profile": "a100-only"})
    assert r.status_code == 422
    assert r.json()["errors"] == [{"field": "profile", "message": "quota vision may use only pools v100, and "
                                                                  "profile a100-only runs only in a100"}]

    # A profile partly inside the quota's pools is accepted and runs only in the allowed part.
    h.post("/clusters/sim/profiles", {"name": "2xGPU", "gpu": 2, "pools": [{"pool": "a100"}, {"pool": "v100"}]}, 201)
    jobs = [h.submit("vision", profile="2xGPU", headers=bob) for _ in range(3)]
    h.settle(2)
    assert h.states(jobs) == ["running", "running", "queued"]
    assert {h.job(j)["placement"]["pool"] for j in jobs[:2]} == {"v100"}
    # An unrestricted quota still uses the profile's first pool.
    h.quota("open", [])
    other = h.submit("open", profile="2xGPU")
    h.settle(2)
    assert h.job(other)["placement"]["pool"] == "a100"


def test_a_queued_job_whose_pin_becomes_disallowed_waits_with_a_reason(dkube):
    h, _ = dkube
    h.pool("a100", ["a100-node"])
    blocker = h.submit("vision", gpu=4, pool="v100")
    pinned = h.submit("vision", gpu=4, pool="v100")
    h.settle(2)
    assert h.states([blocker, pinned]) == ["running", "queued"]
    h.ok(h.client.patch(f"{API}/quotas/vision", headers=h.headers, json={"pools": ["a100"]}))
    h.cancel(blocker)
    h.settle(3)
    job = h.job(pinned)
    assert job["state"] == "queued" and job["reason_code"] == "pool_not_allowed"
    assert "quota vision may use only pools a100, and pool v100, which the job is pinned to, is not among them" \
        in job["reason"]


def test_pools_are_validated_shown_audited_and_guard_pool_deletion(dkube):
    h, _ = dkube
    r = h.client.patch(f"{API}/quotas/vision", headers=h.headers, json={"pools": ["v100", "nope"]})
    assert r.status_code == 422
    assert r.json()["errors"] == [{"field": "pools", "message": "no pool 'nope' in cluster sim (its pools: default, "
                                                               "v100)"}]
    h.post("/clusters", {"name": "other", "backend": "simulated"}, 201)
    h.post("/clusters/other/pools", {"name": "far"}, 201)
    r = h.client.patch(f"{API}/quotas/vision", headers=h.headers, json={"pools": ["far"]})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "pools"
    assert "pool far belongs to cluster other, not to cluster sim" in r.json()["errors"][0]["message"]
    r = h.client.post(f"{API}/clusters/sim/quotas", headers=h.headers, json={"name": "bad", "pools": ["nope"]})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "pools"
    assert h.client.get(f"{API}/quotas/bad", headers=h.headers).status_code == 404

    h.ok(h.client.patch(f"{API}/quotas/vision", headers=h.headers, json={"pools": ["v100", "default"]}))
    assert h.get("/quotas/vision")["pools"] == ["default", "v100"]
    entry = h.get("/audit", params={"action": "quota.update", "target": "vision"})["items"][0]
    assert entry["changes"] == {"before": {"pools": ["v100"]}, "after": {"pools": ["default", "v100"]}}

    # The configuration document carries the pools.
    provisioned = h.get("/clusters/sim/resource-config")["provisioned"]
    assert {q["name"]: q["pools"] for q in provisioned["quotas"]} == {"vision": ["default", "v100"]}

    # Deleting a quota's only pool would open the quota to every pool: refused; one of two is fine.
    h.ok(h.client.patch(f"{API}/quotas/vision", headers=h.headers, json={"pools": ["v100"]}))
    r = h.client.delete(f"{API}/clusters/sim/pools/v100", headers=h.headers)
    assert r.status_code == 409 and "1 quota(s) may use only this pool (vision)" in r.text
    h.ok(h.client.patch(f"{API}/quotas/vision", headers=h.headers, json={"pools": ["v100", "default"]}))
    h.ok(h.client.delete(f"{API}/clusters/sim/pools/v100", headers=h.headers), 204)
    assert h.get("/quotas/vision")["pools"] == ["default"]


def test_draft_configuration_sets_pools(dkube):
    h, _ = dkube
    draft = h.get("/clusters/sim/resource-config/draft")
    draft["quotas"][0]["pools"] = ["default"]
    h.put("/clusters/sim/resource-config/draft", draft)
    h.post("/clusters/sim/resource-config/provision")
    assert h.get("/quotas/vision")["pools"] == ["default"]
    draft = h.get("/clusters/sim/resource-config/draft")
    draft["quotas"][0]["pools"] = ["missing"]
    h.put("/clusters/sim/resource-config/draft", draft)
    r = h.client.post(f"{API}/clusters/sim/resource-config/provision", headers=h.headers)
    assert r.status_code == 422 and {"field": "quotas.0.pools", "message": "no pool 'missing' in cluster sim "
                                     "(its pools: default, v100)"} in r.json()["errors"]
