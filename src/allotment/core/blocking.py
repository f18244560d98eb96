"""What the cycle does with a job none of whose options fits: its Wait (re-emitted only when its numbers change), the
holds it puts on capacity (rule 5 of admission.py) and the parking of its group under the events that can unblock it.
Part of admission.SchedulerState (split out to keep each file readable).
"""

from __future__ import annotations

import heapq
from typing import TYPE_CHECKING, Any, Final

from allotment.core.devices import DevicePool
from allotment.core.explain import DEVICE, HOLD, SENTENCE_MEMO_MAX, Blocker, NodeNeed, combine
from allotment.core.model import Decision, Wait
from allotment.core.pool_choice import PoolChoice
from allotment.core.queues import Group, Hold, QueuedRec
from allotment.core.usage import CAPACITY, LIMIT, ROOT

if TYPE_CHECKING:
    from allotment.core.queues import Option

# Final: compiled (mypyc), a C static, where an imported name is a globals lookup on every call
heappush: Final = heapq.heappush

NEVER_RUNS = "it can never run with the current quotas and pools"
_new_object: Final = object.__new__  # a Wait with slot stores (as model.new_wait)


class Blocking(PoolChoice):
    @staticmethod
    def _borrows_in(options: list[Option], i: int, pool: str) -> bool:
        """Whether the frontier, reaching a capacity entry of ``pool`` for this group, finds it borrowing there
        whatever its quota uses: ``pool`` is option i's own pool, not the first option's, no earlier option is in it
        (the frontier measures the class in the first option with the key) and option i always borrows."""
        opt = options[i]
        if opt.pool != pool or not opt.borrows:
            return False
        for j in range(i):
            if options[j].pool == pool:
                return False
        return True

    def _block(self, q: int, group: Group, rec: QueuedRec, key: int, blockers: list[Blocker], aged: bool,
               retry_at: float | None, note: str, now: float, decisions: list[Decision]) -> None:
        """Every option of ``group``'s head ``rec`` is blocked (``blockers``, one per option in order): emit its Wait
        if its numbers changed, put its holds, park the group and set its deadline. One pass over the blockers
        builds the Wait's signature (the numbers its sentence is made of) and the park entries together."""
        tree = self._tree
        options = group.options
        first, opt = blockers[0], options[0]
        # A job that cannot run even on an idle cluster must not hold capacity: it would block others forever.
        ever = group.ever
        if ever is None:
            ever = self._ever(group)
        if True not in ever:
            note = (note + "; " if note else "") + NEVER_RUNS
        parts: list[tuple] = []
        limit_keys: list[tuple] = []
        # (pool, key, needed), as plain tuples: compiled, a typed tuple taken from a list is unboxed, and boxed again
        # (a new tuple) wherever it is a dict key (ParkIndex)
        cap_entries: list[tuple] = []
        held_by: list[Hold] | None = None
        # (quota, key, amount) of its LIMIT blockers, and whether a HOLD blocks an option (see the parking below)
        needs: list[tuple] = []
        held = False
        key_of = tree.keys.keys
        # Any: compiled, the numbers below go into the signature's tuples as the objects they are (an int would be
        # unboxed from its list or Blocker and boxed again)
        cap: list[Any] = tree.cap
        used: list[Any] = tree.u[ROOT]
        occupied: list[Any] = tree.eu[ROOT]
        needed: Any
        requested: Any
        numbers_only = True  # whether the sentence is made of the signature's numbers alone (see below)
        i = -1  # the blocker's option: options[i] (a counter, not zip(): zip costs more than this whole loop's test)
        for kind, node, k, needed, requested, detail in blockers:  # (unpacked: a field by name costs twice as much)
            i += 1
            if kind == CAPACITY:
                parts.append((CAPACITY, k, requested, needed, cap[k], used[k], occupied[k]))
                cap_entries.append((key_of[k][0], k, needed))  # (ResourceKey.pool)
            elif kind == LIMIT:
                parts.append((LIMIT, node, k, requested, tree.lim[node][k], tree.u[node][k]))
                limit_keys.append(("limit", node, key_of[k][0]))
                needs.append((node, k, requested))
            elif kind == DEVICE:
                if isinstance(detail, NodeNeed):  # node-level: its numbers change with any placement in the pool
                    parts.append((DEVICE, detail.pool.name, detail[1:], detail.pool.version, detail.pool.total_free))
                else:
                    assert isinstance(detail, DevicePool)
                    parts.append((DEVICE, detail.name, requested, detail.total_free, detail.whole_count))
                cap_entries.append((options[i].pool, k, needed))
                numbers_only = False  # (the device shortfall's sentence reads the pool's devices)
            else:
                assert isinstance(detail, Hold)
                held = True
                parts.append((HOLD, detail.kind, detail.job_id, detail.node, detail.key, detail.quota))
                guarantee = detail.kind == Hold.GUARANTEE
                if not guarantee:
                    numbers_only = False  # (a starving job's sentence says how long it has waited)
                if node == ROOT:  # a hold on the pool itself
                    # Another group's guarantee hold against this job as a borrower: the wake-up frontier passes over
                    # this entry as long as the hold lasts where the job's borrowing class there cannot change (its
                    # first pool: the class in its order key; a later pool where the request alone exceeds the
                    # guarantee: always 1; wakeups.WakeByNeed._wake_next), and the hold's end wakes the group
                    # (Hold.blocked), so the entry is left out there.
                    pool = key_of[k][0]
                    if not guarantee or not (pool == options[0].pool if not i else self._borrows_in(options, i, pool)):
                        cap_entries.append((pool, k, requested))
                else:
                    limit_keys.append(("limit", node, key_of[k][0]))
                if held_by is None:
                    held_by = []
                held_by.append(detail)
        parts.append((rec.id, note))  # last: the blockers' parts line up with the blockers (explain.combine)
        sig = tuple(parts)
        if sig != group.last_sig:
            if numbers_only:
                # The whole Wait (code and sentence) follows from the blockers' parts and the note: a blocked group
                # of a full pool meets the same numbers as the group before it (nine Waits in ten in churn).
                mkey = (sig[:-1], note)
                said = self._messages.get(mkey)
                if said is None:
                    if len(self._messages) >= SENTENCE_MEMO_MAX:
                        self._messages.clear()
                    said = self._messages[mkey] = combine(tree, blockers, now, note, sig, self._sentences)
                code, message = said
            else:
                code, message = combine(tree, blockers, now, note, sig, self._sentences)
            # model.new_wait(rec.id, code, message), inline (slot stores, no call)
            group.last_wait = wait = _new_object(Wait)
            wait.job_id = rec.id
            wait.code = code
            wait.message = message
            group.last_sig = sig
            decisions.append(wait)
        # Its hold for its preemption delay (rule 5): on the capacity it waits for, against the jobs it could preempt
        # once the delay ends. One it already has for the same job, capacity and scope stays (see _wake).
        delay_until = rec.submitted_at + self._preemption_delay
        policy = tree.preempt_policy[q]
        delay_hold = (ever[0] and first[0] != HOLD and opt.alone and now < delay_until and (policy[0] or policy[1]))
        kept = None
        if group.holds:
            if delay_hold:
                for h in group.holds:
                    if (h.kind == Hold.DELAY and h.job_id == rec.id and h.key == first[2] and h.scope == first[1]
                            and h.until == delay_until):
                        kept = h
            self._drop_holds(group, kept)
        delay_only = False  # whether its only hold is the one it puts for its preemption delay
        if ever[0]:
            kind = first[0]
            if (kind == CAPACITY or kind == DEVICE) and opt.guaranteed:
                # tree.within_guarantee(q, opt.req) through the option's room: the quota stays within its guarantee
                # with this job
                uq = tree.u[q]
                for k, room in opt.room:
                    if uq[k] > room:
                        break
                else:
                    self._add_hold(Hold(ROOT, first[2], Hold.GUARANTEE, group, rec, 0))
            if delay_hold:
                if kept is None:
                    self._add_hold(Hold(ROOT, first[2], Hold.DELAY, group, rec, 0, policy[0], policy[1], delay_until,
                                        first[1], tree.path_root))
                delay_only = len(group.holds) == 1
            if aged and kind != HOLD:
                hold = self._starvation_hold(q, group, rec, first, opt)  # rule 5 (reclaiming.py)
                if hold is not None:
                    self._add_hold(hold)
        if (needs and not cap_entries and not held and not aged and (delay_only or not group.holds)
                and (not self._can_preempt[q] or now < delay_until)):
            # Every option is blocked by a limit, and until one has room for it re-examining the group could change
            # nothing but its Wait's numbers: it may not preempt (yet: its delay's end is a deadline that wakes it),
            # holds nothing but its delay's hold (which stands until that deadline) and is held by nothing. It waits
            # for that room (ParkIndex, limit rooms) instead of every end under the limit. (An option blocked by
            # capacity is woken by the frontier, in order; an end under a limit also re-examined it, out of that
            # order, and that stays as it was.)
            limit_keys = []
            group.park_blockers = blockers
        else:
            needs = []
        if tree.preempt_policy[q][1]:
            # Could the group become entitled to reclaim once its own quota's
            # usage drops (an option fits q's guarantee alone, but not with what q runs now)? Capacity parking
            # alone would never wake it: the capacity it waits for is held by borrowers, and only preempting them
            # frees it. (Such an option is guaranteed: within_guarantee is "every key within its room".)
            uq = tree.u[q]
            for o in options:
                if o.alone:
                    for k, room in o.room:
                        if uq[k] > room:
                            limit_keys.insert(0, ("guarantee", q))  # woken when q's usage drops (_wake_reclaimers)
                            break
                    else:
                        continue
                    break
        if held_by is not None:
            for hold in held_by:
                hold.blocked[group] = None
        self._park.park(group, limit_keys, cap_entries, key, needs)
        group.qtoken = 0
        if self._age is not None and not aged:
            ages_at = rec.submitted_at + self._age
            retry_at = ages_at if retry_at is None or ages_at < retry_at else retry_at
        if retry_at is not None:
            if retry_at == group.deadline_at and group.deadline_kept:
                # Its entry for this time is still in the heap (stale since the group was woken): valid again. Only
                # the order of deadlines due at the same time changes, and they are woken together, at a cycle's start.
                group.deadline_token = group.deadline_kept
            else:
                self._token += 1
                group.deadline_token = group.deadline_kept = token = self._token
                group.deadline_at = retry_at
                heappush(self._deadlines, (retry_at, token, group))
