"""Acceptance scenario 1, end to end: ClearML's worked example of resource pools, profiles and policies."""

from __future__ import annotations

import pytest
from sched_helpers import Harness


@pytest.fixture
def clearml(client, admin_headers) -> Harness:
    """Pools Bare Metal and H100 with 8 free GPUs each; profile 4xGPU linked to Bare Metal first, then H100;
    policies Dev and Research, each reservation 8 and limit 16, Dev above Research."""
    h = Harness(client, admin_headers)
    h.node("bm-01", gpus=8, model="A100")
    h.node("h100-01", gpus=8, model="H100")
    h.pool("Bare Metal", ["bm-01"])
    h.pool("H100", ["h100-01"])
    h.post("/clusters/sim/profiles", {"name": "4xGPU", "gpu": 4,
                                      "pools": [{"pool": "Bare Metal", "name": "bm"}, {"pool": "H100", "name": "h"}]},
           201)
    for team in ("Dev", "Research"):
        h.quota(team, [{"resource": "gpu", "guarantee": 8, "limit": 16}])
    h.put("/clusters/sim/profiles/4xGPU/policies", {"names": ["Dev", "Research"]})
    return h


def test_dev_runs_on_bare_metal_research_on_h100_two_of_each_wait(clearml):
    h = clearml
    dev = [h.submit("Dev", profile="4xGPU", name=f"dev-{i}") for i in range(1, 5)]
    research = [h.submit("Research", profile="4xGPU", name=f"research-{i}") for i in range(1, 5)]

    report = h.cycle()
    assert report.admitted == 4

    jobs = {j: h.job(j) for j in dev + research}
    placed = {jobs[j]["name"]: jobs[j]["placement"]["pool"] for j in dev + research if jobs[j]["state"] == "admitted"}
    assert placed == {"dev-1": "Bare Metal", "dev-2": "Bare Metal", "research-1": "H100", "research-2": "H100"}
    for j in dev[:2] + research[:2]:
        assert len(jobs[j]["placement"]["devices"]) == 4
    # every device is used once
    devices = [d["device_id"] for j in dev[:2] + research[:2] for d in jobs[j]["placement"]["devices"]]
    assert len(set(devices)) == 16

    for j in dev[2:] + research[2:]:
        assert jobs[j]["state"] == "queued"
        assert jobs[j]["reason_code"] == "no_capacity"
        assert "pool Bare Metal: 4 gpu requested but only 0 available (8 of 8 in use)" in jobs[j]["reason"]
        assert "pool H100: 4 gpu requested but only 0 available (8 of 8 in use)" in jobs[j]["reason"]

    # the engine reports them started; the waiting ones keep their reason
    h.cycle(1.0)
    assert h.states(dev[:2] + research[:2]) == ["running"] * 4
    assert h.job(dev[2])["started_at"] is None


def test_finished_job_frees_its_devices_for_the_next_in_line(clearml):
    h = clearml
    dev = [h.submit("Dev", profile="4xGPU", runtime_s=10) for _ in range(3)]
    research = [h.submit("Research", profile="4xGPU", runtime_s=100) for _ in range(2)]
    h.settle(2)
    assert h.states(dev) == ["running", "running", "queued"]
    assert h.states(research) == ["running", "running"]

    h.cycle(10.5)  # dev's first two end after 10 s: the third one takes their place on Bare Metal
    first = h.job(dev[0])
    assert first["state"] == "succeeded" and first["exit_code"] == 0
    assert first["finished_at"] is not None and first["started_at"] is not None
    third = h.job(dev[2])
    assert third["state"] == "admitted" and third["placement"]["pool"] == "Bare Metal"
    assert third["reason_code"] is None


def test_disabled_resource_management_keeps_jobs_queued_and_running(clearml):
    h = clearml
    running = h.submit("Dev", profile="4xGPU", runtime_s=100)
    h.settle(2)
    assert h.job(running)["state"] == "running"

    h.put("/clusters/sim/resource-config/enabled", {"enabled": False})
    waiting = h.submit("Research", profile="4xGPU")
    h.settle(2, advance=1.0)
    job = h.job(waiting)
    assert job["state"] == "queued"
    assert job["reason_code"] == "resource_management_disabled"
    assert "resource management is disabled for cluster sim" in job["reason"]
    assert h.job(running)["state"] == "running"

    h.put("/clusters/sim/resource-config/enabled", {"enabled": True})
    h.cycle(1.0)
    assert h.job(waiting)["state"] == "admitted"
    assert h.job(waiting)["placement"]["pool"] == "Bare Metal"  # 4 GPUs are still free there
