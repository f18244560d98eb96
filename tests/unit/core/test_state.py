"""The incremental SchedulerState the loop keeps between cycles: events wake exactly what they can unblock."""

import pytest
from core_testkit import admitted, gpu, gpu_pool, job, quota, start, state_of, waits

from allotment.core.model import Admit, Device, Pool, QueuedJob, RunningJob, WaitCode


def test_finished_job_wakes_the_waiting_one_and_unchanged_waits_are_not_repeated():
    state = state_of([quota("q")], [gpu_pool("p", 2)])
    start(state, "r", "q", "p", gpus=2)
    state.add_job(job("j", "q", gpus=1))
    assert waits(state.cycle(1.0))["j"].code == WaitCode.NO_CAPACITY
    assert state.cycle(2.0) == []  # nothing changed: no decisions at all
    assert state.job_finished("r") is True
    assert admitted(state.cycle(3.0)) == {"j": "p"}
    assert state.job_finished("r") is False


def test_unrelated_release_does_not_wake_a_group_blocked_by_its_own_limit():
    state = state_of([quota("q", gpu_in={"p": (0, 1)}), quota("other")], [gpu_pool("p", 4), gpu_pool("x", 4)])
    start(state, "mine", "q", "p", gpus=1)
    start(state, "elsewhere", "other", "x", gpus=1)
    state.add_job(job("j", "q", gpus=1, pools=("p",)))
    assert waits(state.cycle(1.0))["j"].code == WaitCode.LIMIT_REACHED
    state.job_finished("elsewhere")
    assert state.cycle(2.0) == []
    state.job_finished("mine")
    assert admitted(state.cycle(3.0)) == {"j": "p"}


def test_explain_every_queued_job():
    state = state_of([quota("q")], [gpu_pool("p", 1)])
    for i in range(3):
        state.add_job(job(f"j{i}", "q", gpus=1, seq=i))
    assert state.explain("j0").code == "pending"
    state.cycle(0.0)
    assert state.explain("j0") is None  # running
    assert state.explain("j1").code == WaitCode.NO_CAPACITY
    behind = state.explain("j2")
    assert behind.code == WaitCode.QUEUED_BEHIND
    assert "queued behind 1 identical job(s)" in behind.message and "job j1, waits: pool p" in behind.message
    assert state.explain("nope") is None


def test_removing_the_head_promotes_the_next_job():
    state = state_of([quota("q")], [gpu_pool("p", 2)])
    start(state, "r", "q", "p", gpus=1)
    state.add_job(job("big", "q", gpus=2, seq=1))
    state.add_job(job("big2", "q", gpus=2, seq=2))
    state.cycle(0.0)
    assert state.remove_job("big") is True
    assert state.explain("big2").code == "pending"
    assert waits(state.cycle(1.0))["big2"].code == WaitCode.NO_CAPACITY
    assert state.remove_job("big") is False


def test_a_more_urgent_job_joining_a_blocked_group_is_examined():
    quotas = [quota("q", gpu_in={"p": (0, 2)}, within_quota_preemption="lower_priority")]
    state = state_of(quotas, [gpu_pool("p", 4)])
    start(state, "r1", "q", "p", gpus=1, priority=50)
    start(state, "r2", "q", "p", gpus=1, priority=50)
    state.add_job(job("low", "q", gpus=1, priority=10))
    assert waits(state.cycle(0.0))["low"].code == WaitCode.LIMIT_REACHED
    state.add_job(job("high", "q", gpus=1, priority=100))
    decisions = state.cycle(1.0)
    assert admitted(decisions) == {"high": "p"}


def test_max_admissions_per_cycle():
    state = state_of([quota("q")], [gpu_pool("p", 8)], max_admissions_per_cycle=2)
    for i in range(5):
        state.add_job(job(f"j{i}", "q", gpus=1, seq=i))
    assert list(admitted(state.cycle(0.0))) == ["j0", "j1"]
    assert list(admitted(state.cycle(1.0))) == ["j2", "j3"]
    assert list(admitted(state.cycle(2.0))) == ["j4"]


