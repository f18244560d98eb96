"""Rule 5, the preemption delay's hold: a blocked job that fits its quota's guarantee alone and may preempt once its
delay ends holds the capacity meanwhile against the lower-priority jobs it could preempt then (its own quota's where
the quota preempts within itself, other quotas' borrowers under the limit that blocks it where its quota reclaims).
They would only be started to be preempted; held, the capacity that frees by itself reaches the job."""

from __future__ import annotations

import random

from core_testkit import admitted, gpu_pool, job, preempted, quota, start, state_of, waits

from allotment.core.model import WaitCode
from allotment.core.queues import Group, Hold, HoldSet, QueuedRec
from allotment.core.usage import ROOT

DELAY = 5.0


def own_quota_full(within: str = "lower_priority", reclaim: str = "never"):
    """Quota q (guarantee 4 of a 4-GPU pool) runs four 1-GPU jobs of priority 0 and queues two more; its 4-GPU job
    of priority 100 arrives at t=1 and waits for its preemption delay."""
    state = state_of([quota("q", gpu_in={"p": (4, 4)}, within_quota_preemption=within, reclaim=reclaim)],
                     [gpu_pool("p", 4)], preemption_delay_s=DELAY)
    for i in range(4):
        start(state, f"run{i}", "q", "p", gpus=1, at=0.0)
    for i in range(2):
        state.add_job(job(f"low{i}", "q", gpus=1, at=0.5))
    state.add_job(job("big", "q", gpus=4, priority=100, at=1.0))
    return state


def test_lower_priority_jobs_of_its_quota_wait_while_the_capacity_drains_to_it():
    state = own_quota_full()
    assert waits(state.cycle(1.0))["big"].code == WaitCode.LIMIT_REACHED
    state.job_finished("run0")
    out = state.cycle(2.0)
    assert admitted(out) == {}  # low0 would have taken the freed GPU, and been preempted for big at t=6
    wait = state.explain("low0")
    assert wait.code == WaitCode.HELD_FOR_PREEMPTING_JOB
    assert wait.message == (
        "pool p: gpu is held for job big of quota q (priority 100), which may preempt lower-priority jobs once it has "
        "been queued 5 s (the preemption delay); started now, this job would be one of them")
    for i in (1, 2, 3):
        state.job_finished(f"run{i}")
    out = state.cycle(3.0)
    assert list(admitted(out)) == ["big"] and preempted(out) == []  # in without preempting anything


def test_without_the_hold_the_freed_capacity_is_backfilled_and_then_preempted():
    """The same queue where the quota may not preempt within itself: nothing to hold for, the small jobs backfill."""
    state = own_quota_full(within="never")
    state.cycle(1.0)
    state.job_finished("run0")
    assert list(admitted(state.cycle(2.0))) == ["low0"]


def test_the_hold_ends_with_the_delay_and_the_job_preempts_what_still_runs():
    state = own_quota_full()
    state.cycle(1.0)
    state.job_finished("run0")
    state.cycle(2.0)
    assert preempted(state.cycle(1.0 + DELAY - 0.1)) == []
    out = state.cycle(1.0 + DELAY)
    assert sorted(preempted(out)) == ["run1", "run2", "run3"] and list(admitted(out)) == ["big"]


def test_jobs_of_equal_or_higher_priority_are_not_held():
    state = own_quota_full()
    state.add_job(job("peer", "q", gpus=1, priority=100, at=1.5))
    state.cycle(1.0)
    state.job_finished("run0")
    assert list(admitted(state.cycle(2.0))) == ["peer"]


def lender_and_borrower(reclaim: str = "any"):
    """A cohort of 8 GPUs: quota a (guarantee 4) runs one job of its own, quota b (guarantee 4, limit 8) borrows a's
    other 3 GPUs. a's 4-GPU job of priority 100 would borrow with a's own job running, but fits a's guarantee alone."""
    state = state_of([quota("cohort", gpu_in={"p": (8, 8)}),
                      quota("a", "cohort", gpu_in={"p": (4, 8)}, reclaim=reclaim,
                            within_quota_preemption="lower_priority"),
                      quota("b", "cohort", gpu_in={"p": (4, 8)}),
                      quota("other", gpu_in={"p": (0, 8)})],
                     [gpu_pool("p", 16)], preemption_delay_s=DELAY)
    start(state, "a-own", "a", "p", gpus=1, at=0.0)
    for i in range(7):
        start(state, f"b{i}", "b", "p", gpus=1, at=0.0)
    state.add_job(job("big", "a", gpus=4, priority=100, at=1.0))
    assert waits(state.cycle(1.0))["big"].code == WaitCode.LIMIT_REACHED
    state.job_finished("b6")  # b is back at 6: 2 of them borrowed from a
    return state


