"""Groups blocked by a quota's limit that may not preempt yet wait for room under that limit (queues.ParkIndex, limit
rooms): a job's end that leaves too little room does not re-examine them, and the end that makes room does. Only
their Waits' numbers, and the order of a cycle where such a group stood first in its quota's queue (examined, it
stood for its quota in the cycle's order with its own, borrowing key, and the quota's next job waited behind it),
differ from re-examining them at every end."""

import random

import pytest
from core_testkit import gpu_pool, job, quota

from allotment.core.admission import SchedulerState
from allotment.core.model import Admit, Preempt, SchedulerConfig, Wait
from allotment.core.queues import Hold
from allotment.core.resources import ANY_POOL


def cohort_at_its_limit(delay: float = 5.0) -> tuple[SchedulerState, list]:
    """A cohort limited to 8 GPUs of a 16-GPU pool, full with eight 1-GPU jobs of q1; q2 queues two 4-GPU jobs."""
    specs = [quota("cohort", gpu_in={"p": (8, 8)}),
             quota("q1", "cohort", gpu_in={"p": (4, 8)}),
             quota("q2", "cohort", gpu_in={"p": (4, 8)}, reclaim="any")]
    state = SchedulerState(specs, [gpu_pool("p", 16, nodes=2)], config=SchedulerConfig(preemption_delay_s=delay))
    for i in range(8):
        state.add_job(job(f"small{i}", "q1", gpus=1, at=0.0))
    assert sum(isinstance(d, Admit) for d in state.cycle(0.0)) == 8
    state.add_job(job("big0", "q2", gpus=4, at=1.0, priority=100))
    state.add_job(job("big1", "q2", gpus=4, at=1.0, priority=100))
    first = state.cycle(1.0)
    return state, first


def test_an_end_that_leaves_too_little_room_does_not_re_examine_the_waiting_group():
    state, first = cohort_at_its_limit()
    assert [(type(d).__name__, d.job_id) for d in first] == [("Wait", "big0")]
    assert "quota cohort: limit of 8" in first[0].message
    state.job_finished("small0")  # 1 GPU free under the cohort's limit: big0 needs 4
    assert state.cycle(1.5) == []  # not examined: no new Wait for "7 in use"
    assert "(7 in use, 4 requested)" in state.explain("big0").message  # asked, it answers with today's numbers
    assert state.queue_group("big0")[1].message == first[0].message  # what the loop last wrote
    assert state.group_wait("big0").message == state.explain("big0").message  # what the job's page shows
    for i in (1, 2):
        state.job_finished(f"small{i}")
    assert state.cycle(2.0) == []
    state.job_finished("small3")  # now 4 are free: big0 is examined and admitted
    out = state.cycle(2.5)
    assert [(type(d).__name__, d.job_id) for d in out] == [("Admit", "big0"), ("Wait", "big1")]


def test_the_preemption_delay_ending_wakes_the_group_to_preempt():
    state, _ = cohort_at_its_limit(delay=5.0)
    state.job_finished("small0")
    assert state.cycle(3.0) == []
    assert state.next_due == 6.0  # its delay ends at 1 + 5 s: then it may reclaim what q1 borrows
    out = state.cycle(6.0)
    assert any(isinstance(d, Preempt) for d in out) and any(isinstance(d, Admit) and d.job_id == "big0" for d in out)


class WakesAtEveryEnd(SchedulerState):
    """The behaviour before limit rooms: every end under a quota's limit re-examines every group its limit blocks."""

    def _release(self, run):
        super()._release(run)
        key_of = self._tree.keys.keys
        for a in self._tree.path[run.quota]:
            for (k, _), groups in list(self._park.rooms.get(a, {}).items()):
                if key_of[k].pool in (run.pool, ANY_POOL):
                    for group in list(groups):
                        self._wake(group)


def assert_rooms_are_full(state: SchedulerState, now: float, before_cycle: bool = False) -> int:
    """Every group waiting for room under a limit waits for room that is not there (an end that made it woke the
    group), may not preempt yet (before the cycle at ``now``: not before it, whose start wakes the groups whose delay
    ends by then), and holds nothing but its preemption delay's hold. Returns how many groups wait so."""
    tree, waiting = state._tree, set()
    for node, needs in state._park.rooms.items():
        for (k, amount), groups in needs.items():
            assert tree.u[node][k] + amount > tree.lim[node][k], (tree.ids[node], k, amount)
            waiting.update(groups)
    for group in waiting:
        assert group.parked and all(h.kind == Hold.DELAY for h in group.holds) and not group.park_caps
        head = group.head()
        ends = head.submitted_at + state._preemption_delay
        assert not state._can_preempt[group.quota] or now < ends or (before_cycle and now == ends)
    return len(waiting)


def churn(seed: int, cls: type[SchedulerState] = SchedulerState) -> tuple[list[list], int]:
    """Cohorts whose limits bind, preemption delays, requeued victims: the Waits of each cycle, and how many groups
    waited for room (checked after every end and every cycle)."""
    rng = random.Random(seed)
    specs = []
    for c in range(2):
        specs.append(quota(f"c{c}", gpu_in={"a": (6, rng.choice([6, 8, 10])), "b": (3, 4)}))
        for i in range(3):
            specs.append(quota(f"c{c}q{i}", f"c{c}", gpu_in={"a": (2, rng.choice([4, 6, 8])), "b": (1, 3)},
                               reclaim=rng.choice(["any", "lower_priority", "never"]),
                               within_quota_preemption=rng.choice(["lower_priority", "never"])))
    pools = [gpu_pool("a", 16, nodes=2), gpu_pool("b", 6, nodes=2)]
    config = SchedulerConfig(starvation_age_s=rng.choice([None, 60.0]),
                             preemption_delay_s=rng.choice([0.0, 3.0, 8.0]))
    state = cls(specs, pools, config=config)
    waits: list[list] = []
    running: list[str] = []
    victims: list = []
    jobs = {}
    seen = 0
    for step in range(60):
        now = step * 1.0
        for n in range(rng.randint(0, 5)):
            j = jobs[f"j{step}-{n}"] = job(f"j{step}-{n}", f"c{rng.randrange(2)}q{rng.randrange(3)}",
                                           gpus=rng.choice([1, 1, 2, 4]), pools=rng.choice([("a",), ("a", "b")]),
                                           priority=rng.choice([0, 100]), at=now)
            state.add_job(j)
        for v in victims:
            state.add_job(jobs[v])
        for _ in range(min(len(running), rng.randint(0, 4))):
            state.job_finished(running.pop(rng.randrange(len(running))))
            assert_rooms_are_full(state, now, before_cycle=True)
        out = state.cycle(now)
        seen += assert_rooms_are_full(state, now)
        waits.append([d for d in out if isinstance(d, Wait)])
        running += [d.job_id for d in out if isinstance(d, Admit)]
        victims = [d.victim_id for d in out if isinstance(d, Preempt)]
        running = [r for r in running if r not in victims]
    return waits, seen


@pytest.mark.parametrize("seed", range(12))
def test_groups_wait_only_for_room_that_is_not_there(seed):
    churn(seed)


def test_waiting_for_room_happens_and_saves_re_examinations():
    """Over the churn, groups wait for room, and their Waits that only restated numbers are left out."""
    seen = saved = 0
    for seed in range(12):
        waits, n = churn(seed)
        seen += n
        saved += sum(map(len, churn(seed, WakesAtEveryEnd)[0])) - sum(map(len, waits))
    assert seen > 0 and saved > 0
