"""The preemption-heavy steady state (benchmarks/core_bench.py churn) runs a few checks in shortcut form: each must
equal the plain definition it replaces."""

import random

import pytest
from core_testkit import gpu_pool, job, quota, start

from allotment.core.admission import SchedulerState
from allotment.core.model import SchedulerConfig
from allotment.core.preemption import preemption_kinds
from allotment.core.queues import ParkIndex


def plain_kinds(tree, prios, q, priority, option, pools, aged_since):
    """preemption_kinds as first written: per-pool lookups, then UsageTree.within_guarantee and fits_guarantee_alone."""
    within, reclaims, _, child = tree.preempt_policy[q]
    if within:
        for pool in pools:
            own = prios.get((q, pool))
            if own and min(own) < priority:
                break
        else:
            within = False
    reclaim = after_own = False
    overtaken = None
    if reclaims:
        reclaim = tree.within_guarantee(q, option.req)
        if not reclaim and tree.fits_guarantee_alone(q, option.req):
            if aged_since is not None:
                overtaken = aged_since
                reclaim = after_own = True
            elif within:
                reclaim = after_own = True
    if not within and not reclaim and not child:
        return None
    return within, reclaim, child, after_own, overtaken


@pytest.mark.parametrize("seed", range(12))
def test_preemption_kinds_equals_the_plain_checks(seed):
    """As the quota's own jobs fill and leave its guarantee, for every group, pool list, priority and age."""
    rng = random.Random(seed)
    specs = [quota("cohort", gpu_in={"a": 8, "b": 4}, cpu_in={"a": 16})]
    for i in range(4):
        specs.append(quota(
            f"q{i}", "cohort", gpu_in={"a": (rng.randint(0, 2), 8), "b": rng.choice([0, 1])},
            cpu_in={"a": rng.randint(0, 4)} if rng.random() < 0.5 else None,
            reclaim=rng.choice(["never", "lower_priority", "any"]),
            within_quota_preemption=rng.choice(["never", "lower_priority"]), child_preemption=rng.random() < 0.3))
    state = SchedulerState(specs, [gpu_pool("a", 8, nodes=2, cpu_total=32), gpu_pool("b", 4)],
                           config=SchedulerConfig(starvation_age_s=None))
    n = 0
    for step in range(6):
        for _ in range(rng.randint(0, 3)):
            n += 1
            pool = rng.choice(["a", "b"])
            free = sum(1 for f in state.device_free(pool).values() if f.raw == 1000)
            if free:
                start(state, f"r{n}", f"q{rng.randrange(4)}", pool, gpus=rng.choice([0.5, 1]),
                      priority=rng.choice([0, 100, 200]), at=float(step))
        for _ in range(5):
            n += 1
            state.add_job(job(f"j{n}", rng.choice(["cohort", "q0", "q1", "q2", "q3"]),
                              gpus=rng.choice([0.5, 1, 2, 3]), cores=rng.choice([0, 1, 8]),
                              pools=rng.choice([("a",), ("a", "b"), ("b",)]), priority=rng.choice([0, 100, 200])))
        tree = state._tree
        for group in state._groups.values():
            for opt in group.options:
                for pools in ((opt.pool,), ("a", "b")):
                    for priority in (0, 100, 300):
                        for aged_since in (None, 2.0):
                            args = (tree, state._prio_by_qp, group.quota, priority, opt, pools, aged_since)
                            assert preemption_kinds(*args) == plain_kinds(*args)
        if state._running and rng.random() < 0.5:
            state.job_finished(rng.choice(state.running_ids()))


class Parked:
    """What ParkIndex reads and writes on a group."""

    def __init__(self) -> None:
        self.parked = False
        self.park_keys: tuple = ()
        self.park_caps: tuple = ()
        self.park_needs: tuple = ()
        self.park_order = 0


