"""Table tests for the guarantee defects a replay of Microsoft's Philly trace exposed: a parked job that becomes
entitled to reclaim, an aged job overtaken by its own quota's small jobs, and borrowers preempted again and again."""

import pytest
from core_testkit import admitted, gpu_pool, job, preempted, quota, start, state_of, waits

from allotment.core.admission import SchedulerState
from allotment.core.model import WaitCode


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
