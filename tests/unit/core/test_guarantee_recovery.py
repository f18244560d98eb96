"""Table tests for the guarantee defects a replay of Microsoft's Philly trace exposed: a parked job that becomes
entitled to reclaim, an aged job overtaken by its own quota's small jobs, and borrowers preempted again and again."""

import pytest
from core_testkit import admitted, gpu_pool, job, preempted, quota, start, state_of, waits

from allotment.core.admission import REQUEUE_BACKOFF_FACTOR, REQUEUE_BACKOFF_S, SchedulerState
from allotment.core.model import WaitCode
from allotment.core.preemption import MAX_PREEMPTIONS


def two_halves(**config) -> SchedulerState:
    """Quotas x and y each guarantee 2 GPUs of a 4-GPU pool, borrow without limit and reclaim from any borrower."""
    quotas = [quota("x", gpu_in={"p": 2}, reclaim="any"), quota("y", gpu_in={"p": 2}, reclaim="any")]
    return state_of(quotas, [gpu_pool("p", 4)], **config)


# -- defect 1: a parked job that becomes entitled to reclaim is examined again -------------------------------------
def test_a_parked_job_reclaims_once_its_own_quota_drops_below_its_guarantee():
    state = two_halves()
    start(state, "x1", "x", "p", gpus=1, at=0.0)
    for i in (1, 2, 3):
        start(state, f"y{i}", "y", "p", gpus=1, at=float(i))
    state.add_job(job("x2", "x", gpus=2, at=10.0))
    decisions = state.cycle(10.0)  # x would use 3 of its 2: borrowing, so no reclaim; it waits for capacity
    assert waits(decisions)["x2"].code == WaitCode.NO_CAPACITY
    state.job_finished("x1")  # x now uses nothing: x2 fits its guarantee and y borrows 1 of x's GPUs
    decisions = state.cycle(11.0)
    assert preempted(decisions) == ["y3"]
    assert admitted(decisions) == {"x2": "p"}


def test_the_woken_job_decides_as_a_state_built_fresh_from_the_same_jobs():
    def borrowers(state: SchedulerState) -> SchedulerState:
        for i in (1, 2, 3):
            start(state, f"y{i}", "y", "p", gpus=1, at=float(i))
        return state

    state = two_halves()
    start(state, "x1", "x", "p", gpus=1, at=0.0)
    borrowers(state)
    state.add_job(job("x2", "x", gpus=2, at=10.0, seq=1))
    state.cycle(10.0)
    state.job_finished("x1")
    fresh = borrowers(two_halves())
    fresh.add_job(job("x2", "x", gpus=2, at=10.0, seq=1))
    ours, theirs = state.cycle(11.0), fresh.cycle(11.0)
    assert (preempted(ours), admitted(ours)) == (preempted(theirs), admitted(theirs)) == (["y3"], {"x2": "p"})


# -- defect 2: an aged job's reservation holds against its own quota's small jobs ----------------------------------
@pytest.mark.parametrize(
    ("small_quota", "small_priority", "small_admitted"),
    [
        ("q", 0, False),  # q's own small job fits q's guarantee, but the older aged job of q comes first
        ("q", 10, True),  # a more urgent (higher-priority) job of q is not held back
        ("other", 0, True),  # another quota within its own guarantee is served first (guarantee first)
    ],
)
def test_an_aged_job_is_not_overtaken_by_its_own_quotas_small_jobs(small_quota, small_priority, small_admitted):
    quotas = [quota("q", gpu_in={"p": 4}), quota("other", gpu_in={"p": 2}), quota("z")]
    state = state_of(quotas, [gpu_pool("p", 8)], age=100.0)
    start(state, "r1", "q", "p", gpus=1, at=0.0)  # q runs 1 of its 4: the 4-GPU job would borrow
    for i in range(4):
        start(state, f"z{i}", "z", "p", gpus=1, at=0.0)  # z borrows 4: 3 GPUs are free
    state.add_job(job("big", "q", gpus=4, seq=1, at=0.0))
    state.add_job(job("small", small_quota, gpus=1, seq=2, at=150.0, priority=small_priority))
    decisions = state.cycle(200.0)
    assert ("small" in admitted(decisions)) is small_admitted
    if not small_admitted:
        w = waits(decisions)["small"]
        assert w.code == WaitCode.RESERVED_FOR_STARVING_JOB
        assert "reserved for job big of quota q" in w.message