def test_parking_keeps_each_bucket_in_order_and_forgets_empty_ones():
    park = ParkIndex()
    groups = [Parked() for _ in range(4)]
    park.park(groups[0], [("limit", 3, "a")], [("a", 7, 1000)], order=50)
    park.park(groups[1], [], [("a", 7, 1000), ("b", 9, 2000)], order=10)
    park.park(groups[2], [("limit", 3, "a")], [("a", 7, 1000)], order=30)
    park.park(groups[3], [], [("a", 7, 500)], order=20)
    assert all(g.parked for g in groups)
    assert park.cap_buckets("a")[7][1000] == [[10, 30, 50], [groups[1], groups[2], groups[0]]]
    assert park.cap_buckets("a")[7][500] == [[20], [groups[3]]]
    assert list(park.limits[("limit", 3, "a")]) == [groups[0], groups[2]]
    park.unpark(groups[2])
    assert park.cap_buckets("a")[7][1000] == [[10, 50], [groups[1], groups[0]]]
    assert list(park.limits[("limit", 3, "a")]) == [groups[0]] and not groups[2].parked
    for g in (groups[0], groups[1], groups[3]):
        park.unpark(g)
    assert park.cap_buckets("a") == {7: {}} and park.cap_buckets("b") == {9: {}} and park.limits == {}
    park.park(groups[0], [], [("a", 7, 1000)], order=5)  # a bucket emptied before is filled again
    assert park.cap_buckets("a")[7][1000] == [[5], [groups[0]]]


def test_limit_rooms_are_kept_by_quota_and_amount_and_forgotten_when_empty():
    park = ParkIndex()
    groups = [Parked() for _ in range(3)]
    park.park(groups[0], [], [], order=1, needs=[(3, 7, 20_000), (4, 9, 1000)])
    park.park(groups[1], [], [], order=2, needs=[(3, 7, 20_000)])
    park.park(groups[2], [("limit", 3, "a")], [], order=3, needs=[(3, 7, 5000)])
    assert park.rooms[3] == {(7, 20_000): {groups[0]: None, groups[1]: None}, (7, 5000): {groups[2]: None}}
    assert park.rooms[4] == {(9, 1000): {groups[0]: None}}
    park.unpark(groups[0])
    assert park.rooms[3][(7, 20_000)] == {groups[1]: None} and 4 not in park.rooms and groups[0].park_needs == ()
    park.unpark(groups[1])
    park.unpark(groups[2])
    assert park.rooms == {} and park.limits == {}


class WithoutWakeMemo(SchedulerState):
    """Answers every frontier question afresh: its memo is never kept (neither _wake_next nor the cycle's inline
    test of it finds one)."""

    _wake_memo = property(lambda self: None, lambda self, value: None)


@pytest.mark.parametrize("seed", range(6))
def test_the_frontier_memo_answers_as_a_fresh_look_would(seed):
    """Churn with guarantee holds and jobs of every shape: the same decisions with and without the memo of the
    frontier's last "not before the queued candidates" answer."""
    rng = random.Random(seed)
    specs = [quota("cohort", gpu_in={"a": 6, "b": 4})]
    specs += [quota(f"q{i}", "cohort", gpu_in={"a": (g, 6), "b": (h, 4)}, reclaim="any",
                    within_quota_preemption="lower_priority") for i, (g, h) in enumerate([(2, 1), (2, 1), (1, 2), (1, 0)])]
    pools = [gpu_pool("a", 6, nodes=3), gpu_pool("b", 4, nodes=2)]
    config = SchedulerConfig(starvation_age_s=rng.choice([None, 30.0]))
    states = [cls(specs, pools, config=config) for cls in (SchedulerState, WithoutWakeMemo)]
    running: list[str] = []
    memo_used = False
    for step in range(40):
        now = step * 10.0
        for n in range(rng.randint(1, 6)):
            j = job(f"j{step}-{n}", f"q{rng.randrange(4)}", gpus=rng.choice([0.5, 1, 1, 2]),
                    pools=rng.choice([("a",), ("a", "b"), ("b", "a")]), priority=rng.choice([0, 100]), at=now)
            for state in states:
                state.add_job(j)
        for _ in range(min(len(running), rng.randint(0, 4))):
            victim = running.pop(rng.randrange(len(running)))
            for state in states:
                state.job_finished(victim)
        out = [state.cycle(now) for state in states]
        assert out[0] == out[1]
        memo_used = memo_used or states[0]._wake_memo is not None
        running += [d.job_id for d in out[0] if type(d).__name__ == "Admit"]
        gone = {d.victim_id for d in out[0] if type(d).__name__ == "Preempt"}
        running = [r for r in running if r not in gone]
    assert memo_used
