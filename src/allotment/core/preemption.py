"""Choosing preemption victims: who may be preempted, in which order, and never more than needed.

Who (for a job J of quota Q that does not fit, in pool P):
- within quota: Q.within_quota_preemption == lower_priority -> Q's own running jobs with lower priority than J;
- child level: Q.child_preemption -> running jobs of Q's descendants (any priority; PAI semantics);
- reclaim: Q.reclaim != never and J fits inside Q's own guarantee -> jobs of quotas outside Q's subtree and path that
  borrow (lower priority only with reclaim == lower_priority). If J fits the guarantee only once Q's own lower-priority
  jobs are gone (and Q preempts within itself), Q reclaims too, on condition that the plan leaves Q within its
  guarantee: it then preempts its own lower-priority jobs as well (Kueue: reclaimWithinCohort together with
  withinClusterQueue LowerPriority). Without that, a quota running one small job could never get its guarantee back
  for a job as large as the guarantee. A victim is only taken if removing it keeps every quota
  from its own up to (not including) the common ancestor with Q at or above its guarantee: preemption never pushes a
  quota below its guarantee.
- never a job that has run less than its quota's min_runtime_s.

Order (ONE ordering for every kind): jobs of quotas that borrow on the contested keys first, then lowest priority,
then least work lost by stopping it (most recently started), then job id (for determinism). A job preempted
MAX_PREEMPTIONS times is never a victim again; with the requeue backoff (admission.py, rule 4) that bounds how often
one job is preempted, so the order itself only minimises the work each preemption throws away.
An aged job that fits its quota's guarantee alone also takes back what its quota's own later jobs took while it
waited (they overtook it), on condition that the quota ends within its guarantee.

Minimality: victims are taken in that order until J fits; then each victim except the last is given back in reverse
order if J still fits without it (Kueue's algorithm). Everything is simulated on the real usage and device state and
rolled back before returning, so the caller applies the result or nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from operator import attrgetter
from typing import Final

from allotment.core.devices import DevicePool
from allotment.core.model import PreemptReason
from allotment.core.queues import PLACE_NODES, Option, RunningRec
from allotment.core.quota_tree import Reclaim, WithinQuota
from allotment.core.usage import ROOT, UsageTree


class PreemptionPlan:
    __slots__ = ("note", "retry_at", "victims")

    def __init__(self, victims: list[tuple[RunningRec, str]] | None, retry_at: float | None, note: str) -> None:
        self.victims = victims  # None: J cannot be made to fit
        self.retry_at = retry_at  # earliest time a young candidate passes its minimum runtime
        self.note = note  # why preemption did not help (for the Wait message)


_NOTHING = PreemptionPlan(None, None, "")
_WITHIN: Final = PreemptReason.WITHIN_QUOTA
_RECLAIM: Final = PreemptReason.RECLAIM
_NOT_ENOUGH: Final = "preempting every eligible job would not free enough"


_victim_order = attrgetter("vorder")
# A job preempted this many times is never preempted again: it runs to its end (rule 4 of admission.py). Together
# with the requeue backoff (REQUEUE_BACKOFF_S), this bounds the work one job loses to repeated preemption.
MAX_PREEMPTIONS = 5


def _devices_could_fit(dp: DevicePool, amount: int, candidates: list[RunningRec], pool: str) -> bool:
    """Would the GPU shape fit if every candidate in this pool were gone? (whole jobs need completely free devices)
    The candidates' shares are added up device by device until they free enough: often the first few suffice."""
    if amount < 1000:
        if dp.could_fit_after(amount, {}):
            return True  # fits already: nothing to add up
    elif dp.whole_count >= amount // 1000:
        return True
    free, cap = dp.free, dp.cap
    freed: dict[str, int] = {}
    if amount < 1000:  # one device with room for the share
        for run in candidates:
            if run.pool == pool:
                for dev, x in run.shares:
                    freed[dev] = total = freed.get(dev, 0) + x
                    if free[dev] + total >= amount:
                        return True
        return False
    need = amount // 1000
    whole = dp.whole_count
    for run in candidates:
        if run.pool == pool:
            for dev, x in run.shares:
                got = freed.get(dev, 0)
                freed[dev] = got + x
                before = free[dev] + got
                if before < 1000 <= before + x and cap[dev] == 1000:  # this device becomes completely free
                    whole += 1
                    if whole >= need:
                        return True
    return False


def _own_victims_suffice(tree: UsageTree, q: int, option: Option, others: list[RunningRec]) -> bool:
    """Reclaiming together with q's own jobs needs q back within its guarantee: can its own candidates (among
    ``others``: q is within its guarantee, so never a borrower) free enough for that on every key it specifies?"""
    spec, uq, gq = tree.spec_keys[q], tree.u[q], tree.g[q]
    for k, r in option.req:
        if k in spec:
            excess = uq[k] + r - gq[k]
            if excess > 0:
                for run in others:
                    if run.quota == q:
                        for k2, x in run.req:
                            if k2 == k:
                                excess -= x
                if excess > 0:
                    return False
    return True


