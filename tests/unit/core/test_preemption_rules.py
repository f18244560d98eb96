"""Table tests for preemption: reclaim, child level, within quota, minimum runtime, victim ordering, minimality."""

import pytest
from core_testkit import admitted, gpu_pool, job, preempted, preemptions, quota, start, state_of, waits

from allotment.core.model import PreemptReason, WaitCode


def cycle(quotas, pool_gpus, running, jobs, now=1000.0):
    state = state_of(quotas, [gpu_pool("p", pool_gpus)])
    for r in running:
        start(state, **r)
    for j in jobs:
        state.add_job(j)
    return state, state.cycle(now)


def runs(q, sizes, priority=100, first_start=1.0):
    """Running jobs of quota q with the given GPU sizes, started one second apart."""
    return [{"jid": f"{q}-r{i}", "q": q, "pool": "p", "gpus": s, "priority": priority, "at": first_start + i}
            for i, s in enumerate(sizes)]


def cohort(reclaim="any", a=(4, 8), b=(4, 8), **a_kwargs):
    return [
        quota("c", gpu_in={"p": 8}),
        quota("a", "c", gpu_in={"p": a}, reclaim=reclaim, **a_kwargs),
        quota("b", "c", gpu_in={"p": b}),
    ]


# -- reclaim --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("reclaim", "a_priority", "b_sizes", "size", "expected_victims"),
    [
        # b borrows 4 of a's guarantee; a reclaims 2 GPUs: the two most recently started borrowers go
        ("any", 0, [1] * 8, 2, ["b-r7", "b-r6"]),
        ("lower_priority", 200, [1] * 8, 2, ["b-r7", "b-r6"]),
        ("lower_priority", 0, [1] * 8, 2, []),  # b's jobs have priority 100: not lower
        ("never", 200, [1] * 8, 2, []),
        # a asks beyond its own guarantee: that is borrowing, not reclaiming
        ("any", 0, [1] * 8, 5, []),
        # b uses 6 (borrows 2): with 2 free, a needs only 2 more for a 4-GPU job
        ("any", 0, [1] * 6, 4, ["b-r5", "b-r4"]),
        # b's single 6-GPU job: preempting it would push b (6) below its guarantee (4) -> never
        ("any", 0, [6], 4, []),
        # b's 2-GPU jobs: one victim is enough for 2 GPUs (never more than needed)
        ("any", 0, [2, 2, 2, 2], 2, ["b-r3"]),
    ],
)
def test_reclaim(reclaim, a_priority, b_sizes, size, expected_victims):
    _, decisions = cycle(cohort(reclaim), 8, runs("b", b_sizes), [job("a1", "a", gpus=size, priority=a_priority)])
    assert preempted(decisions) == expected_victims
    if expected_victims:
        assert admitted(decisions) == {"a1": "p"}
        assert all(p.reason == PreemptReason.RECLAIM for p in preemptions(decisions))
        assert "reclaims capacity that quota b borrows" in preemptions(decisions)[0].message
    else:
        assert waits(decisions)["a1"].code in (WaitCode.NO_CAPACITY, WaitCode.LIMIT_REACHED)


@pytest.mark.parametrize(
    ("within", "a_running", "expected"),
    [
        # a runs one 1-GPU job (priority 0) and wants its whole guarantee (4) for a job of priority 200: b borrows 4.
        # Reclaiming is justified once a's own job goes too: a ends up at its guarantee, not above it.
        # (b's most recently started borrowers first, then a's own job: one victim ordering for every kind)
        ("lower_priority", [1], [("b-r6", PreemptReason.RECLAIM), ("b-r5", PreemptReason.RECLAIM),
                                 ("b-r4", PreemptReason.RECLAIM), ("a-r0", PreemptReason.WITHIN_QUOTA)]),
        # a may not preempt its own jobs: the job would borrow, so a may not reclaim either
        ("never", [1], []),
        # a's own job has the same priority as the newcomer: not lower, so it stays, and so does b's borrowing
        ("lower_priority_same", [1], []),
    ],
)
def test_reclaim_together_with_own_lower_priority_jobs(within, a_running, expected):
    newcomer_priority = 0 if within == "lower_priority_same" else 200
    within = "lower_priority" if within == "lower_priority_same" else within
    quotas = [
        quota("c", gpu_in={"p": 8}),
        quota("a", "c", gpu_in={"p": (4, 8)}, reclaim="any", within_quota_preemption=within),
        quota("b", "c", gpu_in={"p": (4, 8)}),
    ]
    running = runs("a", a_running, priority=0) + runs("b", [1] * 7, priority=100, first_start=10.0)
    state, decisions = cycle(quotas, 8, running, [job("a1", "a", gpus=4, priority=newcomer_priority)])
    assert [(p.victim_id, p.reason) for p in preemptions(decisions)] == expected
    if expected:
        assert admitted(decisions) == {"a1": "p"}
        assert state.quota_usage("a")[("p", "gpu")].raw == 4000  # within its guarantee, not borrowing
    else:
        assert waits(decisions)["a1"].code in (WaitCode.NO_CAPACITY, WaitCode.LIMIT_REACHED)


