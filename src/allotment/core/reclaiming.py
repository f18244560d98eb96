"""Preemption within the cycle: planning it for a blocked job, the requeue backoff of the jobs it stops, and waking
the parked jobs that become entitled to reclaim. Part of admission.SchedulerState (split out to keep each file
readable); the rules are in the contract at the top of admission.py (rules 4 and 5) and in preemption.py.
"""

from __future__ import annotations

import heapq
from typing import Final

from allotment.core.explain import HOLD, Blocker, preempt_message
from allotment.core.model import Decision, Preempt, WaitCode, new_wait
from allotment.core.preemption import _NOT_ENOUGH as NOT_ENOUGH
from allotment.core.preemption import plan_preemption, preemption_kinds
from allotment.core.queues import Group, Hold, Option, QueuedRec
from allotment.core.state import StateBase
from allotment.core.usage import CAPACITY, LIMIT, ROOT

# Final: compiled (mypyc), a C static, where an imported name is a globals lookup on every call
heappush: Final = heapq.heappush

# Requeue backoff of a preempted job (after Kueue's requeuing backoff): after its n-th preemption it may not borrow
# for REQUEUE_BACKOFF_S * REQUEUE_BACKOFF_FACTOR ** (n - 1) seconds (rule 4).
REQUEUE_BACKOFF_S = 600.0
REQUEUE_BACKOFF_FACTOR = 3.0

_NEVER: Final = (0, 0.0, 0.0)  # a job never preempted: (times, run time lost, may borrow after)


