"""Scheduler state kept between cycles: compiled tree, devices, queues, running jobs, holds and parked groups.

``admission.SchedulerState`` adds the cycle on top of this; the split keeps each file readable. Nothing here is
public API except through SchedulerState (see admission.py).
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from typing import Final

from allotment.core.devices import WHOLE
from allotment.core.explain import option_checks
from allotment.core.model import (
    Pool,
    Profile,
    QueuedJob,
    SchedulerConfig,
    Snapshot,
    Wait,
    WaitCode,
)
from allotment.core.order_keys import (
    BORROWS,
    BORROWS_G,
    NOT_AGED,
    NOT_AGED_G,
    PRIO_MAX,
    QUOTA_MASK,
    SEQ_MASK,
    SEQ_SHIFT,
    SHARE_MAX,
    SHARE_SHIFT,
    SHARE_SHIFT_G,
    rank_bits,
)
from allotment.core.placement import Demand, NodePool
from allotment.core.preemption import can_preempt
from allotment.core.quantity import RESOURCES, Quantity, format_quantity
from allotment.core.queues import (
    PLACE_DEVICES,
    PLACE_NODES,
    PLACE_NONE,
    TOKEN_MASK,
    Group,
    Hold,
    HoldSet,
    Option,
    ParkIndex,
    QueuedRec,
    RunningRec,
)
from allotment.core.quota_tree import QuotaSpec
from allotment.core.resources import ANY_POOL, ResourceVector
from allotment.core.usage import ROOT, UsageTree
from allotment.core.wakeups import WakeByNeed

# Final: compiled (mypyc), a C static, where an imported name is a globals lookup on every call
heappop: Final = heapq.heappop
heappush: Final = heapq.heappush
heapreplace: Final = heapq.heapreplace

# Shapes whose group parts a state keeps for reuse (StateBase._new_group), at most.
MAX_KEPT_SHAPES = 50_000


class StateBase(WakeByNeed):
    """Everything the cycle needs to know, kept up to date event by event (see admission.SchedulerState)."""

    next_due: float | None = None  # set by cycle(): the earliest time a parked group is due (see admission's doc)

    def __init__(
        self,
        quotas: Sequence[QuotaSpec],
        pools: Sequence[Pool],
        profiles: Sequence[Profile] = (),
        config: SchedulerConfig | None = None,
    ) -> None:
        # (first: compiled, a float attribute set before any method sees self is known to be always set; otherwise
        # mypyc 1.13 fails on the cycle's store to it)
        self._now = 0.0
        self.config = config or SchedulerConfig()
        self._age = self.config.starvation_age_s
        self._preemption_delay = self.config.preemption_delay_s
        self._share_step = self.config.gpu_share_step
        if not 0 < self._share_step <= WHOLE or WHOLE % self._share_step:
            raise ValueError(f"gpu_share_step must divide {WHOLE} milli-GPU (got {self._share_step})")
        self._devices: dict[str, NodePool] = {}
        self._demand = Demand()  # GPU amounts submitted so far: what placements keep room for (placement.Demand)
        capacity: dict[tuple[str, str], int] = {}
        for pool in pools:
            if pool.name in self._devices or pool.name == ANY_POOL:
                raise ValueError(f"pool name {pool.name!r} is used twice or reserved")
            dp = self._device_pool(pool)
            dp.demand = self._demand
            self._devices[pool.name] = dp
            capacity[(pool.name, "gpu")] = dp.total_capacity
            capacity[(pool.name, "cpu")] = dp.total_cpu if dp.tracked else pool.cpu.raw
            capacity[(pool.name, "memory")] = dp.total_memory if dp.tracked else pool.memory.raw
        self._tree = tree = UsageTree(quotas, capacity)
        self._pool_order = tuple(p.name for p in pools)
        self._pool_keys = {p: {r: tree.keys.get((p, r)) for r in RESOURCES} for p in self._pool_order}
        self._any_keys = {r: tree.keys.get((ANY_POOL, r)) for r in RESOURCES} if tree.uses_any_pool else {}
        self._profiles = {p.name: p for p in profiles}
        self._profile_rank = {p.name: {name: i for i, name in enumerate(p.profile_order)} for p in pools}
        # queued side
        self._queued: dict[str, QueuedRec] = {}
        self._invalid: dict[str, Wait] = {}
        self._invalid_pending: list[Wait] = []
        self._groups: dict[tuple, Group] = {}
        self._group_parts: dict[tuple, tuple] = {}  # shape -> what its groups are built from (_new_group)
        n = len(tree.ids)
        self._qheap: list[list[int]] = [[] for _ in range(n)]  # per quota: group heads (head.gkey << 64 | token)
        self._qgroups: dict[int, Group] = {}  # token of a quota-heap entry -> its group (until the entry is popped)
        self._gtoken = [0] * n  # token of each quota's valid entry in the global heap
        self._gentry = [0] * n  # and that entry (0: none): the cycle tells a valid entry by one comparison
        self._gtop_group: list[Group | None] = [None] * n  # the top group of that entry
        self._gtop_rec: list[QueuedRec | None] = [None] * n  # and its head job
        self._gheap: list[int] = []  # order key << 96 | token << 32 | quota
        self._token = 0
        self._park = ParkIndex()
        self._holds: dict[tuple[int, int], HoldSet] = {}
        # The holds on the pools themselves, (ROOT, key), by key (None: none): a list, read without hashing a key
        self._root_holds: list[HoldSet | None] = [None] * len(tree.keys)
        self._quota_hold_sets = 0  # the entries of _holds that are not on a pool itself (on a quota)
        self._held_keys: dict[int, int] = {}  # key -> number of holds on it (quick "nothing held here" test)
        self._deadlines: list = []  # (time, token, group)
        self._dirty: dict[str, None] = {}  # pools (or "*") where capacity came back since the groups there were tried
        self._unlisted: dict[str, None] = {}  # dirty pools whose parked groups are not in the frontier yet
        # The best parked group per (pool, key, need) bucket, as integers that heap steps compare in one operation;
        # each names its bucket's cursor [orders, groups, index, need, key, number] in _cursors (wakeups.py).
        self._frontier: list[int] = []
        self._cursors: list[list] = []
        self._wake_memo: tuple[object, Group, int, int, tuple[int, ...], int, list] | None = None  # the frontier's last "not before the queued candidates" (wakeups.py)
        self._holds_version = 0  # counts changes to the holds
        self._cycle_no = 0
        self._cycle_token0 = 0  # token counter at the start of the current cycle
        self._leaf = [not c for c in tree.children]
        # running side
        self._running: dict[str, RunningRec] = {}
        self._run_by_qp: dict[tuple[int, str], dict[str, RunningRec]] = {}
        self._quotas_in_pool: dict[str, dict[int, int]] = {}
        self._prio_by_qp: dict[tuple[int, str], dict[int, int]] = {}  # (quota, pool) -> priority -> running jobs
        self._quantities: dict[int, Quantity] = {}  # device share amounts for Admit decisions
        self._sentences: dict[tuple, str] = {}  # Wait sentences by their numbers (explain.combine)
        self._messages: dict[tuple, tuple[str, str]] = {}  # whole Waits (code, sentence) by their numbers (_block)
        self._public_fractions: dict[tuple, tuple] = {}  # see SchedulerState._public_fraction
        # Preempted jobs: job id -> (times preempted, run time lost to that, time before which it may not borrow
        # again: its requeue backoff), forgotten when the job ends or is cancelled (admission.py, rule 4). A state
        # rebuilt from a snapshot is given it back (remember_preemptions) before its jobs are added.
        self._preempted: dict[str, tuple[int, float, float]] = {}
        # Whether a quota may preempt at all (its spec never changes within a state): asked for every blocked job.
        self._can_preempt = [False] + [can_preempt(tree, q) for q in range(1, n)]

    @classmethod
    def from_snapshot(cls, snapshot: Snapshot, config: SchedulerConfig | None = None) -> StateBase:
        state = cls(snapshot.quotas, snapshot.pools, snapshot.profiles, config)
        for run in snapshot.running:
            state.add_running(run)
        for job in sorted(snapshot.queued, key=lambda j: j.seq):
            state.add_job(job)
        return state

    # ------------------------------------------------------------------------------------------------------------
    # Inspection
    @property
    def queued_count(self) -> int:
        return len(self._queued) + len(self._invalid)

    def running_ids(self) -> list[str]:
        return list(self._running)

    def queued_ids(self) -> list[str]:
        return list(self._queued) + list(self._invalid)

    def quota_usage(self, quota_id: str) -> ResourceVector:
        q = self._tree.index[quota_id]
        return ResourceVector(
            {k: Quantity(v) for k, v in zip(self._tree.keys.keys, self._tree.u[q]) if v and k.pool != ANY_POOL}
        )

    def device_free(self, pool: str) -> dict[str, Quantity]:
        return {d: Quantity(f) for d, f in self._devices[pool].free.items()}

    # ------------------------------------------------------------------------------------------------------------
    # Events
    def _compile(self, pool: str, raw: dict[str, int]) -> tuple[tuple[int, int], ...]:
        keys = self._pool_keys[pool]
        req = [(keys[r], a) for r, a in raw.items() if a > 0]
        if self._any_keys:
            req += [(self._any_keys[r], a) for r, a in raw.items() if a > 0]
        return tuple(req)

    def _invalid_job(self, job: QueuedJob, code: str, message: str) -> None:
        wait = Wait(job.id, code, message)
        self._invalid[job.id] = wait
        self._invalid_pending.append(wait)

    def add_job(self, job: QueuedJob) -> None:
        if job.id in self._queued or job.id in self._running or job.id in self._invalid:
            raise ValueError(f"job {job.id} is already known to the scheduler")
        tree = self._tree
        q = tree.index.get(job.quota)
        if q is None:
            return self._invalid_job(job, WaitCode.UNKNOWN_QUOTA, f"quota {job.quota} does not exist")
        spec = tree.specs[q]
        assert spec is not None
        allowed = spec.allowed_priority_classes
        if allowed is not None and job.priority_class not in allowed:
            return self._invalid_job(
                job, WaitCode.PRIORITY_CLASS_NOT_ALLOWED,
                f"quota {job.quota} does not allow priority class {job.priority_class} "
                f"(allowed: {', '.join(sorted(allowed)) or 'none'})",
            )
        profile = None
        if job.profile is not None:
            profile = self._profiles.get(job.profile)
            if profile is None:
                return self._invalid_job(job, WaitCode.UNKNOWN_PROFILE, f"profile {job.profile} does not exist")
            requests, pools = dict(profile.requests), tuple(profile.pools)
            best_fit = job.best_fit or profile.best_fit
        else:
            requests, pools = dict(job.requests), tuple(job.pools) or self._pool_order
            best_fit = job.best_fit
        # Plain loops, not comprehensions: each comprehension is a frame of its own on CPython 3.11, and this runs
        # for every submission.
        devices = self._devices
        for p in pools:
            if p not in devices:
                unknown = [p for p in pools if p not in devices]
                return self._invalid_job(job, WaitCode.UNKNOWN_POOL, f"pool {', '.join(unknown)} does not exist")
        if not pools:
            return self._invalid_job(job, WaitCode.UNKNOWN_POOL, "no pool to run in")
        raw = {}
        for r, q_ in requests.items():
            a = q_.raw
            if a:
                if r not in RESOURCES:
                    return self._invalid_job(job, WaitCode.INVALID_REQUEST, f"unknown resource {r}")
                raw[r] = a
        gpu = raw.get("gpu", 0)
        step = self._share_step
        if (gpu < WHOLE and gpu % step) or (gpu > WHOLE and gpu % WHOLE):
            return self._invalid_job(
                job, WaitCode.INVALID_REQUEST,
                f"{format_quantity(Quantity(gpu), 'gpu')} gpu is not a valid request: shares of a GPU go in steps of "
                f"{format_quantity(Quantity(step), 'gpu')} (this cluster's GPU share step) below one GPU, above that "
                f"only whole GPUs",
            )
        count = job.nodes
        if not isinstance(count, int) or count < 1:
            return self._invalid_job(job, WaitCode.INVALID_REQUEST, f"nodes must be a whole number of at least 1 "
                                                                    f"(got {count!r})")
        self._demand.add(gpu, raw.get("cpu", 0))
        shape: tuple = (q, pools, tuple(sorted(raw.items())), profile.name if profile else None, count, best_fit)
        preempted = self._preempted.get(job.id)
        borrow_after = preempted[2] if preempted is not None and preempted[2] > self._now else 0.0
        if borrow_after:
            shape = (*shape, ("borrow_after", job.id))
        group = self._groups.get(shape)
        if group is None:
            group = self._new_group(shape, job, q, raw, pools, profile, requests, count, gpu, best_fit, borrow_after)
        self._token += 1
        priority, seq = job.priority, job.seq
        # order_keys.job_bits(priority, seq), inlined (tests/unit/core/test_hot_path.py compares the two)
        prio = (1 << 31) - priority
        if prio < 0:
            prio = 0
        elif prio > PRIO_MAX:
            prio = PRIO_MAX
        rec = QueuedRec(job.id, priority, seq, job.submitted_at, job.priority_class,
                        group.rank_bits | (prio << SEQ_SHIFT) | (seq & SEQ_MASK) | NOT_AGED, self._token)
        rec.group = group
        group.add(rec)
        self._queued[job.id] = rec
        if group.head() is rec:
            self._head_changed(group)

    def _new_group(self, shape: tuple, job: QueuedJob, q: int, raw: dict[str, int], pools: tuple[str, ...],
                   profile: Profile | None, requests: dict, count: int, gpu: int, best_fit: bool,
                   borrow_after: float) -> Group:
        """A group for a shape that has no queued job. Its options, ranks and order terms depend only on the shape
        and on the state's quotas, pools and profiles, which never change within a state, so they are built once
        per shape and reused when a quota's queue empties and refills with the same shapes."""
        base = shape[:-1] if borrow_after else shape
        parts = self._group_parts.get(base)
        if parts is None:
            if len(self._group_parts) >= MAX_KEPT_SHAPES:
                self._group_parts.clear()  # a long-lived state meets many one-off shapes: keep memory bounded
            tree = self._tree
            options = []
            total = {r: a * count for r, a in raw.items()} if count > 1 else raw
            for p in pools:
                req = self._compile(p, total)
                dp = self._devices[p]
                if dp.tracked or (count > 1 and gpu):
                    mode = PLACE_NODES
                else:
                    mode = PLACE_DEVICES if gpu else PLACE_NONE
                room, guaranteed = tree.guarantee_room(q, req)
                plan = tree.plan(q, req)
                options.append(Option(p, req, gpu, plan, (q, p),
                                      tuple((a, k) for a in tree.path_root[q] for k, _ in req),
                                      self._run_by_qp.setdefault((q, p), {}), self._prio_by_qp.setdefault((q, p), {}),
                                      self._quotas_in_pool.setdefault(p, {}), raw.get("cpu", 0),
                                      raw.get("memory", 0), count, mode, alone=tree.fits_guarantee_alone(q, req),
                                      room=room, guaranteed=guaranteed, checks=option_checks(plan)))
            pool_rank = self._profile_rank[pools[0]].get(profile.name, len(self._profile_rank[pools[0]])) if profile else 0
            policy_rank = 0
            if profile is not None and profile.policy_order:
                order = list(profile.policy_order)
                policy_rank = order.index(job.quota) if job.quota in order else len(order)
            spec_keys = tree.spec_keys[q]
            guarantee = tree.g[q]
            terms = tuple((k, r - guarantee[k]) for k, r in options[0].req if k in spec_keys)
            parts = self._group_parts[base] = (options, pool_rank, policy_rank, rank_bits(pool_rank, policy_rank),
                                               terms, tuple(k for k, _ in terms))
        options, pool_rank, policy_rank, bits, terms, term_keys = parts
        group = Group(shape, q, options, profile.name if profile else None, requests, pool_rank, policy_rank, bits,
                      terms, term_keys)
        group.best_fit = best_fit and len(options) > 1
        group.borrow_after = borrow_after
        self._groups[shape] = group
        return group

    def remove_job(self, job_id: str) -> bool:
        if job_id in self._invalid:
            del self._invalid[job_id]
            return True
        if job_id in self._running:
            return self.job_finished(job_id)
        rec = self._queued.pop(job_id, None)
        if rec is None:
            return False
        self._preempted.pop(job_id, None)
        group = rec.group
        assert group is not None
        was_head = group.head() is rec
        rec.alive = False
        group.size -= 1
        if group.size == 0:
            self._drop_group(group)
        elif was_head:
            self._head_changed(group)
        return True

    def preemption_history(self) -> dict[str, tuple[int, float, float]]:
        """What the state remembers of preempted jobs (times, run time lost, may borrow after), to carry it into a
        state rebuilt for a new configuration."""
        return dict(self._preempted)

    def remember_preemptions(self, history: dict[str, tuple[int, float, float]]) -> None:
        """Give a new state the preemption history of its jobs; call before adding them (a queued job's backoff is
        read as it is added)."""
        self._preempted.update(history)

    def job_finished(self, job_id: str) -> bool:
        self._preempted.pop(job_id, None)
        run = self._running.get(job_id)
        if run is None:
            return False
        self._release(run)
        return True

    # ------------------------------------------------------------------------------------------------------------
    # Queue plumbing
    def _next_token(self) -> int:
        self._token += 1
        return self._token

    def _head_changed(self, group: Group) -> None:
        if group.parked:
            self._wake(group)  # a new head may be more urgent (priority, age): let it be examined
        else:
            self._push_group(group)
            self._push_quota(group.quota)

    def _push_group(self, group: Group) -> None:
        head = group.head()
        if head is None or group.parked:
            group.qtoken = 0
            return
        self._token += 1
        token = group.qtoken = self._token
        self._qgroups[token] = group
        heappush(self._qheap[group.quota], (head.gkey << 64) | token)

    def _quota_top(self, q: int) -> tuple[Group, QueuedRec] | None:
        """The best (group, head job) of quota q's queue; drops stale entries (see _push_quota, which inlines it)."""
        qh, qgroups = self._qheap[q], self._qgroups
        while qh:
            token = qh[0] & TOKEN_MASK
            group = qgroups[token]
            if token == group.qtoken and not group.parked:
                head = group.head()
                if head is not None:
                    return group, head
            heappop(qh)
            del qgroups[token]
        return None

    def _key(self, q: int, group: Group, rec: QueuedRec, now: float) -> int:
        """The candidate's order key (smaller first): exactly order_key(cls, aged, pool rank, policy rank, share,
        priority, seq) with cls and share from UsageTree.borrow_class_and_share on the group's first option, but
        with the constant fields precomputed (it runs for every candidate). tests/unit/core compare the two."""
        tree = self._tree
        uq, inv = tree.u[q], tree.inv_cap
        share = -1.0
        for k, d in group.terms:  # d: requested - guarantee
            x = uq[k] + d
            if x > 0:
                s = x * inv[k]
                if s > share:  # noqa: PLR1730 - hot loop: on CPython a comparison is ~5x cheaper than max()
                    share = s
        age = self._age
        key = rec.low  # rank and job fields, "not aged" set
        if age is not None and not now - rec.submitted_at < age:
            key ^= NOT_AGED
        if share < 0:
            return key  # within guarantee: class 0, share 0
        if share > 0:
            share *= tree.inv_weight[q]
            key |= (SHARE_MAX if share >= 1048576.0 else int(share * 4294967296.0)) << SHARE_SHIFT
        return key | BORROWS

    def _push_quota(self, q: int, replaces: int | None = None) -> None:
        """(Re-)queue quota q's best group head in the global heap. ``replaces``: the quota's entry the cycle just
        took, still on top of the heap if nothing was pushed since: it is then replaced in one heap step."""
        qh, qgroups = self._qheap[q], self._qgroups
        while qh:
            token = qh[0] & TOKEN_MASK
            group = qgroups[token]
            if token == group.qtoken and not group.parked:
                heap = group.heap  # group.head(), with its common case (the first entry is alive) inlined
                head = group.recs[heap[0]] if heap else None
                if head is not None and not head.alive:
                    head = group.head()
                if head is not None:
                    break
            heappop(qh)
            del qgroups[token]
        else:
            self._gentry[q] = 0
            return
        self._token += 1
        token = self._gtoken[q] = self._token
        # The entry stands for the quota's top (group, head job): every change to that queue pushes a new entry, so a
        # valid token means the top is still current (the cycle re-checks the job is alive as a safety net).
        self._gtop_group[q] = group
        self._gtop_rec[q] = head
        # The entry (self._key(q, group, head, now) << 96) | (token << 32) | q, built from pre-shifted parts
        # (_key, inline; tests/unit/core/test_hot_path.py compares the two)
        tree = self._tree
        uq, inv = tree.u[q], tree.inv_cap
        share = -1.0
        for k, d in group.terms:  # d: requested - guarantee
            x = uq[k] + d
            if x > 0:
                s = x * inv[k]
                if s > share:  # noqa: PLR1730 - hot loop
                    share = s
        entry = head.low96 | (token << 32) | q
        age = self._age
        if age is not None and not self._now - head.submitted_at < age:
            entry ^= NOT_AGED_G
        if share >= 0:
            if share > 0:
                share *= tree.inv_weight[q]
                entry |= (SHARE_MAX if share >= 1048576.0 else int(share * 4294967296.0)) << SHARE_SHIFT_G
            entry |= BORROWS_G
        self._gentry[q] = entry
        gheap = self._gheap
        if replaces is not None and gheap and gheap[0] == replaces:
            heapreplace(gheap, entry)
        else:
            heappush(gheap, entry)

    def _idle_cycle(self) -> list:
        """A cycle with no job queued (a third of the cycles of a trace replay): what the full cycle would do then,
        without its steps. Every heap entry and deadline left is stale (their groups are gone), and every pool is
        clean (no group is parked)."""
        gheap = self._gheap
        if gheap:
            gentry = self._gentry
            for entry in gheap:
                gentry[entry & QUOTA_MASK] = 0
            gheap.clear()
        for _, token, group in self._deadlines:
            group.deadline_kept = 0
        self._deadlines.clear()
        self.next_due = None
        self._end_wakes(complete=True)
        return []

    def _drop_group(self, group: Group) -> None:
        self._groups.pop(group.shape, None)
        if group.parked:
            self._park.unpark(group)
        self._drop_holds(group)
        group.qtoken = 0
        group.deadline_token = 0
        # Its remaining records are dead jobs that point back at it: without them the group and its jobs are freed
        # by reference counting, not left to the cyclic collector.
        group.recs = {}
        group.heap = []

    def _wake(self, group: Group) -> None:
        if not group.parked:
            return
        self._park.unpark(group)
        group.deadline_token = 0
        if group.holds:
            # A hold for its preemption delay stands until the delay ends or the job starts: dropped and put again at
            # every wake, it would wake every group it holds back, to be held back again.
            keep = None
            for h in group.holds:
                if h.kind == Hold.DELAY and h.until > self._now:
                    keep = h
            self._drop_holds(group, keep)
        self._push_group(group)
        self._push_quota(group.quota)

    def _wake_limit(self, key: tuple) -> None:
        for group in self._park.limit_groups(key):
            self._wake(group)

    def _drop_holds(self, group: Group, keep: Hold | None = None) -> None:
        """Drop the group's holds (but ``keep``), waking the groups each of them held back."""
        if not group.holds:
            return
        holds, group.holds = group.holds, []
        if keep is not None:
            holds = [h for h in holds if h is not keep]
            group.holds.append(keep)
            if not holds:
                return
        self._holds_version += 1
        for h in holds:
            self._held_keys[h.key] -= 1
            if not self._held_keys[h.key]:
                del self._held_keys[h.key]
            hs = self._holds.get((h.node, h.key))
            if hs is not None:
                hs.remove(h)
                if not hs:
                    del self._holds[(h.node, h.key)]
                    if h.node == ROOT:
                        self._root_holds[h.key] = None
                    else:
                        self._quota_hold_sets -= 1
            for blocked in h.blocked:  # they waited for this hold: look again (their reason changes at least)
                self._wake(blocked)

    def _add_hold(self, hold: Hold) -> None:
        self._holds_version += 1
        hold.group.holds.append(hold)
        hs = self._holds.get((hold.node, hold.key))
        if hs is None:
            hs = self._holds[(hold.node, hold.key)] = HoldSet()
            if hold.node == ROOT:
                self._root_holds[hold.key] = hs
            else:
                self._quota_hold_sets += 1
        hs.add(hold)
        self._held_keys[hold.key] = self._held_keys.get(hold.key, 0) + 1
