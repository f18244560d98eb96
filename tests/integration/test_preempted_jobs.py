"""A preempted job is still active until the scheduler requeues it: it can be cancelled (and then is not requeued),
it keeps its quota and profile from being deleted, and it counts against its owner's concurrency cap."""

from __future__ import annotations

import pytest
from inventory_helpers import make_user
from sched_helpers import Harness

STUDENT = {"name": "student", "concurrent_jobs": 1}


@pytest.fixture
def h(client, admin_headers) -> Harness:
    """Parent (8 GPUs, child-level preemption) over ChildA and ChildB (4 each). ChildB runs a 4-GPU job of the admin;
    ChildA then runs a 4-GPU job of user stu (profile 4x, concurrency cap 1), the most recently started one, so an
    inference job submitted to Parent preempts it. The fixture stops right after the preemption's cycle."""
    h = Harness(client, admin_headers)
    h.node("n0", gpus=8, model="A100")
    h.pool("a100", ["n0"])
    h.quota("Parent", [{"resource": "gpu", "pool": "a100", "guarantee": 8, "limit": 8}], child_preemption=True)
    for child in ("ChildA", "ChildB"):
        h.quota(child, [{"resource": "gpu", "pool": "a100", "guarantee": 4, "limit": 4}], parent="Parent")
    h.post("/clusters/sim/profiles", {"name": "4x", "gpu": 4, "pools": [{"pool": "a100", "name": "a"}]}, 201)
    h.post("/resource-policies", STUDENT, 201)
    h.stu = make_user(client, "stu", policy="student", cluster_role="user", cluster="sim")
    h.ok(client.put("/api/v1/quotas/ChildA/bindings/users/stu", headers=admin_headers), 204)

    h.other = h.submit("ChildB", gpu=4, priority_class="training", runtime_s=3600)
    h.settle(2, advance=1.0)
    h.victim = h.submit("ChildA", profile="4x", priority_class="training", runtime_s=3600, headers=h.stu)
    h.settle(2, advance=1.0)
    assert h.states([h.other, h.victim]) == ["running", "running"]

    h.inference = h.submit("Parent", gpu=4, priority_class="inference")
    report = h.cycle(5.0)  # past the preemption delay
    assert (report.preempted, report.admitted) == (1, 1)
    assert h.states([h.victim, h.other, h.inference]) == ["preempted", "running", "admitted"]
    return h


def test_cancelling_a_preempted_job_ends_it_and_the_loop_does_not_requeue_it(h):
    job = h.post(f"/jobs/{h.victim}/cancel", headers=h.stu)
    assert job["state"] == "cancelled" and job["finished_at"] is not None
    assert job["reason"] == "cancelled by stu while preempted, before it was requeued"

    h.cycle(1.0)  # the cycle that would have requeued it
    job = h.job(h.victim)
    assert job["state"] == "cancelled" and job["reason_code"] == "cancelled"
    rt = next(iter(h.scheduler.runtimes.values()))
    assert h.victim not in rt.requeue and h.victim not in rt.jobs
    assert rt.core is not None and rt.core.queue_group(str(h.victim)) is None

    # when the inference job ends, its GPUs are not given to the cancelled job
    h.cancel(h.inference)
    h.settle(2, advance=1.0)
    assert h.job(h.victim)["state"] == "cancelled"
    again = h.client.post(f"/api/v1/jobs/{h.victim}/cancel", headers=h.stu)
    assert again.status_code == 409 and "already ended (cancelled)" in again.json()["detail"]


def test_a_preempted_job_is_requeued_when_nobody_cancels_it(h):
    h.cycle(1.0)
    assert h.job(h.victim)["state"] == "queued"


def test_a_preempted_job_keeps_its_quota_and_profile_from_being_deleted(h):
    r = h.client.delete("/api/v1/quotas/ChildA", headers=h.headers)
    assert r.status_code == 409, r.text
    assert "quota ChildA has 1 queued or running jobs" in r.json()["detail"]
    r = h.client.delete("/api/v1/clusters/sim/profiles/4x", headers=h.headers)
    assert r.status_code == 409, r.text
    assert "profile 4x is used by 1 queued or running jobs" in r.json()["detail"]

    h.cancel(h.victim)  # once it has ended, both may go
    assert h.client.delete("/api/v1/quotas/ChildA", headers=h.headers).status_code == 204
    assert h.client.delete("/api/v1/clusters/sim/profiles/4x", headers=h.headers).status_code == 204


def test_a_preempted_job_counts_against_the_concurrency_cap(h):
    r = h.client.post("/api/v1/jobs", headers=h.stu, json={"quota": "ChildA", "profile": "4x", "command": ["x"]})
    assert r.status_code == 409, r.text
    assert "stu has 1 queued or running jobs" in r.json()["detail"]
    assert h.get("/users/stu/allowance", headers=h.stu)["caps"]["concurrent_jobs"]["in_use"] == 1