@pytest.mark.parametrize(("within", "expected_victims"), [("lower_priority", ["b-r3"]), ("never", [])])
def test_guarantee_is_never_preempted_to_serve_another_quota(within, expected_victims):
    # a sits exactly at its guarantee. b's urgent job would make b borrow, so b cannot reclaim from a:
    # at most b preempts its own lower-priority job.
    quotas = [
        quota("c", gpu_in={"p": 8}),
        quota("a", "c", gpu_in={"p": (4, 8)}, reclaim="any"),
        quota("b", "c", gpu_in={"p": (4, 8)}, reclaim="any", within_quota_preemption=within),
    ]
    running = runs("a", [1] * 4, priority=0) + runs("b", [1] * 4, priority=0)
    _, decisions = cycle(quotas, 8, running, [job("b1", "b", gpus=1, priority=1000)])
    assert preempted(decisions) == expected_victims
    if not expected_victims:
        assert waits(decisions)["b1"].code == WaitCode.NO_CAPACITY


def test_reclaim_across_cohorts_only_from_a_cohort_that_borrows():
    quotas = [
        quota("c1", gpu_in={"p": 4}), quota("a", "c1", gpu_in={"p": (4, 8)}, reclaim="any"),
        quota("c2", gpu_in={"p": 4}), quota("x", "c2", gpu_in={"p": (2, 8)}), quota("y", "c2", gpu_in={"p": (2, 8)}),
    ]
    # x borrows from its idle sibling y (inside c2's guarantee): c2 does not borrow from c1, so a cannot reclaim from x
    _, decisions = cycle(quotas, 8, runs("x", [1] * 4), [job("a1", "a", gpus=4)])
    assert preempted(decisions) == [] and admitted(decisions) == {"a1": "p"}
    # now x uses 6: c2 borrows 2 of c1's guarantee, and exactly that much can be reclaimed
    _, decisions = cycle(quotas, 8, runs("x", [1] * 6), [job("a1", "a", gpus=4)])
    assert preempted(decisions) == ["x-r5", "x-r4"]


# -- child-level preemption (PAI) -----------------------------------------------------------------------------------
def pai(child_preemption=True):
    return [
        quota("Quota1", gpu_in={"p": (8, 8)}, child_preemption=child_preemption),
        quota("Quota1.1", "Quota1", gpu_in={"p": (3, 3)}),
        quota("Quota1.2", "Quota1", gpu_in={"p": (5, 5)}),
    ]


@pytest.mark.parametrize(
    ("child_preemption", "submitted_to", "expected_victims"),
    [
        (True, "Quota1", ["Quota1.2-r4", "Quota1.2-r3"]),  # most recently started first
        (False, "Quota1", []),
        (True, "Quota1.1", []),  # a child's job cannot preempt its sibling
    ],
)
def test_child_level_preemption(child_preemption, submitted_to, expected_victims):
    running = runs("Quota1.1", [1] * 3, first_start=1.0) + runs("Quota1.2", [1] * 5, first_start=10.0)
    _, decisions = cycle(pai(child_preemption), 8, running, [job("svc", submitted_to, gpus=2, priority=300)])
    assert preempted(decisions) == expected_victims
    if expected_victims:
        assert all(p.reason == PreemptReason.CHILD_PREEMPTION for p in preemptions(decisions))
        assert "submitted to parent quota Quota1, which has child-level preemption" in preemptions(decisions)[0].message
        assert admitted(decisions) == {"svc": "p"}
    else:
        assert waits(decisions)["svc"].code == WaitCode.LIMIT_REACHED


# -- within-quota preemption ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("policy", "new_priority", "running_priorities", "expected_victims"),
    [
        ("lower_priority", 200, [100, 100, 100, 100], ["q-r3", "q-r2"]),
        ("lower_priority", 100, [100, 100, 100, 100], []),  # equal priority is not lower
        ("never", 200, [100, 100, 100, 100], []),
        # lowest priority first, most recently started among equals
        ("lower_priority", 200, [50, 100, 50, 100], ["q-r2", "q-r0"]),
    ],
)
def test_within_quota_preemption(policy, new_priority, running_priorities, expected_victims):
    quotas = [quota("q", gpu_in={"p": (0, 4)}, within_quota_preemption=policy)]
    running = [{"jid": f"q-r{i}", "q": "q", "pool": "p", "gpus": 1, "priority": p, "at": float(i)}
               for i, p in enumerate(running_priorities)]
    _, decisions = cycle(quotas, 8, running, [job("hi", "q", gpus=2, priority=new_priority)])
    assert preempted(decisions) == expected_victims
    if expected_victims:
        assert all(p.reason == PreemptReason.WITHIN_QUOTA for p in preemptions(decisions))
        (admit,) = [d for d in decisions if hasattr(d, "preempted")]
        assert admit.preempted == tuple(expected_victims)