def test_update_pool_adds_capacity():
    state = state_of([quota("q")], [gpu_pool("p", 1)])
    state.add_job(job("j", "q", gpus=2))
    state.cycle(0.0)
    state.update_pool(gpu_pool("p", 2))
    assert admitted(state.cycle(1.0)) == {"j": "p"}
    with pytest.raises(ValueError, match="not known"):
        state.update_pool(gpu_pool("new", 1))


def test_snapshot_devices_exclude_running_jobs():
    pool = Pool("p", (Device("d0", free=gpu(0.5)), Device("d1", free=gpu(0))))
    state = state_of([quota("q")], [pool])
    state.add_running(RunningJob("r", "q", 0, 0.0, "p", {"gpu": gpu(1.5)}, (("d0", gpu(0.5)), ("d1", gpu(1)))))
    state.add_job(job("half", "q", gpus=0.5))
    state.add_job(job("more", "q", gpus=0.1))
    decisions = state.cycle(0.0)
    assert [d.devices for d in decisions if isinstance(d, Admit)] == [(("d0", gpu(0.5)),)]
    assert state.device_free("p") == {"d0": gpu(0), "d1": gpu(0)}
    state.job_finished("r")
    assert state.device_free("p") == {"d0": gpu(0.5), "d1": gpu(1)}


@pytest.mark.parametrize(
    ("action", "message"),
    [
        (lambda s: s.add_job(job("dup", "q")), "already known"),
        (lambda s: s.add_running(RunningJob("x", "ghost", 0, 0.0, "p", {})), "quota ghost does not exist"),
        (lambda s: s.add_running(RunningJob("x", "q", 0, 0.0, "nowhere", {})), "pool nowhere does not exist"),
    ],
)
def test_misuse_is_refused(action, message):
    state = state_of([quota("q")], [gpu_pool("p", 1)])
    state.add_job(job("dup", "q"))
    with pytest.raises(ValueError, match=message):
        action(state)


def test_invalid_jobs_are_reported_once_and_can_be_removed():
    state = state_of([quota("q")], [gpu_pool("p", 1)])
    state.add_job(QueuedJob("bad", "ghost"))
    assert waits(state.cycle(0.0))["bad"].code == WaitCode.UNKNOWN_QUOTA
    assert state.cycle(1.0) == []
    assert state.explain("bad").code == WaitCode.UNKNOWN_QUOTA
    assert state.queued_count == 1
    assert state.remove_job("bad") and state.queued_count == 0


@pytest.mark.parametrize(
    "cycle, expected_queued, expected_code",
    [
        (True, ["j0", "j1", "j2"], WaitCode.NO_CAPACITY),  # blocked: every member shares the head's reason
        (False, ["j0", "j1", "j2"], None),  # not examined yet: no reason to share
    ],
)
def test_queue_group_shares_the_heads_reason_with_its_members(cycle, expected_queued, expected_code):
    state = state_of([quota("q")], [gpu_pool("p", 4)])
    start(state, "r", "q", "p", gpus=4)
    for i in range(3):
        state.add_job(job(f"j{i}", "q", gpus=2, seq=i))
    if cycle:
        state.cycle(1.0)
    queued = sorted(state.queued_ids())
    assert queued == expected_queued
    key, wait = state.queue_group("j2")
    assert sorted(state.group_members(key)) == queued
    assert (wait.code if wait else None) == expected_code
    if expected_code:
        assert wait.message == state.explain("j0").message  # the head's sentence, with the numbers
    assert state.queue_group("r") is None  # running, not queued
    assert state.group_members(("no", "such", "group")) == []


def test_guarantee_hold_is_released_once_the_quota_is_served():
    quotas = [quota("a", gpu_in={"p": 4}), quota("b", gpu_in={"p": 0}), quota("other")]
    state = state_of(quotas, [gpu_pool("p", 4)])
    start(state, "x", "other", "p", gpus=2)
    state.add_job(job("a1", "a", gpus=4, seq=1))
    state.add_job(job("b1", "b", gpus=1, seq=2))
    decisions = state.cycle(0.0)
    assert waits(decisions)["b1"].code == WaitCode.GUARANTEE_PENDING
    state.job_finished("x")
    assert admitted(state.cycle(1.0)) == {"a1": "p"}
    assert state.explain("b1").code == WaitCode.NO_CAPACITY
    state.job_finished("a1")
    assert admitted(state.cycle(2.0)) == {"b1": "p"}