def can_preempt(tree: UsageTree, q: int) -> bool:
    spec = tree.specs[q]
    assert spec is not None
    return (
        spec.child_preemption
        or spec.reclaim != Reclaim.NEVER
        or spec.within_quota_preemption != WithinQuota.NEVER
    )


def preemption_kinds(tree: UsageTree, priorities_by_quota_pool: Mapping[tuple[int, str], Mapping[int, int]], q: int,
                     priority: int, option: Option, pools: Sequence[str],
                     aged_since: float | None = None) -> tuple[bool, bool, bool, bool, float | None] | None:
    """Which kinds of preemption could help a job of quota ``q`` here: (within quota, reclaim, child level, reclaim
    only with q's own jobs preempted too, the submission time of an aged job whose overtakers may go), or None when
    none can (the common case in a busy cluster, decided without listing any job). ``aged_since``: the job is aged
    and was submitted then."""
    # The quota's policies, read from the tree's per-quota flags (enum comparisons on the spec cost more than the
    # rest of this check, and it runs for every blocked job of a quota that may preempt).
    within, reclaims, _, child_preemption = tree.preempt_policy[q]
    if within:  # only worth it if the quota runs lower-priority jobs where this job could go
        if len(pools) == 1 and pools[0] == option.pool:
            # the option holds its (quota, pool)'s priority counts (Option.prios): no lookup by a built key
            own = option.prios
            within = bool(own) and min(own) < priority
        else:
            for pool in pools:
                prios = priorities_by_quota_pool.get((q, pool))
                if prios and min(prios) < priority:
                    break
            else:
                within = False
    reclaim = after_own = False
    overtaken = None
    if reclaims and option.alone:  # the request fits q's guarantee alone (tree.fits_guarantee_alone, kept)
        # and with what q uses now? (tree.within_guarantee, given that)
        spec, uq, gq = tree.spec_keys[q], tree.u[q], tree.g[q]
        reclaim = True
        for k, r in option.req:
            if k in spec and uq[k] + r > gq[k]:
                reclaim = False
                break
        if not reclaim:
            if aged_since is not None:
                # An aged job that fits q's guarantee alone takes back what q's own jobs that started after its
                # submission took (they overtook it; Kueue: withinClusterQueue LowerOrNewerEqualPriority).
                overtaken = aged_since
                reclaim = after_own = True
            elif within:
                # The job fits q's guarantee once q's own lower-priority jobs are gone (Kueue: reclaimWithinCohort with
                # withinClusterQueue LowerPriority): reclaim, on condition that q ends up within its guarantee.
                reclaim = after_own = True
    if not within and not reclaim and not child_preemption:
        return None
    return within, reclaim, child_preemption, after_own, overtaken


