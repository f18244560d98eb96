"""The scheduler cycle: which queued jobs start, where, and whom they preempt. Pure: no I/O, no clock, no globals.

Public API (import from ``allotment.core.admission``)
======================================================

Inputs (``allotment.core.model``; amounts are ``Quantity``, times float seconds on the caller's clock):
  ``QuotaSpec`` / ``QuotaLimits`` (quota_tree.py), ``Pool(name, devices, cpu, memory, profile_order)``,
  ``Device(id, free, capacity, node)``, ``Profile(name, requests, pools, policy_order)``,
  ``QueuedJob(id, quota, priority, seq, submitted_at, requests, pools, profile, priority_class)``,
  ``RunningJob(id, quota, priority, started_at, pool, requests, devices)``,
  ``Snapshot(quotas, pools, profiles, running, queued)``, ``SchedulerConfig(starvation_age_s, max_admissions_per_cycle)``.
Outputs (decisions are values, in the order they were taken):
  ``Admit(job_id, quota, pool, requests, devices, preempted)``: start the job on ``devices`` after stopping
  ``preempted``; ``Preempt(victim_id, for_job_id, reason, message)``; ``Wait(job_id, code, message)`` with code from
  ``WaitCode`` and a sentence with the numbers.

``schedule(snapshot, now, config=None) -> list[Decision]``
    One cycle from scratch (tests, tools). Equivalent to ``SchedulerState.from_snapshot(...).cycle(now)``.

``SchedulerState(quotas, pools, profiles=(), config=None)``: incremental state kept by the scheduler loop.
    ``from_snapshot(snapshot, config=None)``   build from a snapshot (running jobs first, then queued ones).
    ``add_job(job: QueuedJob)``                 a submission (invalid jobs yield a Wait in the next cycle).
    ``remove_job(job_id) -> bool``              cancel a queued job, or forget a running one (same as job_finished).
    ``add_running(job: RunningJob, take_devices=False)``  a job already holding resources (snapshot Device.free
                                                already excludes it unless take_devices=True).
    ``job_finished(job_id) -> bool``            a running job ended (succeeded, failed, cancelled, stopped): frees it.
    ``update_pool(pool: Pool)``                 devices or capacity of a known pool changed.
    ``cycle(now) -> list[Decision]``            run one cycle. Decisions are already applied to the state: admitted jobs
                                                are running, victims are gone (the loop may re-queue them with add_job).
                                                If the loop fails to persist a cycle, drop the state and rebuild it.
    ``explain(job_id) -> Wait | None``          the current reason of any queued job (also jobs behind a blocked head).
    ``queue_group(job_id)``, ``group_members(key)``  a queued job's group and its current Wait (O(1)), the group's
                                                job ids: the loop shows a blocked head's reason on every member.
    ``quota_usage(quota_id) -> ResourceVector``, ``running_ids()``, ``queued_ids()``, ``queued_count``,
    ``device_free(pool) -> dict[device id, Quantity]``.
Quota-tree changes (specs, pools added or removed, profiles) are applied by building a new state.

Rules, in the order the cycle applies them
==========================================
1. Limits: a job is admitted only if no limit on its quota's path to the root is exceeded in any pool, and what it
   borrows is physically free and not held back by other quotas' lending limits (usage.py).
2. Ordering of candidates across quotas: (a) jobs that keep their quota within its guarantee before jobs that would
   borrow ("guarantee first"); (b) aged jobs (waiting >= starvation_age_s) first; (c) the pool's execution order of
   profiles, (d) the profile's order of policies (quotas); (e) dominant-resource share of what the quota would borrow
   divided by its weight (fair share of idle capacity); (f) priority; (g) submission order. Within one quota: higher
   priority first, then submission order; a blocked job does not stop smaller jobs behind it (best effort) unless it
   is aged, in which case it reserves what it waits for.
3. Profiles try their pools in order: first every pool without preemption, then every pool with preemption.
4. Preemption (preemption.py): within quota (lower priority), child level (parent quota with child_preemption),
   reclaim (quota below its guarantee takes back lent capacity); one victim ordering (borrowers, lowest priority,
   most recently started); never more victims than needed; never a job younger than its quota's min_runtime_s;
   never pushes another quota below its guarantee.
5. A blocked job whose quota is below its guarantee holds the pool's capacity against borrowers (GUARANTEE_PENDING);
   an aged blocked job holds it against less urgent jobs (RESERVED_FOR_STARVING_JOB).
6. GPUs: fractional requests (steps of 0.1) share one device, best fit; whole requests take whole free devices.

Cost: each candidate examined walks one quota path over the job's few keys plus O(log) heap operations; blocked
groups of identical jobs are parked until an event can unblock them. Nothing in a cycle scans the queued jobs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from heapq import heappop, heappush, heapreplace

from allotment.core.devices import WHOLE, DevicePool
from allotment.core.explain import DEVICE, HOLD, Blocker, combine, preempt_message
from allotment.core.model import (
    Admit,
    Decision,
    Pool,
    Preempt,
    Profile,
    QueuedJob,
    RunningJob,
    SchedulerConfig,
    Snapshot,
    Wait,
    WaitCode,
)
from allotment.core.preemption import can_preempt, plan_preemption
from allotment.core.quantity import RESOURCES, Quantity, format_quantity
from allotment.core.queues import Group, Hold, Option, ParkIndex, QueuedRec, RunningRec
from allotment.core.quota_tree import QuotaSpec
from allotment.core.resources import ANY_POOL, ResourceVector
from allotment.core.usage import CAPACITY, LIMIT, ROOT, UsageTree

__all__ = ["SchedulerState", "schedule"]


class SchedulerState:
    def __init__(
        self,
        quotas: Sequence[QuotaSpec],
        pools: Sequence[Pool],
        profiles: Sequence[Profile] = (),
        config: SchedulerConfig | None = None,
    ) -> None:
        self.config = config or SchedulerConfig()
        self._age = self.config.starvation_age_s
        self._devices: dict[str, DevicePool] = {}
        capacity: dict[tuple[str, str], int] = {}
        for pool in pools:
            if pool.name in self._devices or pool.name == ANY_POOL:
                raise ValueError(f"pool name {pool.name!r} is used twice or reserved")
            dp = self._device_pool(pool)
            self._devices[pool.name] = dp
            capacity[(pool.name, "gpu")] = dp.total_capacity
            capacity[(pool.name, "cpu")] = pool.cpu.raw
            capacity[(pool.name, "memory")] = pool.memory.raw
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
        n = len(tree.ids)
        self._qheap: list[list] = [[] for _ in range(n)]  # per quota: (-priority, seq, token, group) of group heads
        self._gtoken = [0] * n  # token of each quota's valid entry in the global heap
        self._gheap: list = []  # (order key, token, quota)
        self._token = 0
        self._park = ParkIndex()
        self._holds: dict[tuple[int, int], list[Hold]] = {}
        self._deadlines: list = []  # (time, token, group)
        # running side
        self._running: dict[str, RunningRec] = {}
        self._run_by_qp: dict[tuple[int, str], dict[str, RunningRec]] = {}
        self._quotas_in_pool: dict[str, dict[int, int]] = {}
        self._now = 0.0

    @classmethod
    def from_snapshot(cls, snapshot: Snapshot, config: SchedulerConfig | None = None) -> SchedulerState:
        state = cls(snapshot.quotas, snapshot.pools, snapshot.profiles, config)
        for run in snapshot.running:
            state.add_running(run)
        for job in sorted(snapshot.queued, key=lambda j: j.seq):
            state.add_job(job)
        return state

    @staticmethod
    def _device_pool(pool: Pool) -> DevicePool:
        return DevicePool(pool.name, ((d.id, d.free.raw, d.capacity.raw, d.node) for d in pool.devices))

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
        else:
            requests, pools = dict(job.requests), tuple(job.pools) or self._pool_order
        unknown = [p for p in pools if p not in self._devices]
        if unknown or not pools:
            return self._invalid_job(
                job, WaitCode.UNKNOWN_POOL, f"pool {', '.join(unknown)} does not exist" if unknown else "no pool to run in"
            )
        raw = {r: q_.raw for r, q_ in requests.items() if q_.raw}
        bad = [r for r in raw if r not in RESOURCES]
        gpu = raw.get("gpu", 0)
        if bad:
            return self._invalid_job(job, WaitCode.INVALID_REQUEST, f"unknown resource {bad[0]}")
        if (gpu < WHOLE and gpu % 100) or (gpu > WHOLE and gpu % WHOLE):
            return self._invalid_job(
                job, WaitCode.INVALID_REQUEST,
                f"{format_quantity(Quantity(gpu), 'gpu')} gpu is not a valid request: fractions go in steps of 0.1 "
                f"below one GPU, above that only whole GPUs",
            )
        shape = (q, pools, tuple(sorted(raw.items())), profile.name if profile else None)
        group = self._groups.get(shape)
        if group is None:
            options = [Option(p, self._compile(p, raw), gpu) for p in pools]
            pool_rank = self._profile_rank[pools[0]].get(profile.name, len(self._profile_rank[pools[0]])) if profile else 0
            policy_rank = 0
            if profile is not None and profile.policy_order:
                order = list(profile.policy_order)
                policy_rank = order.index(job.quota) if job.quota in order else len(order)
            group = Group(shape, q, options, profile.name if profile else None, requests, pool_rank, policy_rank)
            self._groups[shape] = group
        rec = QueuedRec(job.id, job.priority, job.seq, job.submitted_at, job.priority_class)
        rec.group = group
        self._token += 1
        rec.token = self._token
        heappush(group.heap, (-job.priority, job.seq, rec.token, rec))
        group.size += 1
        self._queued[job.id] = rec
        if group.head() is rec:
            self._head_changed(group)

    def remove_job(self, job_id: str) -> bool:
        if job_id in self._invalid:
            del self._invalid[job_id]
            return True
        if job_id in self._running:
            return self.job_finished(job_id)
        rec = self._queued.pop(job_id, None)
        if rec is None:
            return False
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

    def add_running(self, job: RunningJob, take_devices: bool = False) -> None:
        if job.id in self._running or job.id in self._queued:
            raise ValueError(f"job {job.id} is already known to the scheduler")
        q = self._tree.index.get(job.quota)
        if q is None:
            raise ValueError(f"running job {job.id}: quota {job.quota} does not exist")
        if job.pool not in self._devices:
            raise ValueError(f"running job {job.id}: pool {job.pool} does not exist")
        raw = {r: a.raw for r, a in job.requests.items() if a.raw}
        shares = tuple((d, a.raw) for d, a in job.devices)
        if take_devices and shares:
            self._devices[job.pool].take(shares)
        run = RunningRec(job.id, q, job.priority, job.started_at, job.pool, self._compile(job.pool, raw), shares,
                         dict(job.requests))
        self._tree.apply(q, run.req, 1)
        self._index_running(run)

    def job_finished(self, job_id: str) -> bool:
        run = self._running.get(job_id)
        if run is None:
            return False
        self._release(run)
        return True

    def update_pool(self, pool: Pool) -> None:
        if pool.name not in self._devices:
            raise ValueError(f"pool {pool.name} is not known to this state; build a new state to add pools")
        dp = self._device_pool(pool)
        self._devices[pool.name] = dp
        tree, keys = self._tree, self._pool_keys[pool.name]
        tree.set_capacity(keys["gpu"], dp.total_capacity)
        tree.set_capacity(keys["cpu"], pool.cpu.raw)
        tree.set_capacity(keys["memory"], pool.memory.raw)
        for r, ki in self._any_keys.items():
            tree.set_capacity(ki, sum(tree.cap[self._pool_keys[p][r]] for p in self._pool_order))
        self._wake_key(("cap", pool.name))
        self._wake_key(("cap", ANY_POOL))

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
        group.qtoken = self._next_token()
        heappush(self._qheap[group.quota], (-head.priority, head.seq, group.qtoken, group))

    def _quota_top(self, q: int) -> tuple[Group, QueuedRec] | None:
        qh = self._qheap[q]
        while qh:
            group = qh[0][3]
            if qh[0][2] == group.qtoken and not group.parked:
                head = group.head()
                if head is not None:
                    return group, head
            heappop(qh)
        return None

    def _key(self, q: int, group: Group, rec: QueuedRec, now: float) -> tuple:
        cls, share = self._tree.borrow_class_and_share(q, group.options[0].req)
        aged = 0 if self._age is not None and now - rec.submitted_at >= self._age else 1
        return (cls, aged, group.pool_rank, group.policy_rank, share, -rec.priority, rec.seq)

    def _push_quota(self, q: int) -> None:
        top = self._quota_top(q)
        if top is None:
            self._gtoken[q] = 0
            return
        token = self._gtoken[q] = self._next_token()
        heappush(self._gheap, (self._key(q, top[0], top[1], self._now), token, q))

    def _drop_group(self, group: Group) -> None:
        self._groups.pop(group.shape, None)
        if group.parked:
            self._park.unpark(group)
        self._drop_holds(group)
        group.qtoken = 0
        group.deadline_token = 0

    def _wake(self, group: Group) -> None:
        if not group.parked:
            return
        self._park.unpark(group)
        group.deadline_token = 0
        self._drop_holds(group)
        self._push_group(group)
        self._push_quota(group.quota)

    def _wake_key(self, key: tuple) -> None:
        for group in self._park.take(key):
            self._wake(group)

    def _park_key(self, b: Blocker, opt: Option) -> tuple:
        if b.kind == DEVICE:
            return ("cap", opt.pool)
        pool = self._tree.keys.keys[b.key].pool
        return ("cap", pool) if b.node == ROOT else ("limit", b.node, pool)

    def _drop_holds(self, group: Group) -> None:
        if not group.holds:
            return
        holds, group.holds = group.holds, []
        for h in holds:
            lst = self._holds.get((h.node, h.key))
            if lst is not None:
                lst.remove(h)
                if not lst:
                    del self._holds[(h.node, h.key)]
            pool = self._tree.keys.keys[h.key].pool
            self._wake_key(("cap", pool) if h.node == ROOT else ("limit", h.node, pool))

    def _add_hold(self, hold: Hold) -> None:
        hold.group.holds.append(hold)
        self._holds.setdefault((hold.node, hold.key), []).append(hold)

    # -- running jobs -------------------------------------------------------------------------------------------
    def _index_running(self, run: RunningRec) -> None:
        self._running[run.id] = run
        self._run_by_qp.setdefault((run.quota, run.pool), {})[run.id] = run
        per_pool = self._quotas_in_pool.setdefault(run.pool, {})
        per_pool[run.quota] = per_pool.get(run.quota, 0) + 1

    def _release(self, run: RunningRec) -> None:
        del self._running[run.id]
        by_qp = self._run_by_qp[(run.quota, run.pool)]
        del by_qp[run.id]
        if not by_qp:
            del self._run_by_qp[(run.quota, run.pool)]
        per_pool = self._quotas_in_pool[run.pool]
        per_pool[run.quota] -= 1
        if not per_pool[run.quota]:
            del per_pool[run.quota]
        self._tree.apply(run.quota, run.req, -1)
        if run.shares:
            self._devices[run.pool].release(run.shares)
        # Capacity came back: wake what waits for it, and re-rank quotas whose usage dropped (their keys improved).
        self._wake_key(("cap", run.pool))
        path = self._tree.path[run.quota]
        for a in path:
            self._wake_key(("limit", a, run.pool))
        if self._any_keys:
            self._wake_key(("cap", ANY_POOL))
            for a in path:
                self._wake_key(("limit", a, ANY_POOL))
        for a in path:
            if self._qheap[a]:
                self._push_quota(a)

    # ------------------------------------------------------------------------------------------------------------
    # The cycle
    def cycle(self, now: float) -> list[Decision]:
        self._now = now
        decisions: list[Decision] = []
        if self._invalid_pending:
            decisions.extend(self._invalid_pending)
            self._invalid_pending = []
        deadlines = self._deadlines
        while deadlines and deadlines[0][0] <= now:
            _, token, group = heappop(deadlines)
            if token == group.deadline_token:
                self._wake(group)
        limit = self.config.max_admissions_per_cycle
        admitted = 0
        gheap, gtoken = self._gheap, self._gtoken
        while gheap:
            key, token, q = gheap[0]
            if token != gtoken[q]:
                heappop(gheap)
                continue
            top = self._quota_top(q)
            if top is None:
                heappop(gheap)
                gtoken[q] = 0
                continue
            group, rec = top
            current = self._key(q, group, rec, now)
            if current > key:  # the quota's standing got worse since it was queued: re-rank it
                gtoken[q] = self._next_token()
                heapreplace(gheap, (current, gtoken[q], q))
                continue
            if limit is not None and admitted >= limit:
                break
            heappop(gheap)
            gtoken[q] = 0
            if self._try(q, group, rec, current, now, decisions):
                admitted += 1
            self._push_quota(q)
        return decisions

    def _option_fit(self, q: int, group: Group, rec: QueuedRec, opt: Option, cls: int, aged: bool):
        """(None, device shares) when the option fits now, else (Blocker, None)."""
        tree = self._tree
        b = tree.first_block(q, opt.req)
        if b is not None:
            return Blocker(b.kind, b.node, b.key, b.needed, _amount(opt.req, b.key)), None
        if self._holds:
            hold = self._hold_blocking(q, group, rec, opt, cls, aged)
            if hold is not None:
                return Blocker(HOLD, hold.node, hold.key, 0, _amount(opt.req, hold.key), hold), None
        if opt.gpu:
            dp = self._devices[opt.pool]
            shares = dp.choose(opt.gpu)
            if shares is None:
                gk = self._pool_keys[opt.pool]["gpu"]
                return Blocker(DEVICE, ROOT, gk, opt.gpu, opt.gpu, dp.shortfall(opt.gpu)), None
            return None, shares
        return None, ()

    def _hold_blocking(self, q: int, group: Group, rec: QueuedRec, opt: Option, cls: int, aged: bool) -> Hold | None:
        holds = self._holds
        for a in self._tree.path[q] + (ROOT,):
            for k, _ in opt.req:
                lst = holds.get((a, k))
                if lst:
                    for h in lst:
                        if h.blocks(group, rec, cls, aged):
                            return h
        return None

    def _try(self, q: int, group: Group, rec: QueuedRec, key: tuple, now: float, decisions: list[Decision]) -> bool:
        tree = self._tree
        aged = key[1] == 0
        blockers: list[Blocker] = []
        classes: list[int] = []
        for i, opt in enumerate(group.options):
            cls = key[0] if i == 0 else tree.borrow_class_and_share(q, opt.req)[0]
            blocker, shares = self._option_fit(q, group, rec, opt, cls, aged)
            if blocker is None:
                self._admit(q, group, rec, opt, shares, (), now, decisions)
                return True
            blockers.append(blocker)
            classes.append(cls)
        retry_at: float | None = None
        note = ""
        if can_preempt(tree, q):
            pools = self._pool_order if self._any_keys else None
            for opt, blocker, cls in zip(group.options, blockers, classes):
                if blocker.kind == HOLD:
                    continue
                dp = self._devices[opt.pool]

                def fits(opt: Option = opt, dp: DevicePool = dp, cls: int = cls) -> bool:
                    return (
                        tree.first_block(q, opt.req) is None
                        and (not opt.gpu or dp.choose(opt.gpu) is not None)
                        and (not self._holds or self._hold_blocking(q, group, rec, opt, cls, aged) is None)
                    )

                plan = plan_preemption(
                    tree, self._devices, self._run_by_qp, self._quotas_in_pool, q, rec.priority, opt,
                    pools or (opt.pool,), fits, now,
                )
                if plan.victims:
                    for run, reason in plan.victims:
                        message = preempt_message(tree, run.id, run.quota, run.priority, reason, rec.id, q, rec.priority)
                        decisions.append(Preempt(run.id, rec.id, reason, message))
                        self._release(run)
                    shares = dp.choose(opt.gpu) if opt.gpu else ()
                    assert shares is not None
                    self._admit(q, group, rec, opt, shares, tuple(r.id for r, _ in plan.victims), now, decisions)
                    return True
                if plan.retry_at is not None:
                    retry_at = plan.retry_at if retry_at is None else min(retry_at, plan.retry_at)
                note = note or plan.note
        self._block(q, group, rec, blockers, aged, retry_at, note, now, decisions)
        return False

    def _admit(self, q: int, group: Group, rec: QueuedRec, opt: Option, shares, victims: tuple[str, ...],
               now: float, decisions: list[Decision]) -> None:
        if shares:
            self._devices[opt.pool].take(shares)
        self._tree.apply(q, opt.req, 1)
        self._index_running(RunningRec(rec.id, q, rec.priority, now, opt.pool, opt.req, shares, group.requests))
        del self._queued[rec.id]
        rec.alive = False
        group.size -= 1
        group.last_wait = None
        decisions.append(
            Admit(rec.id, self._tree.ids[q], opt.pool, group.requests,
                  tuple((d, Quantity(a)) for d, a in shares), victims)
        )
        self._drop_holds(group)
        if group.size == 0:
            self._drop_group(group)
        else:
            self._push_group(group)

    def _block(self, q: int, group: Group, rec: QueuedRec, blockers: list[Blocker], aged: bool,
               retry_at: float | None, note: str, now: float, decisions: list[Decision]) -> None:
        tree = self._tree
        first, opt = blockers[0], group.options[0]
        # A job that cannot run even on an idle cluster must not hold capacity: it would block others forever.
        ever = [tree.fits_when_idle(q, o.req) and self._devices[o.pool].could_ever_fit(o.gpu) for o in group.options]
        if not any(ever):
            note = (note + "; " if note else "") + "it can never run with the current quotas and pools"
        code, message = combine(tree, blockers, now, note)
        wait = Wait(rec.id, code, message)
        if wait != group.last_wait:
            decisions.append(wait)
            group.last_wait = wait
        self._drop_holds(group)
        if ever[0] and first.kind in (CAPACITY, DEVICE) and tree.within_guarantee(q, opt.req):
            self._add_hold(Hold(ROOT, first.key, Hold.GUARANTEE, group, rec, 0))
        if ever[0] and aged and first.kind in (LIMIT, CAPACITY, DEVICE):
            cls = tree.borrow_class_and_share(q, opt.req)[0]
            self._add_hold(Hold(first.node, first.key, Hold.STARVATION, group, rec, cls))
        keys = list(dict.fromkeys(self._park_key(b, o) for b, o in zip(blockers, group.options)))
        self._park.park(group, keys)
        group.qtoken = 0
        if self._age is not None and not aged:
            ages_at = rec.submitted_at + self._age
            retry_at = ages_at if retry_at is None else min(retry_at, ages_at)
        if retry_at is not None:
            group.deadline_token = self._next_token()
            heappush(self._deadlines, (retry_at, group.deadline_token, group))

    # ------------------------------------------------------------------------------------------------------------
    def queue_group(self, job_id: str) -> tuple[tuple, Wait | None] | None:
        """(key of a queued job's group, the group's current Wait or None while it is not blocked); O(1).
        Jobs of one group (same quota and shape) wait for the same reason, so the loop can show the head's reason on
        every member without explaining each one."""
        rec = self._queued.get(job_id)
        if rec is None or rec.group is None:
            return None
        group = rec.group
        return group.shape, (group.last_wait if group.parked else None)

    def group_members(self, key: tuple) -> list[str]:
        """Ids of the queued jobs of the group ``key`` (from queue_group); O(group size)."""
        group = self._groups.get(key)
        return [e[3].id for e in group.heap if e[3].alive] if group is not None else []

    def explain(self, job_id: str) -> Wait | None:
        """Why a queued job waits (None when it is not queued)."""
        if job_id in self._invalid:
            return self._invalid[job_id]
        rec = self._queued.get(job_id)
        if rec is None:
            return None
        group = rec.group
        assert group is not None
        head = group.head()
        quota = self._tree.ids[group.quota]
        if head is rec:
            if group.last_wait is not None and group.parked:
                return group.last_wait
            return Wait(job_id, "pending", f"quota {quota}: next in line, waiting for the next scheduling cycle")
        mine = (-rec.priority, rec.seq, rec.token)
        ahead = sum(1 for e in group.heap if e[3].alive and e[:3] < mine)
        assert head is not None
        why = group.last_wait.message if group.last_wait is not None and group.parked else "it is next in line"
        return Wait(
            job_id, WaitCode.QUEUED_BEHIND,
            f"quota {quota}: queued behind {ahead} identical job(s) with higher priority or earlier submission; "
            f"the first, job {head.id}, waits: {why}",
        )


def _amount(req: Iterable[tuple[int, int]], key: int) -> int:
    for k, a in req:
        if k == key:
            return a
    return 0


def schedule(snapshot: Snapshot, now: float, config: SchedulerConfig | None = None) -> list[Decision]:
    """Run one scheduling cycle on a snapshot and return its decisions (see the module docstring)."""
    return SchedulerState.from_snapshot(snapshot, config).cycle(now)
