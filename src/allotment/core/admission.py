"""The scheduler cycle: which queued jobs start, where, and whom they preempt. Pure: no I/O, no clock, no globals.

Public API (import from ``allotment.core.admission``)
======================================================

Inputs (``allotment.core.model``; amounts are ``Quantity``, times float seconds on the caller's clock):
  ``QuotaSpec`` / ``QuotaLimits`` (quota_tree.py), ``Pool(name, devices, cpu, memory, profile_order, nodes)``,
  ``Node(name, cpu, memory)``, ``Device(id, free, capacity, node)``,
  ``Profile(name, requests, pools, policy_order, best_fit)``,
  ``QueuedJob(id, quota, priority, seq, submitted_at, requests, pools, profile, priority_class, nodes, best_fit)``,
  ``RunningJob(id, quota, priority, started_at, pool, requests, devices, nodes, node_count)``,
  ``Snapshot(quotas, pools, profiles, running, queued)``,
  ``SchedulerConfig(starvation_age_s, max_admissions_per_cycle, preemption_delay_s, gpu_share_step)``.
Outputs (decisions are values, in the order they were taken):
  ``Admit(job_id, quota, pool, requests, devices, preempted, nodes)``: start the job on ``devices`` of ``nodes``
  after stopping ``preempted``; ``Preempt(victim_id, for_job_id, reason, message)``; ``Wait(job_id, code, message)``
  with code from ``WaitCode`` and a sentence with the numbers.

``schedule(snapshot, now, config=None) -> list[Decision]``
    One cycle from scratch (tests, tools). Equivalent to ``SchedulerState.from_snapshot(...).cycle(now)``.

``SchedulerState(quotas, pools, profiles=(), config=None)``: incremental state kept by the scheduler loop.
    ``from_snapshot(snapshot, config=None)``   build from a snapshot (running jobs first, then queued ones).
    ``add_job(job: QueuedJob)``                 a submission (invalid jobs yield a Wait in the next cycle).
    ``remove_job(job_id) -> bool``              cancel a queued job, or forget a running one (same as job_finished).
    ``add_running(job: RunningJob, take_devices=False)``  a job already holding resources (snapshot Device.free
                                                already excludes it unless take_devices=True).
    ``job_finished(job_id) -> bool``            a running job ended (succeeded, failed, cancelled, stopped): frees it.
    ``update_pool(pool: Pool)``                 devices, nodes or capacity of a known pool changed (only the nodes
                                                whose entries differ are updated).
    ``update_node(pool, node: Node, devices)``  one node of a pool that lists its nodes joined or changed (its
                                                devices with their free amounts, as in a snapshot); O(its devices).
    ``remove_node(pool, node_name)``            a node is drained or left: nothing new lands there; its jobs run on.
    ``cycle(now) -> list[Decision]``            run one cycle. Decisions are already applied to the state: admitted jobs
                                                are running, victims are gone (the loop may re-queue them with add_job).
                                                If the loop fails to persist a cycle, drop the state and rebuild it.
                                                Waits are emitted for the jobs a cycle examines (the head of each
                                                blocked group of identical jobs) when their reason changed.
    ``next_due``                                after a cycle: the earliest time a waiting job is due to be examined
                                                again without any event (its preemption delay ends, it ages), or None.
                                                The loop runs a cycle then (cycle(now) with now >= next_due).
    ``explain(job_id) -> Wait | None``          the current reason of any queued job (also jobs behind a blocked head).
    ``queue_group(job_id)``, ``group_members(key)``  a queued job's group and its last Wait (O(1)), the group's
                                                job ids: the loop shows a blocked head's reason on every member.
    ``group_wait(job_id)``                      that Wait with today's numbers (asked live, e.g. by the job's page).
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
4. Preemption (preemption.py, reclaiming.py): within quota (lower priority), child level (parent quota with
   child_preemption), reclaim (quota below its guarantee takes back lent capacity; also when the job fits the
   guarantee only once the quota's own lower-priority jobs are preempted with the borrowers, and, for an aged job
   that fits the guarantee alone, once the quota's own jobs of equal or lower priority submitted after it and
   started while it waited are preempted: they overtook it, Kueue's LowerOrNewerEqualPriority); one victim ordering
   (borrowers, lowest priority, least work lost: the most recently started); never more victims than needed; never
   a job younger than its quota's min_runtime_s; never pushes another quota below its guarantee. A job may preempt only once it has been queued
   config.preemption_delay_s (until then it waits and is re-examined when the delay ends).
   Thrash bound. A job preempted n times may not borrow again for REQUEUE_BACKOFF_S x REQUEUE_BACKOFF_FACTOR^(n-1)
   (600 s, 1,800 s, 5,400 s, ...; after Kueue's requeuing backoff) and waits with REQUEUE_BACKOFF meanwhile; it
   may run within its quota's guarantee at any time, and a job of the same shape that was not preempted does not
   wait behind it. A job preempted MAX_PREEMPTIONS (5) times is not preempted again: it runs to its end. The
   backoff lets the capacity a reclaim freed serve the next job of the reclaiming quota instead of the victim that
   would be preempted again; the bound caps the worst case, and since a backoff grows threefold the job it protects
   has usually run for hours between its preemptions. With repeats bounded so, the victim order only minimises the
   work each preemption throws away (ordering by work invested, lost run time counted, lost 50 % more GPU-hours on
   the full Philly trace once aged borrowers stopped holding the pool, rule 5). Measured on the Philly trace
   (benchmarks/whatif_replay.py): at most 5 preemptions of one job (46 before) and 10,400 GPU-hours lost (bound
   10,991), where a minimum runtime bounded the worst case only by tripling the work lost. The state
   remembers preemptions it decided (a state rebuilt from a snapshot starts without them).
5. A blocked job whose quota is below its guarantee holds the pool's capacity against borrowers (GUARANTEE_PENDING);
   an aged blocked job holds it against less urgent jobs (RESERVED_FOR_STARVING_JOB), and, when it fits its quota's
   guarantee alone and its quota cannot reclaim, against its own quota's jobs as well (they would keep overtaking
   it; where the quota reclaims, rule 4 takes back what they took instead, so its guarantee is not left idle while
   it drains). An aged job that would borrow, fits its quota's guarantee alone and whose quota reclaims holds no
   pool capacity: its way in is that guarantee (rule 4 takes back what its quota's later jobs took, and it is woken
   to reclaim when its quota's usage drops, so it waits at most for its quota's older or more urgent jobs), while a
   hold would stop every other quota's borrowing for capacity it could keep only until its lender reclaims it
   (Philly: mean queueing 756 s with such holds, 562 s without). A job parked while its quota's own usage made it
   a borrower is woken when that usage drops: it may now fit the guarantee and reclaim (waiting only for physically
   free GPUs, it would never be examined again). During its preemption delay a blocked job that fits its quota's
   guarantee alone holds the capacity against the jobs it may preempt when the delay ends (HELD_FOR_PREEMPTING_JOB):
   lower-priority jobs of its own quota where the quota preempts within it, of other quotas where they would borrow
   and its quota reclaims. Started meanwhile, they would only be preempted; held, what frees by itself reaches the
   job (Kueue's baseline with 1 ms of timing noise, policy_replay: 1,192 preemptions without the hold, none with it).
6. GPUs: a share of a GPU (a multiple of config.gpu_share_step milli-GPU, default 10 = 0.01 GPU; other amounts are
   invalid requests) goes to one device, best fit; a device never holds more than one GPU of shares. Whole requests
   take whole free devices. A job's GPUs, CPU and memory are on ONE node; they are never split over nodes.
7. Nodes. A pool that lists its nodes (Pool.nodes) accounts each node's GPUs, CPU and memory: no placement exceeds
   any of them, CPU-only jobs are placed on a node too, and the pool's cpu and memory are the sums of its nodes'.
   A pool without nodes accounts CPU and memory for the pool only; its devices' ``node`` labels still keep a job's
   GPUs on one node. A gang (QueuedJob.nodes = N > 1) asks ``requests`` on each of N distinct nodes and is placed
   on all of them at once or not at all; its quota is charged requests x N.
8. Choice among pools. An ordered job or profile (ClearML) tries its pools in order: a later pool only when the
   earlier ones cannot take the job (rule 3). A best-fit job (QueuedJob.best_fit or Profile.best_fit: an unordered
   set of acceptable pools, e.g. GPU models) takes, among the pools where its limits allow it and a node can take
   it, the placement with the lowest score, the first listed pool on a tie. When none fits, the pools are blocked
   and preempted for in their listed order, as an ordered job's.
   Score of a placement on a node (placement.NodePool.score; lower is better; in milli-GPU, so comparable across
   pools), after the fragmentation-gradient idea of "Beware of Fragmentation" (FGD, ATC '23):
     score = dF + 2 * dS + 0.01 * L
   dF: growth of the node's GPU fragmentation for the workload, the GPU amounts and whole cores (rounded up) of
     the jobs submitted so far (placement.Demand). The fragmentation of a node is the free GPU that a job drawn from
     that workload could not use: all of it for a job asking more cores than the node has whole cores free; for the
     others, each device's free x counts x times the share of jobs asking a share above x, the free GPU outside
     completely free devices counts for every whole-GPU job, and all free GPU counts for the whole-GPU jobs asking
     more completely free devices than the node has. The node's cores after the placement count: a placement that
     leaves too few cores for the workload's jobs fragments the GPU it leaves free.
   dS: growth of the GPU the node's CPU or memory can no longer feed: free GPU beyond what the CPU (memory) left
     covers at the node's own CPU (memory) per GPU, the larger of the two, at least 0.
   L: the GPU left free on the node (best fit among otherwise equal nodes: fuller nodes first).
   CPU-only jobs have no dF. A node without GPUs scores 0.
   Candidates: the first 4 placements that fit in the pool's best-fit order (the tightest free share; the
   node with the fewest completely free devices that suffice; for CPU-only jobs nodes without free GPU, least free
   cores first, then nodes with free GPU, most free cores first). In a pool that lists its nodes, these indexes
   are kept per node's whole free cores and free GiB (core/fit_index.py): a search visits only nodes with the job's
   cores and memory free; among nodes of equal free GPU, GPU jobs take those with the fewest such cores first, then
   the least memory. Once it has one candidate, the
   search stops after 64 entries (near saturation fitting nodes are rare). It skips only nodes that cannot take the
   job and never stops without a candidate, so a job waits only when no node can take it; a shape that found no
   node is not searched again until capacity comes back to the pool. Within a pool the same score picks among the
   candidates.
   A wait names the node-level shortage: "no node in pool a100 has 2 GPUs and 48 cores free (best: node-17, 2 GPUs
   and 12 cores)", the best being the closest of the nodes with the most free GPU (or cores).

Cost: each candidate examined walks one quota path over the job's few keys plus O(log) heap operations. Jobs of one
quota with the same shape form a group of which only the head is examined; a blocked group is parked until an event
can unblock it (capacity returning to a pool, usage dropping under a limit on its path, a deadline, a new head). A
group that only limits block and that may not preempt yet waits for room for it under the limit, not for every end
under it (queues.ParkIndex: its Wait keeps the numbers of its last examination meanwhile).
Groups waiting for pool capacity are not all re-examined when a job finishes: they join the candidates one at a time,
best first, when they would be next and what they need is free. Nothing in a cycle scans the queued jobs.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from functools import partial
from typing import Any, Final

from allotment.core.devices import WHOLE
from allotment.core.explain import HOLD, Blocker
from allotment.core.model import Admit, Decision, SchedulerConfig, Snapshot
from allotment.core.order_keys import BORROWS, CLASS_SHIFT, NOT_AGED, QUOTA_MASK
from allotment.core.quantity import Quantity
from allotment.core.queue_inspection import QueueInspection
from allotment.core.queues import (
    PLACE_DEVICES,
    PLACE_NODES,
    TOKEN_MASK,
    Group,
    Hold,
    Option,
    QueuedRec,
    RunningRec,
)
from allotment.core.reclaiming import REQUEUE_BACKOFF_FACTOR, REQUEUE_BACKOFF_S
from allotment.core.usage import ROOT, AdmitPlan

# Final: compiled (mypyc), a C static, where an imported name is a globals lookup on every call
heappop: Final = heapq.heappop
heappush: Final = heapq.heappush
heapreplace: Final = heapq.heapreplace

__all__ = ["REQUEUE_BACKOFF_FACTOR", "REQUEUE_BACKOFF_S", "SchedulerState", "schedule"]

_new_tuple: Final = tuple.__new__  # builds a NamedTuple (Block, Blocker) in C, without its Python-level __new__
_new_object: Final = object.__new__  # with slot stores: a record without a call to its __init__ (see _admit)
# A RunningRec for _admit's slot stores. Compiled (mypyc), RunningRec is a native class that only its __init__ builds
# (object.__new__ refuses it), and there a direct call of it is cheap: _blank_running (placeholders, then overwritten).
_NATIVE_RUNNING: Final = RunningRec.__new__ is not object.__new__
_new_running = partial(_new_object, RunningRec)
_NO_PLAN: Final = AdmitPlan((), False, (), ())
_NO_REQUESTS: Final[dict] = {}  # (never written: a placeholder)
_NO_KEYS: Final[frozenset[int]] = frozenset()


def _blank_running() -> RunningRec:
    return RunningRec("", 0, 0, 0.0, "", (), (), _NO_REQUESTS, _NO_PLAN, (0, ""), _NO_KEYS)


class SchedulerState(QueueInspection):
    """Incremental scheduler state with the cycle. See the module docstring for the API."""

    def cycle(self, now: float) -> list[Decision]:
        self._now = now
        self._cycle_no += 1
        self._cycle_token0 = self._token
        if not self._queued and not self._invalid_pending:
            return self._idle_cycle()
        decisions: list[Decision] = []
        if self._invalid_pending:
            decisions.extend(self._invalid_pending)
            self._invalid_pending = []
        deadlines = self._deadlines
        while deadlines and deadlines[0][0] <= now:
            _, token, group = heappop(deadlines)
            if token == group.deadline_kept:
                group.deadline_kept = 0  # (out of the heap: never made valid again)
            if token == group.deadline_token:
                self._wake(group)
        stopped = self._drain(now, self.config.max_admissions_per_cycle, decisions)
        self._end_wakes(complete=not stopped)
        while deadlines and deadlines[0][1] != deadlines[0][2].deadline_token:
            _, token, group = heappop(deadlines)  # dropped or woken since
            if token == group.deadline_kept:
                group.deadline_kept = 0
        self.next_due = deadlines[0][0] if deadlines else None
        return decisions

    def _drain(self, now: float, limit: int | None, decisions: list[Decision]) -> bool:
        """Examine candidates in order until none is left; returns True if it stopped at the admission limit.
        Queued candidates come from the global heap; capacity-parked groups join it when they would be next."""
        # Any: compiled, the global heap's entries (integers of 200 bits and more) are compared and masked as the
        # objects they are; typed int, each read from a list would be converted first
        gheap: list[Any] = self._gheap
        gentry: list[Any] = self._gentry
        gtoken, leaf = self._gtoken, self._leaf
        gtop_group, gtop_rec = self._gtop_group, self._gtop_rec
        tree_cap, tree_u = self._tree.cap, self._tree.u
        admitted = 0
        q: int
        key: int | None
        while True:
            key = None
            while gheap:
                entry = gheap[0]
                q = entry & QUOTA_MASK
                if entry == gentry[q]:  # the quota's valid entry (its token: gtoken[q])
                    key = entry >> 96
                    break
                heappop(gheap)  # stale entries
            frontier = self._frontier
            if frontier or self._unlisted:
                # The frontier's memo (_wake_next's first test, inline: most calls end there, and a call costs more
                # than the test): the same front entry as its last "not before the queued candidates" answer, and
                # nothing that answer depended on changed.
                memo = self._wake_memo
                holds = False
                if (memo is not None and key is not None and frontier and frontier[0] is memo[0]
                        and not self._unlisted):
                    # (unpacked once, into typed names: compiled, each memo[i] and cursor[i] is a generic operation)
                    _, mgroup, version, cycle_no, then, order, cursor = memo
                    need: int = cursor[3]
                    ckey: int = cursor[4]
                    if (order >= key and cycle_no == self._cycle_no and version == self._holds_version
                            and mgroup.parked and mgroup.tried != cycle_no
                            and need <= tree_cap[ckey] - tree_u[ROOT][ckey]):
                        # its quota's usage on the keys its order key reads, as then (a loop: tuple(map(...)) costs
                        # more)
                        uq, j = tree_u[mgroup.quota], 0
                        for k in mgroup.term_keys:
                            if uq[k] != then[j]:
                                break
                            j += 1  # noqa: SIM113 - hot loop (see above)
                        else:
                            holds = True
                if not holds and self._wake_next(key):
                    continue
            if key is None:
                return False
            token = gtoken[q]
            group, rec = gtop_group[q], gtop_rec[q]
            if not rec.alive or group.parked:  # type: ignore[union-attr]
                top = self._quota_top(q)
                if top is None:
                    heappop(gheap)
                    gentry[q] = 0
                    continue
                group, rec = top
            # A leaf quota's key only depends on its own usage, and every change to that re-pushes it: an entry
            # pushed during this cycle is exact. Other entries are re-checked (usage below may have grown).
            if leaf[q] and token > self._cycle_token0:
                current = key
            else:
                current = self._key(q, group, rec, now)  # type: ignore[arg-type]
            if current > key:  # the quota's standing got worse since it was queued: re-rank it
                self._token += 1
                gtoken[q] = token = self._token
                gtop_group[q], gtop_rec[q] = group, rec
                gentry[q] = entry = (current << 96) | (token << 32) | q
                heapreplace(gheap, entry)
                continue
            if limit is not None and admitted >= limit:
                return True
            # The entry stays in the heap, stale (token 0), until the quota's next entry replaces it in one step
            # (_push_quota) or, if something else went on top meanwhile, until the stale-entry loop above drops it.
            gentry[q] = 0
            if self._try(q, group, rec, current, now, decisions):  # type: ignore[arg-type]
                admitted += 1
            self._push_quota(q, entry)

    @staticmethod
    def _blocker(b, opt: Option) -> Blocker:
        if isinstance(b, Blocker):
            return b
        return _new_tuple(Blocker, (b.kind, b.node, b.key, b.needed, _amount(opt.req, b.key), None))

    def _try(self, q: int, group: Group, rec: QueuedRec, key: int, now: float, decisions: list[Decision]) -> bool:
        group.tried = self._cycle_no
        if group.borrow_after > now and key >= BORROWS:  # (order keys are inlined here: see order_keys)
            self._backing_off(q, group, rec, now, decisions)
            return False
        # One pass over the options in order: the holds on its keys (when any key is held), the limits and the
        # capacity (UsageTree.admit_plan, inlined: it is most of what an admission costs; same checks, same order),
        # then the devices. The first option that fits is admitted; a blocked option's Blocker is built from the
        # check that stopped it (UsageTree.first_block's answer: the checks run in its order).
        tree = self._tree
        er, cap = tree.eu[ROOT], tree.cap
        held = self._held_keys  # key -> holds on it (empty: nothing is held anywhere)
        if held:
            root_holds = self._root_holds
            pools_only = not self._quota_hold_sets  # every hold is on a pool itself (ROOT), none on a quota
        aged = not key & NOT_AGED
        first = group.options[0]
        options = self._best_first(q, group) if group.best_fit else group.options
        blockers: list[Blocker] = []
        for opt in options:
            if held:
                hold = None
                if pools_only:
                    # _hold_on, inline: of the option's (quota or ROOT, key) pairs only (ROOT, key) can be held, and
                    # they come last, in the order of its keys
                    cls = -1
                    for k, _ in opt.req:
                        hs = root_holds[k]
                        if hs is not None:
                            if cls < 0:  # the job's borrowing class there: for its first pool, in its order key
                                if opt is first:
                                    cls = key >> CLASS_SHIFT
                                else:
                                    uq, cls = tree.u[q], 0
                                    for k2, room in opt.room:
                                        if uq[k2] > room:
                                            cls = 1
                                            break
                            # hs.blocking(group, rec, cls, aged), its guarantee holds inline (the common case)
                            if cls > 0:
                                guarantee = hs.guarantee
                                for holder in guarantee:
                                    if holder is not group:
                                        hold = guarantee[holder]
                                        break
                                if hold is not None:
                                    break
                            if hs.starvation or hs.delay:  # (the whole test: its guarantee holds answer None again)
                                hold = hs.blocking(group, rec, cls, aged)
                                if hold is not None:
                                    break
                else:
                    for k, _ in opt.req:
                        if k in held:  # a hold may apply: the job's borrowing class for its first pool is in its key
                            hold = self._hold_on(q, group, rec, opt, key >> CLASS_SHIFT if opt is first else None,
                                                 aged)
                            break
                if hold is not None:
                    if hold.kind == Hold.DELAY:
                        # Its reason is what else stops it, where something does (a full limit or pool): a delay hold
                        # is its reason only where nothing else is. Either way the hold's end wakes it.
                        b = tree.first_block(q, opt.req)
                        if b is not None:
                            hold.blocked[group] = None
                            blockers.append(self._blocker(b, opt))
                            continue
                    hk, amount = hold.key, 0
                    for k, a in opt.req:  # _amount(opt.req, hold.key), inline
                        if k == hk:
                            amount = a
                            break
                    held_by = hold.blocker  # (a value: the same as its last one when the amount is the same)
                    if held_by is None or held_by[4] != amount:
                        held_by = hold.blocker = _new_tuple(Blocker, (HOLD, hold.node, hk, 0, amount, hold))
                    blockers.append(held_by)
                    continue
            blocker = None
            for ua, la, k, r, over in opt.lchk:  # (the option's plan, opt.plan, read through its slots)
                if ua[k] + r > la[k]:
                    blocker = over  # (prebuilt: explain.option_checks; a request's keys are distinct)
                    break
            if blocker is None:
                if opt.floored:
                    b = tree.admit(q, opt.req)
                    if b is not None:
                        blocker = self._blocker(b, opt)
                else:
                    for k, r, over in opt.ccap:
                        if er[k] + r > cap[k]:
                            blocker = over
                            break
                    else:
                        for k, r in opt.req:  # (not er[k] += r: compiled, that adds boxed ints, as Python objects)
                            er[k] = er[k] + r
                        for ua, k, r in opt.adds:
                            ua[k] = ua[k] + r
                if blocker is None:  # the usage is taken; now the devices (and the node)
                    mode = opt.mode
                    if mode == PLACE_DEVICES:
                        shares = self._devices[opt.pool].place(opt.gpu)
                        if shares is not None:
                            self._admit(q, group, rec, opt, shares, None, (), now, decisions)
                            return True
                    elif mode == PLACE_NODES:
                        placed = self._devices[opt.pool].place_job(opt.gpu, opt.cpu, opt.mem, opt.count)
                        if placed is not None:
                            self._admit(q, group, rec, opt, placed[0], placed[1], (), now, decisions)
                            return True
                    else:
                        self._admit(q, group, rec, opt, (), (), (), now, decisions)
                        return True
                    tree.release_plan(q, opt.plan)
                    blocker = self._device_blocker(opt)
            blockers.append(blocker)
        if options is not group.options:
            found = blockers
            blockers = [found[options.index(opt)] for opt in group.options]
        retry_at: float | None = None
        note = ""
        if self._can_preempt[q]:
            if now < rec.submitted_at + self._preemption_delay:
                # Re-examined, with preemption, when the delay ends. No note: whether preempting would help is only
                # known then (planning it now is the cost the delay saves), and the sentence must not promise it.
                retry_at = rec.submitted_at + self._preemption_delay
            else:
                # _preemption_may_help, inline (it runs for every blocked job of a quota that may preempt, and it
                # mostly answers False): would preemption_kinds answer for one of the options it looks at?
                within, reclaims, _, child_preemption = tree.preempt_policy[q]
                may = child_preemption or bool(self._any_keys)
                if not may:
                    ever = group.ever
                    if ever is None:
                        ever = self._ever(group)
                    i = 0
                    priority = rec.priority
                    for opt in group.options:
                        if blockers[i][0] != HOLD and ever[i]:
                            if within:
                                # the quota's running jobs in this pool by priority: one below the job's?
                                # (min(own) < priority, as a loop: a call to min() costs more than a few keys)
                                for p in opt.prios:
                                    if p < priority:
                                        may = True
                                        break
                                if may:
                                    break
                            if reclaims and opt.alone:
                                if aged:
                                    may = True
                                    break
                                uq = tree.u[q]
                                for k, room in opt.room:  # (the request within q's guarantee)
                                    if uq[k] > room:
                                        break
                                else:
                                    may = True
                                    break
                        i += 1  # noqa: SIM113 - hot loop: zip() over the three lists costs more than the test
                if may:
                    done, retry_at, note = self._try_preempting(q, group, rec, blockers, aged, now, decisions)
                    if done:
                        return True
        self._block(q, group, rec, key, blockers, aged, retry_at, note, now, decisions)
        return False

    def _admit(self, q: int, group: Group, rec: QueuedRec, opt: Option, shares, nodes, victims: tuple[str, ...],
               now: float, decisions: list[Decision]) -> None:
        """Record an admission whose usage and devices were already taken. ``nodes``: the nodes charged with the
        option's CPU and memory (PLACE_NODES), or None: the node of the devices (named in the Admit only)."""
        # RunningRec(rec.id, q, rec.priority, now, opt.pool, opt.req, shares, group.requests, opt.plan, opt.qp,
        # opt.keys), built with plain slot stores (a call to __init__ costs as much again; tests/unit/core/test_hot_path)
        run = _blank_running() if _NATIVE_RUNNING else _new_running()
        run.id = job_id = rec.id
        run.quota = q
        run.priority = priority = rec.priority
        run.started_at = now
        run.submitted_at = rec.submitted_at
        run.pool = pool = opt.pool
        run.req = opt.req
        run.shares = shares
        run.requests = requests = group.requests
        run.plan = opt.plan
        run.qp = opt.qp
        run.keys = opt.keys
        run.vorder = None
        if nodes is None:
            run.nodes = ()
            dp = self._devices[pool]
            nodes = dp.one[dp.node[shares[0][0]]]
        else:
            run.nodes = nodes
        run.ncpu = opt.cpu
        run.nmem = opt.mem
        # _index_running, inlined (hot path)
        self._running[job_id] = run
        opt.runs[job_id] = run  # the option holds its (quota, pool)'s running-job indexes (Option.runs)
        in_pool = opt.in_pool
        in_pool[q] = in_pool.get(q, 0) + 1
        prios = opt.prios
        prios[priority] = prios.get(priority, 0) + 1
        del self._queued[job_id]
        rec.alive = False
        group.size -= 1
        group.last_wait = None
        group.last_sig = None
        devices: tuple[tuple[str, Quantity], ...] | None
        if shares:
            if shares[0][1] == WHOLE:  # whole devices (all of them then): their Admit pairs exist already
                dp = self._devices[opt.pool]
                if len(shares) == 1:
                    devices = dp.public_single[shares[0][0]]
                else:
                    public = dp.public
                    devices = tuple([public[d] for d, _ in shares])
            else:  # a fraction of one device: its Admit form is built once per (device, amount) too
                devices = self._public_fractions.get(shares)
                if devices is None:
                    devices = self._public_fraction(shares)
        else:
            devices = ()
        # Admit(job_id, self._tree.ids[q], pool, requests, devices, victims), with slot stores (see model.py)
        a = _new_object(Admit)
        a.job_id = job_id
        a.quota = self._tree.ids[q]
        a.pool = pool
        a.requests = requests
        a.devices = devices
        a.preempted = victims
        a.nodes = nodes
        decisions.append(a)
        if group.holds:
            self._drop_holds(group)
        if group.size == 0:
            self._drop_group(group)
        else:
            self._next_head(group, rec)

    def _next_head(self, group: Group, rec: QueuedRec) -> None:
        """After admitting ``rec``, the head of ``group``: _push_group, with the group's previous entry in its quota's
        heap replaced in place when it is on top (where the admitted head's entry is; the result is the same as
        pushing a new entry and dropping the stale one later)."""
        heap = group.heap
        if heap and heap[0] == rec.entry:  # the admitted job's entry (group.head() would drop it on its next call)
            heappop(heap)
            del group.recs[rec.entry]
        head = group.recs[heap[0]] if heap else None  # group.head(), with its common case inlined (as _push_quota)
        if head is not None and not head.alive:
            head = group.head()
        if head is None or group.parked:
            group.qtoken = 0
            return
        qh, qgroups = self._qheap[group.quota], self._qgroups
        old = group.qtoken
        self._token += 1
        token = group.qtoken = self._token
        qgroups[token] = group
        if qh and qh[0] & TOKEN_MASK == old:
            heapreplace(qh, (head.gkey << 64) | token)
            del qgroups[old]
        else:
            heappush(qh, (head.gkey << 64) | token)

    def _public_fraction(self, shares: tuple[tuple[str, int]]) -> tuple[tuple[str, Quantity]]:
        """Admit form of a fractional placement, kept per placement (DevicePool._fraction shares them, so the cache
        holds at most one entry per device and tenth, whatever the number of admissions)."""
        (dev, raw), = shares
        amount = self._quantities.get(raw)
        if amount is None:
            amount = self._quantities[raw] = Quantity(raw)
        out = self._public_fractions[shares] = ((dev, amount),)
        return out


def _amount(req: Iterable[tuple[int, int]], key: int) -> int:
    for k, a in req:
        if k == key:
            return a
    return 0


def schedule(snapshot: Snapshot, now: float, config: SchedulerConfig | None = None) -> list[Decision]:
    """Run one scheduling cycle on a snapshot and return its decisions (see the module docstring)."""
    return SchedulerState.from_snapshot(snapshot, config).cycle(now)  # type: ignore[attr-defined]