def plan_preemption(
    tree: UsageTree,
    devices: Mapping[str, DevicePool],
    running_by_quota_pool: Mapping[tuple[int, str], Mapping[str, RunningRec]],
    quotas_in_pool: Mapping[str, Mapping[int, int]],
    priorities_by_quota_pool: Mapping[tuple[int, str], Mapping[int, int]],
    q: int,
    priority: int,
    option: Option,
    pools: Sequence[str],
    fits: Callable[[], bool],
    now: float,
    shortfall: tuple[int, int, int] | None = None,
    kinds: tuple[bool, bool, bool, bool, float | None] | None = None,
    lost: Mapping[str, tuple[int, float, float]] | None = None,
) -> PreemptionPlan:
    """``shortfall`` = (quota or ROOT, key, amount): what blocks the job. If all candidates together cannot free that
    much there, the plan fails before simulating anything (the common case in a saturated cluster). ``kinds``:
    preemption_kinds() for these arguments when the caller has it already. ``lost``: job id -> (times preempted, run
    time lost to those preemptions, ...) (a job preempted MAX_PREEMPTIONS times is no candidate)."""
    if kinds is None:
        kinds = preemption_kinds(tree, priorities_by_quota_pool, q, priority, option, pools)
        if kinds is None:
            return _NOTHING
    within, reclaim, child_preemption, after_own, overtaken = kinds
    if after_own:  # reclaiming is only justified with q back within its guarantee: own victims make the difference
        plain_fits = fits

        def fits() -> bool:
            return plain_fits() and tree.within_guarantee(q, option.req)
    reclaim_lower_only = tree.preempt_policy[q][2]
    keys = option.keys
    ancestors_q = tree.ancestors[q]
    # Which quotas' jobs may be victims, decided per quota first (cheap) so that jobs are only listed where useful.
    sources: list[tuple[int, str, str, int]] = []  # (quota, pool, reason, lowest common ancestor with q)
    for pool in pools:
        in_pool = quotas_in_pool.get(pool)
        if not in_pool:
            continue
        if (within or overtaken is not None) and q in in_pool:
            sources.append((q, pool, PreemptReason.WITHIN_QUOTA, q))
        if child_preemption:
            below = tree.descendants(q)
            if len(below) < len(in_pool):
                sources.extend((v, pool, PreemptReason.CHILD_PREEMPTION, q) for v in below if v in in_pool)
            else:
                sources.extend((v, pool, PreemptReason.CHILD_PREEMPTION, q)
                               for v in in_pool if q in tree.ancestors[v] and v != q)
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
                stop = tree.lca_below(q, v)
                if tree.borrows_up_to(v, keys, stop):
                    sources.append((v, pool, PreemptReason.RECLAIM, stop))
    # Victim order: jobs of quotas that borrow on the contested keys first, then (priority, -started_at, id). The two
    # classes are listed apart and each is sorted on a per-job key built once, so listing allocates nothing per job.
    borrowers: list[RunningRec] = []
    others: list[RunningRec] = []
    why: dict[int, tuple[str, int]] = {}  # victim quota -> (reason, lowest common ancestor with q)
    retry_at: float | None = None
    young = 0
    key_tuple = tuple(keys)
    disjoint = keys.isdisjoint
    min_runtimes = tree.min_runtime
    for v, pool, reason, stop in sources:
        runs = running_by_quota_pool.get((v, pool))
        if not runs:
            continue
        min_runtime = min_runtimes[v]
        out = borrowers if tree.is_borrowing(v, key_tuple) else others
        why[v] = (reason, stop)
        # Within quota, and reclaim limited to lower priority, only take jobs below the preemptor's priority.
        lower_only = reason == _WITHIN or (reason == _RECLAIM and reclaim_lower_only)
        own = reason == _WITHIN
        for run in runs.values():
            if own:
                # q's own jobs: lower priority where q preempts within itself; of equal or lower priority when they
                # were submitted after an aged preemptor and started before it (they overtook it)
                if run.priority > priority or not (
                        (within and run.priority < priority)
                        or (overtaken is not None and run.submitted_at > overtaken and run.started_at > overtaken)):
                    continue
            elif lower_only and run.priority >= priority:
                continue
            if disjoint(run.keys):
                continue  # frees nothing this job needs
            if lost and run.id in lost and lost[run.id][0] >= MAX_PREEMPTIONS:
                continue  # preempted often enough: it runs to its end
            if now - run.started_at < min_runtime:
                young += 1
                ready = run.started_at + min_runtime
                retry_at = ready if retry_at is None else min(retry_at, ready)
                continue
            if run.vorder is None:
                run.vorder = (run.priority, -run.started_at, run.id)  # the least work lost first
            out.append(run)
    candidates = borrowers + others
    note = f"{young} running jobs could be preempted once they reach their minimum runtime" if young else ""
    if not candidates:
        return PreemptionPlan(None, retry_at, note)
    if after_own and not _own_victims_suffice(tree, q, option, others):
        return PreemptionPlan(None, retry_at, note or _NOT_ENOUGH)
    if shortfall is not None:
        node, key, amount = shortfall
        freeable = 0
        ancestors = tree.ancestors
        for run in candidates:
            if node == ROOT or node in ancestors[run.quota]:
                for k, x in run.req:
                    if k == key:
                        freeable += x
        if freeable < amount:
            return PreemptionPlan(None, retry_at, note or _NOT_ENOUGH)
    if not tree.floored_path[q]:
        # Without lending limits on the way up, the job needs its full request free at the cluster level.
        occupied, cap = tree.eu[ROOT], tree.cap
        for key, amount in option.req:
            free = cap[key] - occupied[key]
            if amount > free:
                for run in candidates:
                    for k, x in run.req:
                        if k == key:
                            free += x
                if amount > free:
                    return PreemptionPlan(None, retry_at, note or _NOT_ENOUGH)
    if (option.gpu and option.mode != PLACE_NODES
            and not _devices_could_fit(devices[option.pool], option.gpu, candidates, option.pool)):
        return PreemptionPlan(None, retry_at, note or _NOT_ENOUGH)
    borrowers.sort(key=_victim_order)
    others.sort(key=_victim_order)

    def remove(run: RunningRec) -> None:
        tree.release_plan(run.quota, run.plan)
        if run.nodes:
            devices[run.pool].release_job(run.shares, run.nodes, run.ncpu, run.nmem)  # type: ignore[attr-defined]
        elif run.shares:
            devices[run.pool].release(run.shares)

    def restore(run: RunningRec) -> None:
        tree.take_plan(run.quota, run.plan)
        if run.nodes:
            devices[run.pool].take_job(run.shares, run.nodes, run.ncpu, run.nmem)  # type: ignore[attr-defined]
        elif run.shares:
            devices[run.pool].take(run.shares)

    chosen: list[tuple[RunningRec, str]] = []
    fitted = False
    for run in borrowers + others:
        reason, stop = why[run.quota]
        if reason == _RECLAIM:
            # Only the contested keys matter: the reclaimer takes nothing else from the victim's quota.
            contested = run.req if run.keys <= keys else [(k, x) for k, x in run.req if k in keys]
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
