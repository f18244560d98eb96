"""Choosing preemption victims: who may be preempted, in which order, and never more than needed.

Who (for a job J of quota Q that does not fit, in pool P):
- within quota: Q.within_quota_preemption == lower_priority -> Q's own running jobs with lower priority than J;
- child level: Q.child_preemption -> running jobs of Q's descendants (any priority; PAI semantics);
- reclaim: Q.reclaim != never and J fits inside Q's own guarantee -> jobs of quotas outside Q's subtree and path that
  borrow (lower priority only with reclaim == lower_priority). A victim is only taken if removing it keeps every quota
  from its own up to (not including) the common ancestor with Q at or above its guarantee: preemption never pushes a
  quota below its guarantee.
- never a job that has run less than its quota's min_runtime_s.

Order (ONE ordering for every kind): jobs of quotas that borrow on the contested keys first, then lowest priority,
then most recently started, then job id (for determinism).

Minimality: victims are taken in that order until J fits; then each victim except the last is given back in reverse
order if J still fits without it (Kueue's algorithm). Everything is simulated on the real usage and device state and
rolled back before returning, so the caller applies the result or nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from allotment.core.devices import DevicePool
from allotment.core.model import PreemptReason
from allotment.core.quota_tree import Reclaim, WithinQuota
from allotment.core.queues import Option, RunningRec
from allotment.core.usage import ROOT, UsageTree


class PreemptionPlan:
    __slots__ = ("victims", "retry_at", "note")

    def __init__(self, victims: list[tuple[RunningRec, str]] | None, retry_at: float | None, note: str) -> None:
        self.victims = victims  # None: J cannot be made to fit
        self.retry_at = retry_at  # earliest time a young candidate passes its minimum runtime
        self.note = note  # why preemption did not help (for the Wait message)


_NOTHING = PreemptionPlan(None, None, "")


def can_preempt(tree: UsageTree, q: int) -> bool:
    spec = tree.specs[q]
    assert spec is not None
    return (
        spec.child_preemption
        or spec.reclaim != Reclaim.NEVER
        or spec.within_quota_preemption != WithinQuota.NEVER
    )


def plan_preemption(
    tree: UsageTree,
    devices: Mapping[str, DevicePool],
    running_by_quota_pool: Mapping[tuple[int, str], Mapping[str, RunningRec]],
    quotas_in_pool: Mapping[str, Mapping[int, int]],
    q: int,
    priority: int,
    option: Option,
    pools: Iterable[str],
    fits: Callable[[], bool],
    now: float,
    shortfall: tuple[int, int, int] | None = None,
) -> PreemptionPlan:
    """``shortfall`` = (quota or ROOT, key, amount): what blocks the job. If all candidates together cannot free that
    much there, the plan fails before simulating anything (the common case in a saturated cluster)."""
    spec = tree.specs[q]
    assert spec is not None
    within = spec.within_quota_preemption == WithinQuota.LOWER_PRIORITY
    if within and not spec.child_preemption and spec.reclaim == Reclaim.NEVER:
        # Fast exit for the common case: only the quota's own lower-priority jobs could make room.
        for pool in pools:
            own = running_by_quota_pool.get((q, pool))
            if own and any(run.priority < priority for run in own.values()):
                break
        else:
            return _NOTHING
    keys = option.keys
    reclaim = spec.reclaim != Reclaim.NEVER and tree.within_guarantee(q, option.req)
    if not within and not reclaim and not spec.child_preemption:
        return _NOTHING
    reclaim_lower_only = spec.reclaim == Reclaim.LOWER_PRIORITY
    ancestors_q = tree.ancestors[q]
    # Which quotas' jobs may be victims, decided per quota first (cheap) so that jobs are only listed where useful.
    sources: list[tuple[int, str, str]] = []
    for pool in pools:
        in_pool = quotas_in_pool.get(pool)
        if not in_pool:
            continue
        if within and q in in_pool:
            sources.append((q, pool, PreemptReason.WITHIN_QUOTA))
        if spec.child_preemption:
            below = tree.descendants(q)
            if len(below) < len(in_pool):
                sources.extend((v, pool, PreemptReason.CHILD_PREEMPTION) for v in below if v in in_pool)
            else:
                sources.extend((v, pool, PreemptReason.CHILD_PREEMPTION) for v in in_pool if q in tree.ancestors[v] and v != q)
        if reclaim:
            u, g = tree.u, tree.g
            for v in in_pool:
                uv, gv = u[v], g[v]
                for k in keys:  # cheap first filter: v itself must use more than its guarantee on a contested key
                    if uv[k] > gv[k]:
                        break
                else:
                    continue
                if v == q or v in ancestors_q or q in tree.ancestors[v]:
                    continue
                if tree.borrows_up_to(v, keys, tree.lca_below(q, v)):
                    sources.append((v, pool, PreemptReason.RECLAIM))
    candidates: list[tuple[tuple, RunningRec, str]] = []
    retry_at: float | None = None
    young = 0
    key_tuple = tuple(keys)
    for v, pool, reason in sources:
        v_spec = tree.specs[v]
        assert v_spec is not None
        min_runtime = v_spec.min_runtime_s
        borrowing = tree.is_borrowing(v, key_tuple)
        for run in running_by_quota_pool.get((v, pool), {}).values():
            if reason == PreemptReason.WITHIN_QUOTA and run.priority >= priority:
                continue
            if reason == PreemptReason.RECLAIM and reclaim_lower_only and run.priority >= priority:
                continue
            if not any(k in keys for k, _ in run.req):
                continue  # frees nothing this job needs
            if now - run.started_at < min_runtime:
                young += 1
                ready = run.started_at + min_runtime
                retry_at = ready if retry_at is None else min(retry_at, ready)
                continue
            order = (0 if borrowing else 1, run.priority, -run.started_at, run.id)
            candidates.append((order, run, reason))
    note = f"{young} running jobs could be preempted once they reach their minimum runtime" if young else ""
    if not candidates:
        return PreemptionPlan(None, retry_at, note)
    if shortfall is not None:
        node, key, amount = shortfall
        freeable = 0
        for _, run, _ in candidates:
            if node == ROOT or node in tree.ancestors[run.quota]:
                for k, x in run.req:
                    if k == key:
                        freeable += x
        if freeable < amount:
            return PreemptionPlan(None, retry_at, note or "preempting every eligible job would not free enough")
    candidates.sort(key=lambda c: c[0])

    def remove(run: RunningRec) -> None:
        tree.apply(run.quota, run.req, -1)
        if run.shares:
            devices[run.pool].release(run.shares)

    def restore(run: RunningRec) -> None:
        tree.apply(run.quota, run.req, 1)
        if run.shares:
            devices[run.pool].take(run.shares)

    chosen: list[tuple[RunningRec, str]] = []
    fitted = False
    for _, run, reason in candidates:
        if reason == PreemptReason.RECLAIM:
            # Only the contested keys matter: the reclaimer takes nothing else from the victim's quota.
            contested = tuple((k, x) for k, x in run.req if k in keys)
            stop = tree.lca_below(q, run.quota)
            if not tree.removable_without_dropping_below_guarantee(run.quota, contested, stop):
                continue
        remove(run)
        chosen.append((run, reason))
        if fits():
            fitted = True
            break
    if not fitted:
        for run, _ in reversed(chosen):
            restore(run)
        return PreemptionPlan(None, retry_at, note or "preempting every eligible job would not free enough")
    # Give back every victim that turns out not to be needed (all but the last one taken).
    for i in range(len(chosen) - 2, -1, -1):
        run = chosen[i][0]
        restore(run)
        if fits():
            del chosen[i]
        else:
            remove(run)
    for run, _ in reversed(chosen):
        restore(run)
    return PreemptionPlan(chosen, retry_at, note)