class Reclaiming(StateBase):
    # Defined further up the chain (pool_choice.PoolChoice, admission.SchedulerState); declared for the checker and
    # the compiler.
    def _ever(self, group: Group) -> list[bool]:
        raise NotImplementedError

    def _chooses(self, opt: Option) -> bool:
        raise NotImplementedError

    def _place(self, opt: Option) -> tuple | None:
        raise NotImplementedError

    def _admit(self, q: int, group: Group, rec: QueuedRec, opt: Option, shares, nodes, victims: tuple[str, ...],
               now: float, decisions: list[Decision]) -> None:
        raise NotImplementedError

    # The holds that stop an option (rule 5), asked here and by the cycle's blocked-job path (admission._try).
    def _hold_blocking(self, q: int, group: Group, rec: QueuedRec, opt: Option, cls: int | None,
                       aged: bool) -> Hold | None:
        held = self._held_keys
        for k, _ in opt.req:
            if k in held:
                break
        else:
            return None
        return self._hold_on(q, group, rec, opt, cls, aged)

    def _hold_on(self, q: int, group: Group, rec: QueuedRec, opt: Option, cls: int | None,
                 aged: bool) -> Hold | None:
        """_hold_blocking once one of the option's keys is known to be held."""
        if cls is None:  # the job's borrowing class there (borrow_class_and_share's), only now that a hold may apply
            uq = self._tree.u[q]
            cls = 0
            for k, room in opt.room:
                if uq[k] > room:
                    cls = 1
                    break
        holds = self._holds
        for pair in opt.hold_pairs:  # (quota or ROOT, key): the job's path, then its keys
            hs = holds.get(pair)
            if hs is not None:
                hold = hs.blocking(group, rec, cls, aged)
                if hold is not None:
                    return hold
        return None

    def _wake_reclaimers(self, q: int) -> None:
        """q's usage dropped: wake its parked groups that now fit its guarantee, so that they reclaim what others
        borrow (they may have been parked while q's own jobs made them borrowers; see SchedulerState._block)."""
        within = self._tree.within_guarantee
        age, now = self._age, self._now
        for group in self._park.limit_groups(("guarantee", q)):
            for opt in group.options:  # a loop, not any(generator): a generator frame costs more than the test
                if within(q, opt.req):
                    self._wake(group)
                    break
            else:
                head = group.head()
                if age is not None and head is not None and now - head.submitted_at >= age:
                    self._wake(group)  # an aged head may take back what q's later jobs took (preemption_kinds)

    def _starvation_hold(self, q: int, group: Group, rec: QueuedRec, first: Blocker, opt: Option) -> Hold | None:
        """The hold an aged job blocked by ``first`` puts on the capacity it waits for (rule 5), or None. A job that
        would borrow, fits its quota's guarantee alone and belongs to a quota that reclaims holds no pool: its way
        in is its guarantee (it takes back what its quota's later jobs took and is woken to reclaim when its quota's
        usage drops), and a hold would stop every other quota's borrowing for capacity it could keep only until its
        lender reclaims it. Where its quota cannot reclaim, it holds against that quota's own jobs too (see Hold)."""
        tree = self._tree
        cls = tree.borrow_class_and_share(q, opt.req)[0]
        reclaims = tree.preempt_policy[q][1]
        alone = opt.alone  # tree.fits_guarantee_alone(q, opt.req), kept by the option
        if cls and reclaims and alone and first.node == ROOT:
            return None
        return Hold(first.node, first.key, Hold.STARVATION, group, rec, cls, not reclaims and alone)

    def _backing_off(self, q: int, group: Group, rec: QueuedRec, now: float, decisions: list[Decision]) -> None:
        """A preempted job in its requeue backoff would borrow: it waits until the backoff ends, or until its quota's
        usage drops enough for it to fit the guarantee (woken as a reclaimer then; see blocking.Blocking._block)."""
        times, lost, until = self._preempted.get(rec.id, (1, 0.0, group.borrow_after))
        sig = ("backoff", rec.id, times, until)
        if sig != group.last_sig:
            group.last_wait = new_wait(rec.id, WaitCode.REQUEUE_BACKOFF, (
                f"quota {self._tree.ids[q]}: preempted {times} time(s) after {lost:.0f} s of run time in all, it may "
                f"borrow again in {max(until - now, 0):.0f} s (requeue backoff), or run earlier within its quota's "
                f"guarantee"))
            group.last_sig = sig
            decisions.append(group.last_wait)
        if group.holds:
            self._drop_holds(group)
        self._park.park(group, [("guarantee", q)], [], self._key(q, group, rec, now))
        group.qtoken = 0
        group.deadline_token = self._next_token()
        group.deadline_kept = 0  # (only _block's entries are made valid again)
        heappush(self._deadlines, (until, group.deadline_token, group))

    def _preemption_may_help(self, q: int, group: Group, rec: QueuedRec, blockers: list[Blocker], aged: bool) -> bool:
        """False when _try_preempting would find nothing to plan: preemption_kinds is None for every option it
        looks at (the common case for a blocked job in a busy cluster), decided with the same tests inline.
        SchedulerState._try inlines this gate (tests/unit/core/test_one_pass.py compares the two)."""
        tree = self._tree
        within, reclaims, _, child_preemption = tree.preempt_policy[q]
        if child_preemption or self._any_keys:
            return True  # (these widen the search beyond the option's own pool: let preemption_kinds decide)
        ever = group.ever
        if ever is None:
            ever = self._ever(group)
        priority = rec.priority
        for opt, blocker, possible in zip(group.options, blockers, ever):
            if blocker[0] == HOLD or not possible:
                continue
            if within:
                own = opt.prios  # the quota's running jobs in this pool by priority
                if own and min(own) < priority:
                    return True
            if reclaims and opt.alone:
                if aged:
                    return True
                uq = tree.u[q]
                for k, room in opt.room:  # (the request within q's guarantee: preemption_kinds' reclaim test)
                    if uq[k] > room:
                        break
                else:
                    return True
        return False

    def _try_preempting(self, q: int, group: Group, rec: QueuedRec, blockers: list[Blocker], aged: bool, now: float,
                        decisions: list[Decision]) -> tuple[bool, float | None, str]:
        """Admit the job by preempting others in one of its pools if the rules allow it: (admitted, retry_at, note).
        (Separate from _try so that the closure below does not cost _try's hot path its cell variables.)"""
        tree = self._tree
        retry_at: float | None = None
        note = ""
        ever = self._ever(group)
        pools = self._pool_order if self._any_keys else None
        for opt, blocker, possible in zip(group.options, blockers, ever):
            if blocker.kind == HOLD or not possible:
                continue
            kinds = preemption_kinds(tree, self._prio_by_qp, q, rec.priority, opt, pools or (opt.pool,),
                                     rec.submitted_at if aged else None)
            if kinds is None:
                continue  # no job could be preempted for it here: nothing to plan
            if kinds[3] and tree.is_borrowing(q, opt.keys):
                # Reclaiming with q's own jobs needs q back within its guarantee through its own jobs that are not
                # borrowers (preemption._own_victims_suffice); while q borrows on these keys it has none, so the plan
                # would fail after listing every candidate (an aged job woken each time q's usage drops hit this).
                note = note or NOT_ENOUGH
                continue
            def fits(opt: Option = opt) -> bool:
                return (
                    tree.first_block(q, opt.req) is None
                    and self._chooses(opt)
                    and (not self._holds or self._hold_blocking(
                        q, group, rec, opt, tree.borrow_class_and_share(q, opt.req)[0], aged) is None)
                )

            plan = plan_preemption(
                tree, self._devices, self._run_by_qp, self._quotas_in_pool, self._prio_by_qp, q, rec.priority, opt,
                pools or (opt.pool,), fits, now, self._shortfall(blocker), kinds, self._preempted,
            )
            if plan.victims:
                preempted = self._preempted
                for run, reason in plan.victims:
                    times, lost, _ = preempted.get(run.id, _NEVER)
                    preempted[run.id] = (times + 1, lost + (now - run.started_at),
                                         now + REQUEUE_BACKOFF_S * REQUEUE_BACKOFF_FACTOR ** times)
                    message = preempt_message(tree, run.id, run.quota, run.priority, reason, rec.id, q, rec.priority)
                    decisions.append(Preempt(run.id, rec.id, reason, message))
                    self._release(run)
                placed = self._place(opt)
                assert placed is not None
                tree.take_plan(q, opt.plan)
                self._admit(q, group, rec, opt, placed[0], placed[1], tuple(r.id for r, _ in plan.victims), now,
                            decisions)
                return True, retry_at, note
            if plan.retry_at is not None:
                retry_at = plan.retry_at if retry_at is None else min(retry_at, plan.retry_at)
            note = note or plan.note
        return False, retry_at, note

    def _shortfall(self, b: Blocker) -> tuple[int, int, int] | None:
        """How much must be freed where, for the first thing blocking an option (None: no simple bound)."""
        tree = self._tree
        if b.kind == LIMIT:
            return b.node, b.key, tree.u[b.node][b.key] + b.requested - tree.lim[b.node][b.key]
        if b.kind == CAPACITY:
            return ROOT, b.key, tree.eu[ROOT][b.key] + b.needed - tree.cap[b.key]
        return None