def test_cancelling_a_starving_job_releases_its_reservation():
    state = state_of([quota("q"), quota("q2")], [gpu_pool("p", 4)], age=100.0)
    for i in range(3):
        start(state, f"r{i}", "q", "p", gpus=1)
    state.add_job(job("big", "q", gpus=4, seq=1, at=0.0))
    state.add_job(job("small", "q2", gpus=1, seq=2, at=150.0))
    assert waits(state.cycle(200.0))["small"].code == WaitCode.RESERVED_FOR_STARVING_JOB
    state.remove_job("big")
    assert admitted(state.cycle(201.0)) == {"small": "p"}


def test_a_job_that_can_never_run_says_so_and_holds_nothing():
    quotas = [quota("a", gpu_in={"p": 8}), quota("b", gpu_in={"p": 0})]
    state = state_of(quotas, [gpu_pool("p", 2)], age=10.0)
    state.add_job(job("huge", "a", gpus=4, seq=1, at=0.0))  # within a's guarantee, but the pool has 2 GPUs
    state.add_job(job("b1", "b", gpus=1, seq=2, at=0.0))
    decisions = state.cycle(100.0)
    assert "it can never run with the current quotas and pools" in waits(decisions)["huge"].message
    assert admitted(decisions) == {"b1": "p"}  # no guarantee hold, no starvation hold
    # more devices (the snapshot's free amounts exclude running jobs: b1 holds p-d0): now it can
    state.update_pool(Pool("p", (Device("p-d0", free=gpu(0)),) + tuple(Device(f"p-d{i}") for i in range(1, 6))))
    assert admitted(state.cycle(101.0)) == {"huge": "p"}


def test_a_job_waiting_on_its_own_unlendable_guarantee_runs_once_its_quota_frees_it():
    # q1 guarantees the pool's only GPU and lends none of it. Its 1-GPU job waits while q1's 0.1-GPU job runs; when
    # that ends nothing changes at the cluster level (the guarantee still occupies the GPU), yet the job now fits
    # inside q1's own guarantee: it must be woken.
    quotas = [quota("cohort", gpu_in={"p": 1}),
              quota("q1", "cohort", gpu_in={"p": (1, "unlimited", 0)}),
              quota("q2", "cohort", gpu_in={"p": 0})]
    state = state_of(quotas, [gpu_pool("p", 1)])
    state.add_job(job("small", "q1", gpus=0.1, seq=1))
    state.add_job(job("whole", "q1", gpus=1, seq=2))
    decisions = state.cycle(1.0)
    assert admitted(decisions) == {"small": "p"}
    assert waits(decisions)["whole"].code == WaitCode.NO_CAPACITY
    state.job_finished("small")
    assert admitted(state.cycle(2.0)) == {"whole": "p"}


def test_a_fraction_waiting_for_a_device_runs_when_it_frees_even_where_guarantees_exceed_the_pool():
    # q1 and q2 each keep 1 GPU unlendable in a pool of 1 GPU (guarantees exceed the pool). q2's 0.1-GPU job waits
    # for the device q1's job holds; when that ends the pool's effective free amount is still negative (both
    # guarantees count), but the device is free and the job is inside q2's own guarantee: it must be woken.
    quotas = [quota("cohort", gpu_in={"p": 2}),
              quota("q1", "cohort", gpu_in={"p": (1, "unlimited", 0)}),
              quota("q2", "cohort", gpu_in={"p": (1, "unlimited", 0)})]
    state = state_of(quotas, [gpu_pool("p", 1)])
    state.add_job(job("whole", "q1", gpus=1, seq=1))
    state.add_job(job("tenth", "q2", gpus=0.1, seq=2))
    decisions = state.cycle(1.0)
    assert admitted(decisions) == {"whole": "p"}
    assert waits(decisions)["tenth"].code == WaitCode.NO_DEVICE_FIT
    state.job_finished("whole")
    assert admitted(state.cycle(2.0)) == {"tenth": "p"}
