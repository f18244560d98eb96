"""Scheduler state kept between cycles: compiled tree, devices, queues, running jobs, holds and parked groups.

``admission.SchedulerState`` adds the cycle on top of this; the split keeps each file readable. Nothing here is
public API except through SchedulerState (see admission.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from heapq import heappop, heappush

from allotment.core.devices import WHOLE, DevicePool
from allotment.core.model import Pool, Profile, QueuedJob, RunningJob, SchedulerConfig, Snapshot, Wait, WaitCode
from allotment.core.quantity import RESOURCES, Quantity, format_quantity
from allotment.core.queues import Group, Hold, Option, ParkIndex, QueuedRec, RunningRec
from allotment.core.quota_tree import QuotaSpec
from allotment.core.resources import ANY_POOL, ResourceVector
from allotment.core.usage import ROOT, UsageTree


def _by_order(item: tuple[Group, tuple[tuple, int, int]]) -> tuple:
    return item[1][0]


class StateBase:
    """Everything the cycle needs to know, kept up to date event by event (see admission.SchedulerState)."""

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
        self._dirty: dict[str, None] = {}  # pools (or "*") where capacity came back since the groups there were tried
        self._wake_plans: dict[str, list] = {}  # pool -> [cycle number, parked groups in order, cursor]
        self._cycle_no = 0
        self._cycle_token0 = 0  # token counter at the start of the current cycle
        self._leaf = [not c for c in tree.children]
        # running side
        self._running: dict[str, RunningRec] = {}
        self._run_by_qp: dict[tuple[int, str], dict[str, RunningRec]] = {}
        self._quotas_in_pool: dict[str, dict[int, int]] = {}
        self._now = 0.0

    @classmethod
    def from_snapshot(cls, snapshot: Snapshot, config: SchedulerConfig | None = None) -> StateBase:
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
        for group in self._groups.values():
            group.ever = None  # "could it ever fit" depends on capacity
        self._mark_dirty(pool.name)

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

    def _wake_limit(self, key: tuple) -> None:
        for group in self._park.limit_groups(key):
            self._wake(group)

    def _mark_dirty(self, pool: str) -> None:
        """Capacity came back in ``pool``: its parked groups are worth another look (re-sorted at the next pass)."""
        self._dirty[pool] = None
        self._wake_plans.pop(pool, None)
        if self._any_keys:
            self._dirty[ANY_POOL] = None
            self._wake_plans.pop(ANY_POOL, None)

    def _wake_by_need(self) -> bool:
        """Wake capacity-parked groups of dirty pools, best order key first, until the free capacity of the key each
        waits on is spoken for; the next call continues where this one stopped. Groups that need more than is free,
        or were already tried in this cycle, are passed over. Returns True if it woke any; a pool where nothing
        could be woken is clean again, so a full pool costs nothing until capacity returns.

        Each dirty pool's parked groups are sorted once per cycle (or again when more capacity came back), so a cycle
        costs O(g log g) per pool with g parked groups there, however many passes it takes."""
        if not self._dirty:
            return False
        tree = self._tree
        cap, occupied = tree.cap, tree.eu[ROOT]
        cycle_no = self._cycle_no
        woke = False
        for pool in list(self._dirty):
            plan = self._wake_plans.get(pool)
            if plan is None or plan[0] != cycle_no:
                parked = self._park.cap_groups(pool)
                plan = [cycle_no, sorted(parked.items(), key=_by_order), 0]
                self._wake_plans[pool] = plan
            entries, i = plan[1], plan[2]
            spoken: dict[int, int] = {}
            woken: list[Group] = []
            while i < len(entries):
                group, (_, key, needed) = entries[i]
                if group.tried == cycle_no or not group.parked:
                    i += 1
                    continue
                free = cap[key] - occupied[key]
                if needed > free:
                    i += 1  # cannot fit now; capacity only shrinks during a cycle unless something is released
                    continue
                if needed > free - spoken.get(key, 0):
                    break  # the rest of this capacity is spoken for by groups woken in this pass
                spoken[key] = spoken.get(key, 0) + needed
                woken.append(group)
                i += 1
            plan[2] = i
            for group in woken:
                self._wake(group)
            if woken:
                woke = True
            else:
                del self._dirty[pool]
                del self._wake_plans[pool]
        return woke

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
            if h.node == ROOT:
                self._mark_dirty(pool)
            else:
                self._wake_limit(("limit", h.node, pool))

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
        # Capacity came back: groups waiting for it are woken by need at the next cycle; groups held by a limit on
        # this path are woken now (few), and quotas whose usage dropped are re-ranked (their keys improved).
        self._mark_dirty(run.pool)
        path = self._tree.path[run.quota]
        for a in path:
            self._wake_limit(("limit", a, run.pool))
            if self._any_keys:
                self._wake_limit(("limit", a, ANY_POOL))
        for a in path:
            if self._qheap[a]:
                self._push_quota(a)