def test_other_quotas_lower_priority_borrowers_are_held_under_the_limit_that_blocks_it():
    state = lender_and_borrower()
    state.add_job(job("b-borrows", "b", gpus=1, at=1.5))
    assert admitted(state.cycle(2.0)) == {}
    assert state.explain("b-borrows").code == WaitCode.HELD_FOR_PREEMPTING_JOB
    state.add_job(job("b-urgent", "b", gpus=1, priority=200, at=2.5))
    assert list(admitted(state.cycle(2.5))) == ["b-urgent"]  # higher priority than big: not one it could preempt
    # the cohort is full now: that is what stops b-borrows, and what it is told
    assert state.explain("b-borrows").code == WaitCode.LIMIT_REACHED


def test_a_held_job_is_told_the_limit_that_stops_it_and_woken_when_the_hold_ends():
    state = own_quota_full()
    state.cycle(1.0)
    assert state.explain("low0").code == WaitCode.LIMIT_REACHED  # q's limit is full: the hold is not its reason
    state.job_finished("run0")
    state.cycle(2.0)
    assert state.explain("low0").code == WaitCode.HELD_FOR_PREEMPTING_JOB
    for i in (1, 2, 3):
        state.job_finished(f"run{i}")
    assert list(admitted(state.cycle(3.0))) == ["big"]


def test_a_job_a_full_pool_stops_is_woken_when_the_hold_ends():
    """Told the pool is full, the small job waits for capacity; capacity that frees while the hold stands passes it
    by, so the hold's end (here: big is cancelled) is what wakes it."""
    state = state_of([quota("q", gpu_in={"p": (4, 8)}, within_quota_preemption="lower_priority")],
                     [gpu_pool("p", 4)], preemption_delay_s=DELAY)
    for i in range(4):
        start(state, f"run{i}", "q", "p", gpus=1, at=0.0)
    state.add_job(job("big", "q", gpus=4, priority=100, at=1.0))
    state.add_job(job("low", "q", gpus=1, at=1.0))
    state.cycle(1.0)
    assert state.explain("low").code == WaitCode.NO_CAPACITY
    state.job_finished("run0")
    assert admitted(state.cycle(2.0)) == {}
    state.remove_job("big")
    assert list(admitted(state.cycle(2.5))) == ["low"]


def test_a_borrower_elsewhere_in_the_pool_is_not_held():
    """The hold covers the quotas under the cohort whose limit blocks big: a quota outside it borrows the pool."""
    state = lender_and_borrower()
    state.add_job(job("outside", "other", gpus=1, at=1.5))
    assert list(admitted(state.cycle(2.0))) == ["outside"]


def test_a_quota_that_does_not_reclaim_holds_no_borrower():
    state = lender_and_borrower(reclaim="never")
    state.add_job(job("b-borrows", "b", gpus=1, at=1.5))
    assert list(admitted(state.cycle(2.0))) == ["b-borrows"]


def test_a_job_larger_than_its_guarantee_holds_nothing():
    """It could not get in through its guarantee by preempting: nothing it would take back is held for it."""
    state = state_of([quota("q", gpu_in={"p": (2, 4)}, within_quota_preemption="lower_priority")],
                     [gpu_pool("p", 4)], preemption_delay_s=DELAY)
    for i in range(4):
        start(state, f"run{i}", "q", "p", gpus=1, at=0.0)
    state.add_job(job("low", "q", gpus=1, at=0.5))
    state.add_job(job("big", "q", gpus=4, priority=100, at=1.0))
    state.cycle(1.0)
    state.job_finished("run0")
    assert list(admitted(state.cycle(2.0))) == ["low"]


def test_the_indexed_delay_holds_answer_as_the_holds_one_by_one():
    """HoldSet indexes delay holds by quota, scope and priority; what it answers must be what asking each hold
    (Hold.blocks) answers, as holds come and go."""
    rng = random.Random(7)
    # a tree of ROOT (0), two cohorts (1, 2) and two quotas under each (3, 4 under 1; 5, 6 under 2)
    paths = [(0,), (1, 0), (2, 0), (3, 1, 0), (4, 1, 0), (5, 2, 0), (6, 2, 0)]
    groups = {q: Group((q,), q, [], None, {}, 0, 0, 0, (), ()) for q in range(3, 7)}
    holds, held = HoldSet(), []
    for step in range(3000):
        if held and rng.random() < 0.4:
            hold = held.pop(rng.randrange(len(held)))
            holds.remove(hold)
        else:
            q = rng.randint(3, 6)
            rec = QueuedRec(f"h{step}", rng.choice((50, 100, 200)), step, 0.0, None, 0, step)
            hold = Hold(ROOT, 0, Hold.DELAY, groups[q], rec, 0, rng.random() < 0.5, rng.random() < 0.5, 5.0,
                        rng.choice((0, paths[q][1])), paths)
            holds.add(hold)
            held.append(hold)
        q, cls = rng.randint(3, 6), rng.randint(0, 1)
        rec = QueuedRec("c", rng.choice((0, 50, 100, 200)), 0, 0.0, None, 0, 0)
        found = holds.blocking(groups[q], rec, cls, False)
        expected = [h for h in held if h.blocks(groups[q], rec, cls, False)]
        assert (found is None) == (not expected) and (found is None or found in expected)
        assert bool(holds) == bool(held)