def test_an_aged_job_of_an_isolated_partition_runs_before_its_quotas_later_small_jobs():
    # guarantee = limit = 4 (a partition): the 4-GPU job waits for its own quota's usage to drain, and the small
    # jobs submitted after it no longer keep that from happening once it is aged
    state = state_of([quota("q", gpu_in={"p": (4, 4)})], [gpu_pool("p", 8)], age=100.0)
    start(state, "r1", "q", "p", gpus=1, at=0.0)
    state.add_job(job("big", "q", gpus=4, seq=1, at=0.0))
    for i in range(3):
        state.add_job(job(f"s{i}", "q", gpus=1, seq=2 + i, at=150.0))
    assert admitted(state.cycle(200.0)) == {}
    state.job_finished("r1")
    assert admitted(state.cycle(201.0)) == {"big": "p"}


@pytest.mark.parametrize(("age", "expected_victims"), [(None, []), (100.0, ["z-r5", "z-r4", "s2", "s1"])])
def test_an_aged_job_takes_back_what_its_own_quotas_later_jobs_took_where_its_quota_reclaims(age, expected_victims):
    quotas = [quota("q", gpu_in={"p": 4}, reclaim="any"), quota("z", gpu_in={"p": 4})]
    state = state_of(quotas, [gpu_pool("p", 8)], age=age)
    for i in range(6):
        start(state, f"z-r{i}", "z", "p", gpus=1, at=float(i))  # z borrows 2
    state.add_job(job("big", "q", gpus=4, seq=1, at=0.0))
    start(state, "s1", "q", "p", gpus=1, at=60.0)  # q's jobs that started while big waited (it did not fit yet)
    start(state, "s2", "q", "p", gpus=1, at=61.0)
    decisions = state.cycle(200.0)
    assert preempted(decisions) == expected_victims
    assert ("big" in admitted(decisions)) is bool(expected_victims)
    if expected_victims:
        own = next(d for d in decisions if getattr(d, "victim_id", None) == "s1")
        assert "submitted before it and queued past the starvation age: it had overtaken that job" in own.message


# -- defect 3: reclaim does not thrash long borrowers --------------------------------------------------------------
def lender_and_borrower():
    """x guarantees the whole 2-GPU pool and reclaims; y guarantees nothing, so its 2-GPU job b always borrows."""
    state = state_of([quota("x", gpu_in={"p": 2}, reclaim="any"), quota("y", gpu_in={"p": 0})], [gpu_pool("p", 2)])
    state.add_job(job("b", "y", gpus=2, at=0.0))
    assert admitted(state.cycle(0.0)) == {"b": "p"}
    return state


def test_a_preempted_borrower_waits_out_a_growing_requeue_backoff_and_is_then_never_preempted_again():
    state = lender_and_borrower()
    now, backoffs = 0.0, []
    for i in range(1, MAX_PREEMPTIONS + 2):
        now += 100.0  # b has run 100 s; x submits a job that fits its guarantee
        state.add_job(job(f"x{i}", "x", gpus=2, at=now))
        decisions = state.cycle(now)
        if i > MAX_PREEMPTIONS:  # preempted often enough: it runs to its end, x waits for capacity
            assert preempted(decisions) == []
            assert waits(decisions)[f"x{i}"].code == WaitCode.NO_CAPACITY
            break
        assert preempted(decisions) == ["b"]
        state.add_job(job("b", "y", gpus=2, at=0.0))  # requeued by the loop
        state.job_finished(f"x{i}")  # x's job ends at once: b could borrow the idle pool again...
        w = waits(state.cycle(now + 1.0))["b"]  # ...but not before its backoff ends
        assert w.code == WaitCode.REQUEUE_BACKOFF
        assert f"preempted {i} time(s) after {100 * i:.0f} s of run time in all" in w.message
        backoffs.append(state.next_due - now)
        now = state.next_due
        assert admitted(state.cycle(now)) == {"b": "p"}
    assert backoffs == [REQUEUE_BACKOFF_S * REQUEUE_BACKOFF_FACTOR ** n for n in range(MAX_PREEMPTIONS)]


def test_a_preempted_job_runs_within_its_quotas_guarantee_during_its_backoff():
    quotas = [quota("x", gpu_in={"p": 2}, reclaim="any"), quota("y", gpu_in={"p": 2})]
    state = state_of(quotas, [gpu_pool("p", 4)])
    for i in range(4):
        start(state, f"y{i}", "y", "p", gpus=1, at=float(i))  # y borrows 2
    state.add_job(job("x1", "x", gpus=2, at=10.0))
    assert preempted(state.cycle(10.0)) == ["y3", "y2"]
    state.add_job(job("y3", "y", gpus=1, at=3.0))
    state.job_finished("y0")  # y uses 1 of its 2: y3 fits its guarantee, backoff or not
    assert admitted(state.cycle(11.0)) == {"y3": "p"}


