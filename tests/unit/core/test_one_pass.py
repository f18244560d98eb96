"""The blocked-job path in one pass, and the wake-up frontier's inline checks, against the plain definitions they
replace: each check below runs inside a random churn (guarantee holds, ages, preemption, two pools per job) and
compares the shortcut's answer with the plain one at the moment the cycle uses it."""

import random
from bisect import bisect_right
from heapq import heappop, heappush

import pytest
from core_testkit import gpu_pool, job, quota

from allotment.core.admission import SchedulerState
from allotment.core.explain import DEVICE, HOLD, Blocker, combine
from allotment.core.model import SchedulerConfig
from allotment.core.order_keys import CLASS_SHIFT, NOT_AGED
from allotment.core.preemption import preemption_kinds
from allotment.core.queues import TOKEN_MASK, Hold
from allotment.core.usage import CAPACITY, ROOT
from allotment.core.wakeups import CURSOR_MASK, ORDER_SHIFT, TOKEN_SHIFT

_new_tuple = tuple.__new__


class Checked(SchedulerState):
    """Asserts, each time the cycle uses a shortcut, that it equals the plain definition. Counts the checks."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.checked = {"blockers": 0, "preempt": 0, "entry": 0, "park": 0, "sentence": 0, "rooms": 0}
        self.holds_seen = {"pools only": 0, "at quotas too": 0}  # what _try's inline hold test met

    def _plain_blockers(self, q, group, rec, key):
        """What each option's checks answer, one function at a time: _hold_blocking with the class from
        borrow_class_and_share (the first option's from its order key) unless it is a delay hold and first_block
        answers, first_block, then the pool's devices."""
        tree, aged = self._tree, not key & NOT_AGED
        out = []
        for opt in group.options:
            cls = key >> CLASS_SHIFT if opt is group.options[0] else tree.borrow_class_and_share(q, opt.req)[0]
            hold = self._hold_blocking(q, group, rec, opt, cls, aged) if self._holds else None
            if hold is not None and hold.kind == Hold.DELAY and tree.first_block(q, opt.req) is not None:
                hold = None  # a delay hold is the reason only where no limit or pool stops the job
            if hold is not None:
                req = dict(opt.req)
                out.append(_new_tuple(Blocker, (HOLD, hold.node, hold.key, 0, req.get(hold.key, 0), hold)))
                continue
            b = tree.first_block(q, opt.req)
            if b is not None:
                out.append(self._blocker(b, opt))
            else:
                assert not self._chooses(opt)
                out.append(self._device_blocker(opt))
        return out

    def _plain_gate(self, q, group, rec, blockers, aged):
        """_try's inline preemption gate as first written: would preemption_kinds answer for an option it looks at?
        Also checks that _preemption_may_help (the gate as a method) says the same."""
        tree = self._tree
        kinds = [preemption_kinds(tree, self._prio_by_qp, q, rec.priority, opt, (opt.pool,),
                                  rec.submitted_at if aged else None)
                 for opt, b, ever in zip(group.options, blockers, self._ever(group)) if b.kind != HOLD and ever]
        may = self._preemption_may_help(q, group, rec, blockers, aged)
        if tree.preempt_policy[q][3] or self._any_keys:
            return may
        assert may == any(k is not None for k in kinds)
        return may

    def _try_preempting(self, q, group, rec, blockers, aged, now, decisions):
        assert self._plain_gate(q, group, rec, blockers, aged)  # the gate let it plan: the plain gate agrees
        self.planned = rec
        self.checked["preempt"] += 1
        return super()._try_preempting(q, group, rec, blockers, aged, now, decisions)

    def _gate_closed(self, q, group, rec, blockers, aged, now):
        """In _block: when the gate was asked (a quota that may preempt, past the job's preemption delay) and did
        not let it plan, the plain gate says no too."""
        planned, self.planned = getattr(self, "planned", None) is rec, None
        if planned or not self._can_preempt[q] or now < rec.submitted_at + self._preemption_delay:
            return
        assert not self._plain_gate(q, group, rec, blockers, aged)
        self.checked["preempt"] += 1

    def _block(self, q, group, rec, key, blockers, aged, retry_at, note, now, decisions):
        # the one-pass blockers equal the plain checks' (_try's trials are rolled back: the state is as they saw it)
        root_sets = sum(hs is not None for hs in self._root_holds)
        if self._held_keys:
            self.holds_seen["pools only" if len(self._holds) == root_sets else "at quotas too"] += 1
        # the count _try reads instead of comparing the numbers of hold sets
        assert self._quota_hold_sets == len(self._holds) - root_sets
        plain = self._plain_blockers(q, group, rec, key)
        assert [b[:5] for b in blockers] == [b[:5] for b in plain]
        for b, p in zip(blockers, plain):
            assert b.detail is p.detail or (b.kind == DEVICE and b.detail == p.detail)
        self.checked["blockers"] += 1
        self._gate_closed(q, group, rec, blockers, aged, now)
        tree = self._tree
        # the park keys as first written: within_guarantee and fits_guarantee_alone per option
        expected = []
        if tree.preempt_policy[q][1] and any(
                tree.fits_guarantee_alone(q, o.req) and not tree.within_guarantee(q, o.req) for o in group.options):
            expected.append(("guarantee", q))
        caps, limits, needs = [], [], []
        for (kind, node, k, needed, requested, hold), o in zip(blockers, group.options):
            pool = o.pool if kind == DEVICE else tree.keys.keys[k].pool
            if node == ROOT:
                if not _left_out(self, kind, hold, o, group):
                    caps.append((pool, k, requested if kind == HOLD else needed))
            else:
                limits.append(("limit", node, pool))
                if kind != HOLD:
                    needs.append((node, k, requested))
        guarantee_hold = (self._ever(group)[0] and blockers[0].kind in (CAPACITY, DEVICE)
                          and tree.within_guarantee(q, group.options[0].req))
        emitted = len(decisions)
        super()._block(q, group, rec, key, blockers, aged, retry_at, note, now, decisions)
        # waiting for room under its limits: every option blocked by a limit, not aged, holding nothing but its
        # preemption delay's hold, not (yet) allowed to preempt
        waits_for_room = (needs and not caps and all(b.kind != HOLD for b in blockers) and not aged
                          and all(h.kind == Hold.DELAY for h in group.holds)
                          and (not self._can_preempt[q] or now < rec.submitted_at + self._preemption_delay))
        if waits_for_room:
            assert list(group.park_needs) == needs
            self.checked["rooms"] += 1
        else:
            expected += limits
            assert group.park_needs == ()
        assert list(group.park_keys) == expected and list(group.park_caps) == caps and group.park_order == key
        if len(decisions) > emitted:  # its sentences (some from the memo) as built afresh
            wait = decisions[-1]
            assert (wait.code, wait.message) == combine(tree, blockers, now, group.last_sig[-1][1])
            self.checked["sentence"] += 1
        if guarantee_hold:
            assert any(h.kind == h.GUARANTEE and h.key == blockers[0].key for h in group.holds)
        self.checked["park"] += 1

    def _push_quota(self, q, replaces=None):
        super()._push_quota(q, replaces)
        entry = self._gentry[q]  # the quota's valid entry (0: its queue is empty)
        if entry:
            token = self._gtoken[q]
            assert entry in self._gheap and (entry >> 32) & TOKEN_MASK == token
            group, rec = self._gtop_group[q], self._gtop_rec[q]
            assert entry == (self._key(q, group, rec, self._now) << 96) | (token << 32) | q
            self.checked["entry"] += 1


def _left_out(state, kind, hold, opt, group):
    """The park entry _block leaves out: another group's guarantee hold on an option's pool itself, in the first
    option, or in the first option in that pool (not the first option's pool) when the request alone exceeds the
    quota's guarantee on a key it specifies (the frontier's borrowing class there is 1 whatever the quota uses)."""
    if not (kind == HOLD and hold.kind == hold.GUARANTEE and hold.node == ROOT):
        return False
    tree, q, options = state._tree, group.quota, group.options
    if tree.keys.keys[hold.key].pool != opt.pool:
        return False
    if opt is options[0]:
        return True
    first_here = next(o for o in options if o.pool == opt.pool)
    always_borrows = any(k in tree.spec_keys[q] and r > tree.g[q][k] for k, r in opt.req)
    return opt.pool != options[0].pool and first_here is opt and always_borrows


class EveryHoldEntry(SchedulerState):
    """Parks a group blocked by another group's guarantee hold under that capacity too where _block leaves the
    entry out (_left_out: the frontier would pass over it while the hold lasts). Counts those entries."""

    added = 0

    def _block(self, q, group, rec, key, blockers, aged, retry_at, note, now, decisions):
        super()._block(q, group, rec, key, blockers, aged, retry_at, note, now, decisions)
        if not group.parked:
            return
        for opt, b in zip(group.options, blockers):
            if not _left_out(self, b.kind, b.detail, opt, group):
                continue
            entry = (opt.pool, b.key, b.requested)  # as ParkIndex.park files a capacity entry
            bucket = self._park._buckets.get(entry)
            if bucket is None:
                bucket = self._park._buckets[entry] = [[], []]
                self._park._cap.setdefault(opt.pool, {}).setdefault(b.key, {})[b.requested] = bucket
            i = bisect_right(bucket[0], group.park_order)
            bucket[0].insert(i, group.park_order)
            bucket[1].insert(i, group)
            group.park_caps = [*group.park_caps, entry]
            self.added += 1


class NewDeadlineEntries(SchedulerState):
    """Pushes a new deadline entry for every block that sets one, as first written (no entry is made valid again)."""

    def _block(self, q, group, rec, key, blockers, aged, retry_at, note, now, decisions):
        group.deadline_kept = 0
        pushed = len(self._deadlines)
        super()._block(q, group, rec, key, blockers, aged, retry_at, note, now, decisions)
        assert len(self._deadlines) == pushed + (group.deadline_token != 0)


class CountedDeadlines(SchedulerState):
    """Counts the blocks that made their deadline entry valid again."""

    reused = 0

    def _block(self, q, group, rec, key, blockers, aged, retry_at, note, now, decisions):
        pushed = len(self._deadlines)
        super()._block(q, group, rec, key, blockers, aged, retry_at, note, now, decisions)
        if group.deadline_token and len(self._deadlines) == pushed:
            self.reused += 1


class PlainFrontier(SchedulerState):
    """The wake-up frontier without its shortcuts: no memo, every held key through _held_against, skips one heap
    step at a time (pop, then push the cursor's next live entry)."""

    def _wake_next(self, best_active):
        if self._unlisted:
            self._list_dirty()
        frontier, tree, cursors = self._frontier, self._tree, self._cursors
        while frontier:
            cursor = cursors[frontier[0] & CURSOR_MASK]
            orders, groups, i, needed, key, _ = cursor
            order, group = orders[i], groups[i]
            if group.parked and group.tried != self._cycle_no:
                if needed > tree.cap[key] - tree.u[ROOT][key]:
                    heappop(frontier)
                    continue
                head = group.head()
                if not (key in self._held_keys and self._held_against(group, head, key, order)):
                    fresh = self._key(group.quota, group, head, self._now)
                    if fresh != order:
                        self._step(cursor, i)
                        self._token += 1
                        cursors.append([[fresh], [group], 0, needed, key, len(cursors)])
                        heappush(frontier, (fresh << ORDER_SHIFT) | (self._token << TOKEN_SHIFT) | (len(cursors) - 1))
                        continue
                    if best_active is not None and order >= best_active:
                        return False
                    self._step(cursor, i)
                    self._wake(group)
                    return True
            self._step(cursor, i)
        return False

    def _step(self, cursor, i):
        heappop(self._frontier)
        cursor[2] = i + 1
        self._advance(cursor)


def churn(seed: int, classes: tuple[type, ...], limits: tuple[int, int] = (6, 4)) -> list[SchedulerState]:
    """Two pools, quotas with guarantees in both, jobs that try one pool or both: guarantee holds, borrowing in the
    second pool, reclaim and within-quota preemption, ages. Every state gets the same events; their decisions must
    be equal. ``limits``: each quota's limit in the two pools (below the pools' sizes, aged jobs blocked by them hold
    capacity at their quota)."""
    rng = random.Random(seed)
    specs = [quota("cohort", gpu_in={"a": 6, "b": 4})]
    la, lb = limits
    specs += [quota(f"q{i}", "cohort", gpu_in={"a": (g, la), "b": (h, lb)}, reclaim=rng.choice(["any", "lower_priority"]),
                    within_quota_preemption=rng.choice(["lower_priority", "never"]))
              for i, (g, h) in enumerate([(2, 1), (2, 1), (1, 2), (1, 0)])]
    pools = [gpu_pool("a", 6, nodes=3), gpu_pool("b", 4, nodes=2)]
    config = SchedulerConfig(starvation_age_s=rng.choice([None, 30.0, 3600.0]),
                             preemption_delay_s=rng.choice([0.0, 0.0, 15.0]))
    states = [cls(specs, pools, config=config) for cls in classes]
    running: list[str] = []
    for step in range(40):
        now = step * 10.0
        for n in range(rng.randint(1, 6)):
            j = job(f"j{step}-{n}", f"q{rng.randrange(4)}", gpus=rng.choice([0.5, 1, 1, 2]),
                    pools=rng.choice([("a",), ("a", "b"), ("b", "a")]), priority=rng.choice([0, 100, 200]), at=now)
            for state in states:
                state.add_job(j)
        for _ in range(min(len(running), rng.randint(0, 4))):
            victim = running.pop(rng.randrange(len(running)))
            for state in states:
                state.job_finished(victim)
        out = [state.cycle(now) for state in states]
        assert all(o == out[0] for o in out[1:])
        assert all(state.next_due == states[0].next_due for state in states[1:])
        running += [d.job_id for d in out[0] if type(d).__name__ == "Admit"]
        gone = {d.victim_id for d in out[0] if type(d).__name__ == "Preempt"}
        running = [r for r in running if r not in gone]
    return states


@pytest.mark.parametrize("seed", range(8))
def test_one_pass_blockers_park_keys_preemption_gate_and_heap_entries_equal_the_plain_ones(seed):
    checked = churn(seed, (SchedulerState, Checked))[1]
    assert all(v for k, v in checked.checked.items() if k != "rooms"), checked.checked  # (rooms: below)


def test_one_pass_hold_tests_equal_the_plain_ones_with_holds_at_quotas():
    """Quota limits below the pools' sizes: aged jobs blocked by them hold capacity at their quota, so _try's inline
    test of pool holds alone is compared with the plain one in both of its cases."""
    seen = {"pools only": 0, "at quotas too": 0, "rooms": 0}
    for seed in range(6):
        checked = churn(seed, (SchedulerState, Checked), limits=(2, 2))[1]
        assert checked.checked["blockers"]
        for k, v in checked.holds_seen.items():
            seen[k] += v
        seen["rooms"] += checked.checked["rooms"]  # groups parked to wait for room under a limit
    assert all(seen.values()), seen


@pytest.mark.parametrize("seed", range(8))
def test_the_frontier_decides_as_the_plain_frontier(seed):
    churn(seed, (SchedulerState, PlainFrontier))


def test_deadline_entries_made_valid_again_change_no_decision():
    """A group blocked again with the deadline it had makes its entry valid again: the same decisions and next_due
    as pushing a new entry each time."""
    reused = 0
    for seed in range(12):
        reused += churn(seed, (CountedDeadlines, NewDeadlineEntries))[0].reused
    assert reused


def test_park_entries_left_out_under_a_guarantee_hold_change_no_decision():
    """A group blocked by another group's guarantee hold where its borrowing class cannot change is not parked under
    that capacity: the same decisions as with the entry, with the plain frontier too."""
    added = 0
    for seed in range(12):
        for limits in ((8, 8), (2, 2)):
            states = churn(seed, (SchedulerState, EveryHoldEntry, PlainFrontier), limits=limits)
            added += states[1].added
    assert added


@pytest.mark.parametrize("seed", range(6))
def test_guarantee_room_answers_within_guarantee_and_the_borrowing_class(seed):
    rng = random.Random(seed)
    specs = [quota("cohort", gpu_in={"a": 8, "b": 4}, cpu_in={"a": 16})]
    for i in range(4):
        specs.append(quota(f"q{i}", "cohort", gpu_in={"a": (rng.randint(0, 2), 8), "b": rng.choice([0, 1])},
                           cpu_in={"a": rng.randint(0, 4)} if rng.random() < 0.5 else None))
    state = SchedulerState(specs, [gpu_pool("a", 8, nodes=2, cpu_total=32), gpu_pool("b", 4)])
    tree = state._tree
    keys = [k for k in range(len(tree.keys.keys))]
    for _ in range(200):
        q = rng.randrange(1, len(tree.ids))
        req = tuple((k, rng.choice([0, 500, 1000, 3000])) for k in rng.sample(keys, rng.randint(1, 2)))
        for k in keys:  # some usage, over and under the guarantees
            tree.u[q][k] = rng.choice([0, 1000, 2000, 5000])
        room, guaranteed = tree.guarantee_room(q, req)
        fits = all(tree.u[q][k] <= r for k, r in room)
        assert (guaranteed and fits) == tree.within_guarantee(q, req)
        assert (0 if fits else 1) == tree.borrow_class_and_share(q, req)[0]
        assert guaranteed == tree.fits_guarantee_alone(q, tuple((k, 0) for k, _ in req))
