"""Acceptance scenario 4, end to end: Kueue-style cohort behaviour on cpu. Borrowing up to the limit, the lending
limit respected, reclaim of lent capacity by preempting borrowers, and a quota's guarantee never preempted to serve
another quota."""

from __future__ import annotations

import pytest
from sched_helpers import Harness


def cpu(guarantee: int, limit: int | str = "unlimited", lending: int | None = None) -> list[dict]:
    return [{"resource": "cpu", "pool": "default", "guarantee": guarantee, "limit": limit, "lending_limit": lending}]


@pytest.fixture
def cohort(client, admin_headers) -> Harness:
    h = Harness(client, admin_headers)
    h.node("cpu-node", cpu=30, memory="120Gi")
    h.quota("cohort", cpu(30))
    policy = {"reclaim": "any", "within_quota_preemption": "lower_priority"}
    h.quota("team-a", cpu(10, 30), parent="cohort", **policy)
    h.quota("team-b", cpu(10, 20), parent="cohort", **policy)  # may borrow at most 10
    h.quota("team-d", cpu(10, 30, lending=5), parent="cohort", **policy)  # lends at most 5 of its 10
    return h


def jobs(h: Harness, quota: str, n: int, priority_class: str = "training") -> list[int]:
    ids = h.batch([{"quota": quota, "command": ["work"], "cpu": 1, "priority_class": priority_class,
                    "labels": {"runtime_ms": 3_600_000}} for _ in range(n)])
    return ids


def used(h: Harness, quota: str) -> int:
    return int(h.get(f"/quotas/{quota}")["resources"][0]["in_use"])


def count(h: Harness, ids: list[int], state: str) -> int:
    return sum(1 for s in h.states(ids) if s == state)


def test_borrowing_lending_reclaim_and_guarantees(cohort):
    h = cohort
    # borrowing up to the limit: team-b alone uses 20 of the idle 30
    b = jobs(h, "team-b", 25)
    h.cycle()
    assert count(h, b, "admitted") == 20
    waiting = h.job(b[20])
    assert waiting["reason_code"] == "limit_reached"
    assert waiting["reason"] == "quota team-b: limit of 20 cpu in pool default reached (20 in use, 1 requested)"
    assert h.job(b[24])["reason"] == waiting["reason"]  # every queued job says why it waits
    for j in b:
        h.cancel(j)
    h.cycle(1.0)
    assert count(h, b, "cancelled") == 25 and used(h, "team-b") == 0

    # lending limit: team-a borrows team-b's idle 10 but only 5 of team-d's: 25, not 30
    a = jobs(h, "team-a", 30)
    h.settle(2, advance=1.0)
    assert count(h, a, "running") == 25
    assert "5 held back by other quotas' unlendable guarantees" in h.job(a[25])["reason"]

    # reclaim: team-b comes back within its guarantee and preempts exactly the borrowed 10, newest first
    b2 = jobs(h, "team-b", 10)
    report = h.cycle(1.0)
    assert (report.admitted, report.preempted) == (10, 10)
    victims = [j for j in a if h.job(j)["state"] == "preempted"]
    assert len(victims) == 10
    assert all("reclaims capacity that quota team-a borrows" in h.job(v)["reason"] for v in victims)
    assert count(h, b2, "admitted") == 10
    assert used(h, "team-a") == 15

    # team-d uses its 5 unlendable CPUs, then reclaims 5 more from team-a, down to team-a's guarantee and no further
    d = jobs(h, "team-d", 12)
    report = h.cycle(1.0)
    assert report.admitted == 10 and report.preempted == 5
    assert used(h, "team-a") == 10 and used(h, "team-d") == 10
    assert h.job(d[10])["reason_code"] == "no_capacity"
    assert count(h, victims, "queued") == 10  # the first victims were requeued in their submission order

    # a guarantee is never preempted to serve another quota, whatever the priority: a higher-priority job of team-b
    # may only preempt team-b's own lower-priority job
    (urgent,) = jobs(h, "team-b", 1, priority_class="inference")
    report = h.cycle(1.0)
    assert report.preempted == 1 and h.job(urgent)["state"] == "admitted"
    (victim,) = [j for j in b2 if h.job(j)["state"] == "preempted"]
    assert "of the same quota team-b" in h.job(victim)["reason"]
    assert (used(h, "team-a"), used(h, "team-b"), used(h, "team-d")) == (10, 10, 10)
    h.cycle(1.0)
    assert h.job(victim)["state"] == "queued" and h.job(victim)["preemptions"] == 1
    assert sorted(h.job(j)["preemptions"] for j in a) == [0] * 15 + [1] * 15  # 10 reclaimed by b, 5 by d
