"""Acceptance scenario 3, end to end: DKube's pool rules (default pool, one GPU model per pool, groups bound to a
pool, no deletion under a running job) and Backend.AI's per-user caps and concurrency, with fractional GPUs."""

from __future__ import annotations

import pytest
from sched_helpers import Harness

from conftest import ADMIN_PASSWORD, login

PASSWORD = "Str0ng-password!"


def user(h: Harness, name: str, policy: str | None = None) -> dict[str, str]:
    body = {"email": f"{name}@example.com", "username": name, "password": PASSWORD}
    if policy:
        body["resource_policy"] = policy
    h.post("/users", body, 201)
    h.put(f"/clusters/{h.cluster}/users/{name}", {"role": "user"})  # submitting takes a role on the cluster
    return login(h.client, name, PASSWORD)


@pytest.fixture
def dkube(client, admin_headers) -> Harness:
    h = Harness(client, admin_headers)
    h.node("v100-node", gpus=4, model="V100")
    h.node("a100-node", gpus=4, model="A100")
    return h


def test_devices_land_in_the_default_pool_and_a_pool_holds_one_model(dkube):
    h = dkube
    pools = h.get("/clusters/sim/pools")["items"]
    assert [(p["name"], p["devices"]) for p in pools] == [("default", 8)]
    h.pool("v100", ["v100-node"])
    r = h.client.post("/api/v1/clusters/sim/pools/v100/devices", headers=h.headers, json={"devices": ["a100-node:0"]})
    assert r.status_code == 422 and "a pool holds a single GPU model" in r.text
    pools = {p["name"]: p for p in h.get("/clusters/sim/pools")["items"]}
    assert (pools["v100"]["devices"], pools["v100"]["device_model"], pools["default"]["devices"]) == (4, "V100", 4)


def test_group_bound_to_one_pool_runs_there_only_and_the_pool_cannot_go_while_it_runs(dkube):
    h = dkube
    h.pool("v100", ["v100-node"])
    # The team's quota is its pool: 4 GPUs of v100, none elsewhere.
    h.quota("vision", [{"resource": "gpu", "pool": "v100", "guarantee": 4, "limit": 4},
                       {"resource": "gpu", "pool": "default", "guarantee": 0, "limit": 0}])
    h.post("/groups", {"name": "vision-team"}, 201)
    bob = user(h, "bob")
    carol = user(h, "carol")
    h.put("/groups/vision-team/members/bob", status=204)
    h.ok(h.client.put("/api/v1/quotas/vision/bindings/groups/vision-team", headers=h.headers), 204)

    refused = h.client.post("/api/v1/jobs", headers=carol, json={"quota": "vision", "command": ["x"], "gpu": 1})
    assert refused.status_code == 403 and "not bound to you, your groups or your workspaces" in refused.text

    jobs = [h.submit("vision", gpu=2, headers=bob) for _ in range(3)]
    h.settle(2)
    assert h.states(jobs) == ["running", "running", "queued"]
    assert {h.job(j)["placement"]["pool"] for j in jobs[:2]} == {"v100"}
    reason = h.job(jobs[2])["reason"]
    assert "quota vision: limit of 4 gpu in pool v100 reached (4 in use, 2 requested)" in reason
    assert "quota vision: limit of 0 gpu in pool default reached" in reason

    r = h.client.delete("/api/v1/clusters/sim/pools/v100", headers=h.headers)
    assert r.status_code == 409 and "its devices run 2 job(s)" in r.text
    for j in jobs:
        h.cancel(j)
    h.cycle(1.0)
    assert h.states(jobs) == ["cancelled"] * 3
    h.ok(h.client.delete("/api/v1/clusters/sim/pools/v100", headers=h.headers), 204)
    assert [(p["name"], p["devices"]) for p in h.get("/clusters/sim/pools")["items"]] == [("default", 8)]


def test_fractional_jobs_share_a_device_and_whole_jobs_get_whole_devices(dkube):
    h = dkube
    h.pool("v100", ["v100-node"])
    h.quota("shared", [{"resource": "gpu", "pool": "v100", "guarantee": 4, "limit": 4}])
    halves = [h.submit("shared", gpu=0.5, pool="v100") for _ in range(2)]
    tenths = [h.submit("shared", gpu=0.3, pool="v100") for _ in range(3)]
    whole = h.submit("shared", gpu=2, pool="v100")
    h.cycle()
    placed = {j: h.job(j)["placement"]["devices"] for j in halves + tenths + [whole]}
    assert {len(v) for v in placed.values()} == {1, 2}
    # best fit: the two halves fill one device; the 0.3 jobs share another; the 2-GPU job has two devices alone
    assert placed[halves[0]][0]["device_id"] == placed[halves[1]][0]["device_id"]
    assert len({placed[j][0]["device_id"] for j in tenths}) == 1
    whole_devices = {d["device_id"] for d in placed[whole]}
    shared = {d["device_id"] for j in halves + tenths for d in placed[j]}
    assert len(whole_devices) == 2 and not whole_devices & shared
    assert all(d["milli"] == 1000 for d in placed[whole])
    per_device: dict[int, int] = {}
    for devices in placed.values():
        for d in devices:
            per_device[d["device_id"]] = per_device.get(d["device_id"], 0) + d["milli"]
    assert max(per_device.values()) <= 1000  # never oversubscribed


def test_backendai_caps_and_concurrency_through_the_scheduler(dkube):
    h = dkube
    h.quota("team", [{"resource": "gpu", "guarantee": 8, "limit": 8}])
    h.post("/resource-policies", {"name": "student", "gpu": 2, "fgpu": "2", "concurrent_jobs": 2, "cpu": 8}, 201)
    dave = user(h, "dave", policy="student")
    h.ok(h.client.put("/api/v1/quotas/team/bindings/users/dave", headers=h.headers), 204)

    too_big = h.submit("team", gpu=4, headers=dave, status=422)
    assert "exceeds the cap gpu" in str(too_big) and "of 2 in resource policy student" in str(too_big)

    first = h.submit("team", gpu=1, runtime_s=10, headers=dave)
    h.submit("team", gpu=1, runtime_s=100, headers=dave)
    third = h.client.post("/api/v1/jobs", headers=dave, json={"quota": "team", "command": ["x"], "gpu": 1})
    assert third.status_code == 409 and "concurrent_jobs" in third.text
    allowance = h.get("/users/dave/allowance", headers=dave)
    assert allowance["caps"]["concurrent_jobs"]["remaining"] == 0

    h.settle(2)
    h.cycle(11.0)  # the first job ends: one slot is free again
    assert h.job(first)["state"] == "succeeded"
    assert h.get("/users/dave/allowance", headers=dave)["caps"]["concurrent_jobs"]["remaining"] == 1
    h.submit("team", gpu=1, headers=dave)
    assert login(h.client, "admin", ADMIN_PASSWORD)
