"""A job admitted and preempted in the same cycle (core admits a borrower, then a quota below its guarantee reclaims
what it borrows, in one pass) never left the queue: no admission or preemption is written for it, it is not
launched, and it is considered again at the next cycle. Written as an admission followed by a preemption, the
preemption's guard (admitted or running) found the job still queued (the preemptions are written first), the cycle
was rolled back as a conflict, and the rebuilt state made the same decisions again: the cluster admitted nothing
while the queue stayed as it was."""

from __future__ import annotations

import pytest
from sched_helpers import Harness
from sqlalchemy import select

from allotment.accounting.models import UsageRecord


def gpu(guarantee: int, limit: int) -> list[dict]:
    return [{"resource": "gpu", "guarantee": guarantee, "limit": limit}]


@pytest.fixture
def h(client, admin_headers) -> Harness:
    """Two GPUs; team-a and team-b each guaranteed one and allowed both; either reclaims what the other borrows."""
    h = Harness(client, admin_headers)
    h.node("gpu-01", gpus=2, model="H100")
    h.quota("cohort", gpu(2, 2))
    policy = {"reclaim": "any", "within_quota_preemption": "lower_priority"}
    h.quota("team-a", gpu(1, 2), parent="cohort", **policy)
    h.quota("team-b", gpu(1, 2), parent="cohort", **policy)
    return h


def test_a_job_admitted_and_preempted_in_one_cycle_stays_queued(h):
    def job(quota: str, gpus: int, priority_class: str) -> dict:
        return {"quota": quota, "command": ["work"], "gpu": gpus, "priority_class": priority_class,
                "labels": {"runtime_ms": 3_600_000}}

    # In this order core admits b1 (team-b's guarantee) and b2 (borrowing team-a's idle GPU), a1 waits (two GPUs),
    # then team-a's next job a2, within its guarantee, reclaims the borrowed GPU: from a job admitted moments before.
    b1, b2, a1, a2 = h.batch([job("team-b", 1, "training"), job("team-b", 1, "training"),
                              job("team-a", 2, "training"), job("team-a", 1, "interactive")])
    report = h.cycle(2.0)
    assert not report.conflict
    assert (report.admitted, report.preempted) == (3, 1)  # core's decisions, as core made them
    states = dict(zip((b1, b2, a1, a2), h.states([b1, b2, a1, a2]), strict=True))
    displaced = [j for j in (b1, b2) if states[j] == "queued"]
    assert len(displaced) == 1 and states[a2] == "admitted" and states[a1] == "queued"
    kept = h.job(displaced[0])
    assert kept["preemptions"] == 0 and kept["admitted_at"] is None  # it never left the queue
    assert "preempting" not in h.job(a2)["reason"]  # nothing was stopped for it
    h.settle(2, advance=1.0)
    assert h.job(displaced[0])["state"] == "queued" and h.job(a2)["state"] == "running"
    with h.client.app.state.allot.sessions() as session:  # nothing was metered for it
        assert session.scalars(select(UsageRecord.id).where(UsageRecord.job_id == displaced[0])).all() == []