def test_the_victim_order_takes_the_least_work_even_from_a_job_preempted_before():
    # the backoff and the bound limit how often one job is stopped; each preemption throws away the least work
    state = lender_and_borrower()
    state.add_job(job("x1", "x", gpus=2, at=1000.0))
    assert preempted(state.cycle(1000.0)) == ["b"]  # b lost 1,000 s
    state.add_job(job("b", "y", gpus=1, at=0.0))  # requeued (as a 1-GPU job, to share the pool below)
    state.job_finished("x1")
    assert waits(state.cycle(1001.0))["b"].code == WaitCode.REQUEUE_BACKOFF
    state.add_job(job("a", "y", gpus=1, at=1500.0))
    assert admitted(state.cycle(1500.0)) == {"a": "p"}
    assert state.next_due == 1600.0
    assert admitted(state.cycle(1600.0)) == {"b": "p"}
    state.add_job(job("x2", "x", gpus=1, at=1700.0))
    assert preempted(state.cycle(1700.0)) == ["b"]  # b ran 100 s since its restart, a 200 s


# -- the aged job's hold: only where borrowing is its only way in ----------------------------------------------------
@pytest.mark.parametrize(
    ("reclaim", "big_gpus", "held"),
    [
        ("any", 4, False),  # fits q's guarantee alone and q reclaims: it gets in through its guarantee, holds nothing
        ("never", 4, True),  # q cannot reclaim: the pool is held for it (against q's own jobs too)
        ("any", 5, True),  # larger than q's guarantee: borrowing is its only way in, so it holds
    ],
)
def test_an_aged_borrower_holds_the_pool_only_where_its_guarantee_cannot_bring_it_in(reclaim, big_gpus, held):
    quotas = [quota("q", gpu_in={"p": 4}, reclaim=reclaim), quota("z", gpu_in={"p": 0})]
    state = state_of(quotas, [gpu_pool("p", 8)], age=100.0)
    start(state, "r1", "q", "p", gpus=1, at=0.0)  # q runs 1 of its 4 (started before big: no overtaker)
    for i in range(5):
        start(state, f"z{i}", "z", "p", gpus=1, at=float(i))  # z borrows 5: 2 GPUs are free
    state.add_job(job("big", "q", gpus=big_gpus, seq=1, at=0.0))  # would borrow: waits, aged at 100 s
    state.add_job(job("zs", "z", gpus=1, seq=2, at=150.0))
    decisions = state.cycle(200.0)
    assert "big" not in admitted(decisions)
    if held:
        assert waits(decisions)["zs"].code == WaitCode.RESERVED_FOR_STARVING_JOB
        return
    assert admitted(decisions) == {"zs": "p"}  # the free GPUs are not held back from z's borrowing
    state.job_finished("r1")  # q's older job ends: big fits q's guarantee and takes back what z borrows
    decisions = state.cycle(300.0)
    assert preempted(decisions) == ["zs", "z4"]
    assert admitted(decisions) == {"big": "p"}


@pytest.mark.parametrize(("own_jobs", "plans"), [(6, 0), (3, 1)])
def test_an_aged_job_of_a_borrowing_quota_plans_no_take_back_that_cannot_succeed(monkeypatch, own_jobs, plans):
    # taking back what q's later jobs took must leave q within its guarantee through its jobs that do not borrow:
    # while q borrows it has none, so no plan is listed for it (each drop of q's usage re-examines the aged job)
    from allotment.core import reclaiming

    calls = []
    real = reclaiming.plan_preemption
    monkeypatch.setattr(reclaiming, "plan_preemption", lambda *a, **k: calls.append(a) or real(*a, **k))
    quotas = [quota("q", gpu_in={"p": 4}, reclaim="any"), quota("z", gpu_in={"p": 0})]
    state = state_of(quotas, [gpu_pool("p", 8)], age=100.0)
    for i in range(own_jobs):
        start(state, f"r{i}", "q", "p", gpus=1, at=float(i))
    for i in range(7 - own_jobs):
        start(state, f"z{i}", "z", "p", gpus=1, at=float(i))
    state.add_job(job("big", "q", gpus=4, seq=1, at=10.0))
    state.cycle(200.0)
    calls.clear()
    state.job_finished("r0")  # q's usage drops: the aged job is examined again
    w = waits(state.cycle(201.0))["big"]
    assert (w.code, len(calls)) == (WaitCode.NO_CAPACITY, plans)
    assert "preempting every eligible job would not free enough" in w.message
