"""The running jobs' indexes, and what a job's end frees: its usage, its devices, and the parked groups that waited
for them. Part of state.StateBase (split out to keep each file readable).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from allotment.core.inventory import InventoryEvents
from allotment.core.resources import ANY_POOL

if TYPE_CHECKING:
    from allotment.core.queues import Group, ParkIndex, RunningRec


class RunningIndex(InventoryEvents):
    # Kept by state.StateBase; declared for the checker and the compiler (admission.SchedulerState is one chain of
    # classes: InventoryEvents, RunningIndex, WakeByNeed, StateBase, Reclaiming, PoolChoice, Blocking, QueueInspection).
    _park: ParkIndex
    _run_by_qp: dict[tuple[int, str], dict[str, RunningRec]]
    _quotas_in_pool: dict[str, dict[int, int]]
    _prio_by_qp: dict[tuple[int, str], dict[int, int]]
    _qheap: list[list[int]]

    # Defined further up the chain (reclaiming.Reclaiming, state.StateBase).
    def _wake_reclaimers(self, q: int) -> None:
        raise NotImplementedError

    def _wake_limit(self, key: tuple) -> None:
        raise NotImplementedError

    def _push_quota(self, q: int, replaces: int | None = None) -> None:
        raise NotImplementedError

    def _wake(self, group: Group) -> None:
        raise NotImplementedError

    def _index_running(self, run: RunningRec) -> None:
        self._running[run.id] = run
        qp = run.qp
        by_qp = self._run_by_qp.get(qp)
        if by_qp is None:
            by_qp = self._run_by_qp[qp] = {}
        by_qp[run.id] = run
        per_pool = self._quotas_in_pool.get(run.pool)
        if per_pool is None:
            per_pool = self._quotas_in_pool[run.pool] = {}
        per_pool[run.quota] = per_pool.get(run.quota, 0) + 1
        prios = self._prio_by_qp.get(qp)
        if prios is None:
            prios = self._prio_by_qp[qp] = {}
        prios[run.priority] = prios.get(run.priority, 0) + 1

    def _release(self, run: RunningRec) -> None:
        del self._running[run.id]
        qp = run.qp
        del self._run_by_qp[qp][run.id]  # the per-(quota, pool) dicts stay, empty: options hold them (Option.runs)
        per_pool = self._quotas_in_pool[run.pool]
        per_pool[run.quota] -= 1
        if not per_pool[run.quota]:
            del per_pool[run.quota]
        prios = self._prio_by_qp[qp]
        prios[run.priority] -= 1
        if not prios[run.priority]:
            del prios[run.priority]
        self._tree.release_plan(run.quota, run.plan)
        if run.nodes:
            self._devices[run.pool].release_job(run.shares, run.nodes, run.ncpu, run.nmem)
        elif run.shares:
            self._devices[run.pool].release(run.shares)
        # Capacity came back: groups waiting for it are woken by need at the next cycle; groups held by a limit on
        # this path are woken now, those waiting for room under a limit once it has it, and quotas whose usage
        # dropped are re-ranked (their keys improved).
        pool = run.pool
        self._mark_dirty(pool)
        tree = self._tree
        path = tree.path[run.quota]
        limits = self._park.limits
        rooms = self._park.rooms
        for a in path:
            if ("guarantee", a) in limits:
                self._wake_reclaimers(a)
            key = ("limit", a, pool)
            if key in limits:  # (_wake_limit finds nothing to wake otherwise: most releases)
                self._wake_limit(key)
            if self._any_keys:
                self._wake_limit(("limit", a, ANY_POOL))
            waiting = rooms.get(a)
            if waiting is not None:
                ua, la = tree.u[a], tree.lim[a]
                for (k, amount), groups in list(waiting.items()):
                    if ua[k] + amount <= la[k]:
                        for group in list(groups):
                            self._wake(group)
        for a in path:
            if self._qheap[a]:
                self._push_quota(a)