# -- minimum runtime ------------------------------------------------------------------------------------------------
def test_minimum_runtime_protects_young_jobs_until_it_has_passed():
    quotas = [quota("q", gpu_in={"p": (0, 2)}, within_quota_preemption="lower_priority", min_runtime_s=600)]
    state = state_of(quotas, [gpu_pool("p", 4)])
    start(state, "old", "q", "p", gpus=1, priority=0, at=0.0)
    start(state, "young", "q", "p", gpus=1, priority=0, at=500.0)
    state.add_job(job("hi", "q", gpus=2, priority=10))
    decisions = state.cycle(700.0)
    w = waits(decisions)["hi"]
    assert preempted(decisions) == []
    assert "1 running jobs could be preempted once they reach their minimum runtime" in w.message
    assert state.cycle(1099.0) == []  # nothing changed, nothing to say
    decisions = state.cycle(1100.0)  # young reached 600 s: the parked job is woken by its deadline
    assert sorted(preempted(decisions)) == ["old", "young"]
    assert admitted(decisions) == {"hi": "p"}


# -- victim ordering and minimality ----------------------------------------------------------------------------------
def test_never_more_victims_than_needed():
    quotas = [quota("q", gpu_in={"p": (0, 6)}, within_quota_preemption="lower_priority")]
    running = [
        {"jid": "a", "q": "q", "pool": "p", "gpus": 1, "priority": 1, "at": 30.0},
        {"jid": "b", "q": "q", "pool": "p", "gpus": 1, "priority": 1, "at": 20.0},
        {"jid": "c", "q": "q", "pool": "p", "gpus": 4, "priority": 2, "at": 10.0},
    ]
    # the ordering tries a, b (lowest priority) first, but only c's 4 GPUs make room: a and b are given back
    _, decisions = cycle(quotas, 8, running, [job("hi", "q", gpus=4, priority=10)])
    assert preempted(decisions) == ["c"]


def test_borrowers_are_preempted_before_lower_priority_jobs_of_quotas_within_guarantee():
    quotas = [
        quota("Quota1", gpu_in={"p": (8, 8)}, child_preemption=True),
        quota("A", "Quota1", gpu_in={"p": (2, 8)}),
        quota("B", "Quota1", gpu_in={"p": (6, 8)}),
    ]
    running = runs("A", [1] * 4, priority=200) + runs("B", [1] * 4, priority=100)
    _, decisions = cycle(quotas, 8, running, [job("svc", "Quota1", gpus=1, priority=300)])
    assert preempted(decisions) == ["A-r3"]  # A borrows (4 > 2); B is below its guarantee


def test_preempted_victims_free_their_devices_for_the_preemptor():
    quotas = [quota("q", within_quota_preemption="lower_priority")]
    state, decisions = cycle(quotas, 4, runs("q", [1] * 4, priority=0), [job("hi", "q", gpus=2, priority=5)])
    (admit,) = [d for d in decisions if hasattr(d, "preempted")]
    freed = {dev for victim in ("q-r3", "q-r2") for dev in [f"p-d{victim[-1]}"]}
    assert {d for d, _ in admit.devices} == freed
    assert sorted(state.running_ids()) == ["hi", "q-r0", "q-r1"]


# -- preemption delay -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("delay", "now", "frees_at", "expected_victims"),
    [
        (0.0, 100.0, None, ["b-r7", "b-r6"]),  # no delay: reclaims at once
        (10.0, 105.0, None, None),  # waited 5 s of 10: still waits
        (10.0, 110.0, None, ["b-r7", "b-r6"]),  # the delay has passed: reclaims
        (10.0, 110.0, 104.0, []),  # capacity freed by itself within the delay: admitted, nothing killed
    ],
)
def test_preemption_delay(delay, now, frees_at, expected_victims):
    state = state_of(cohort("any"), [gpu_pool("p", 8)], preemption_delay_s=delay)
    for r in runs("b", [1] * 8):
        start(state, **r)
    state.add_job(job("a1", "a", gpus=2, at=100.0))
    decisions = state.cycle(100.0)
    if delay:
        assert preempted(decisions) == [] and admitted(decisions) == {}
        assert waits(decisions)["a1"].code == WaitCode.NO_CAPACITY
        assert state.next_due == 100.0 + delay  # the loop comes back then, whatever else happens
        if frees_at is not None:
            state.job_finished("b-r0")
            state.job_finished("b-r1")
            decisions = state.cycle(frees_at)
        else:
            decisions = state.cycle(now)
    if expected_victims is None:
        assert preempted(decisions) == [] and admitted(decisions) == {}
    else:
        assert preempted(decisions) == expected_victims
        assert admitted(decisions) == {"a1": "p"}
