"""Waking capacity-parked groups by need: when capacity comes back to a pool, its parked groups are not all
re-examined; they join the cycle's candidates one at a time, best first, when they would be next and what they need
is free (see the cost note at the top of admission.py). Part of state.StateBase (split out to keep each file
readable).
"""

from __future__ import annotations

import heapq
from typing import TYPE_CHECKING, Final

from allotment.core.order_keys import BORROWS, CLASS_SHIFT, NOT_AGED
from allotment.core.resources import ANY_POOL
from allotment.core.running_index import RunningIndex
from allotment.core.usage import ROOT

if TYPE_CHECKING:
    from allotment.core.queues import Group, HoldSet, QueuedRec

# Final: compiled (mypyc), a C static, where an imported name is a globals lookup on every call
heappop: Final = heapq.heappop
heappush: Final = heapq.heappush
heapreplace: Final = heapq.heapreplace


# A frontier entry: (order key << ORDER_SHIFT) | (token << TOKEN_SHIFT) | cursor number. Heap steps compare integers;
# the token (increasing) orders entries of equal order key by when they were pushed, and the cursor number finds the
# cursor in a list.
TOKEN_SHIFT: Final = 32
ORDER_SHIFT: Final = 96
CURSOR_MASK: Final = (1 << TOKEN_SHIFT) - 1


class WakeByNeed(RunningIndex):
    # Kept by state.StateBase; declared for the checker and the compiler (see running_index.RunningIndex).
    _dirty: dict[str, None]
    _unlisted: dict[str, None]
    _frontier: list[int]
    _cursors: list[list]
    _cycle_no: int
    _token: int
    _now: float
    _holds: dict[tuple[int, int], HoldSet]
    _holds_version: int
    # (top entry, group, holds version, cycle, its quota's usage on its term keys, order key, cursor)
    _wake_memo: tuple[object, Group, int, int, tuple[int, ...], int, list] | None
    _held_keys: dict[int, int]
    _root_holds: list[HoldSet | None]

    # Defined by state.StateBase, further up the chain.
    def _key(self, q: int, group: Group, rec: QueuedRec, now: float) -> int:
        raise NotImplementedError

    def _wake(self, group: Group) -> None:
        raise NotImplementedError

    def _mark_dirty(self, pool: str) -> None:
        """Capacity came back in ``pool``: its capacity-parked groups are candidates again (see _wake_next)."""
        self._dirty[pool] = None
        self._unlisted[pool] = None
        if self._any_keys:
            self._dirty[ANY_POOL] = None
            self._unlisted[ANY_POOL] = None

    def _list_dirty(self) -> None:
        """Put the parked groups of newly dirty pools on the frontier: one cursor [orders, groups, index, needed, key,
        cursor number] per (pool, key, needed amount) bucket over a snapshot of it (sorted by order key; C-level list
        copies)."""
        cursors = self._cursors
        for pool in self._unlisted:
            for key, by_need in self._park.cap_buckets(pool).items():
                for needed, (orders, groups) in by_need.items():
                    cursor = [orders.copy(), groups.copy(), 0, needed, key, len(cursors)]
                    cursors.append(cursor)
                    self._advance(cursor)
        self._unlisted = {}

    def _advance(self, cursor: list) -> None:
        """Skip entries that are no longer parked or were tried in this cycle; re-queue the cursor at its next one."""
        orders: list[int] = cursor[0]
        groups: list[Group] = cursor[1]
        i: int = cursor[2]
        cycle_no = self._cycle_no
        while i < len(groups):
            group = groups[i]
            if group.parked and group.tried != cycle_no:
                cursor[2] = i
                self._token += 1
                heappush(self._frontier, (orders[i] << ORDER_SHIFT) | (self._token << TOKEN_SHIFT) | cursor[5])
                return
            i += 1

    def _wake_next(self, best_active: int | None) -> bool:
        """Wake the best capacity-parked group if it would come before ``best_active`` (the best key among the
        candidates already queued; None: there are none) and what it needs is free right now. Returns True if it
        woke one. Waking exactly when a group would be next, with the capacity measured then, means parked groups
        are neither re-examined en masse when a job finishes nor woken for capacity that others take first."""
        if self._unlisted:
            self._list_dirty()
        frontier = self._frontier
        tree = self._tree
        memo = self._wake_memo
        if memo is not None and frontier and frontier[0] is memo[0] and best_active is not None:
            # The same front entry as the last call that answered False: the answer stands if nothing it depended
            # on changed (the group still parked and untried, its need free, the holds and its quota's usage as
            # then, in the same cycle) and it still does not come before the best queued candidate.
            _, group, version, cycle_no, then, order, cursor = memo
            need: int = cursor[3]
            ckey: int = cursor[4]
            if (order >= best_active and group.parked and group.tried != cycle_no and cycle_no == self._cycle_no
                    and version == self._holds_version and need <= tree.cap[ckey] - tree.u[ROOT][ckey]
                    and tuple(map(tree.u[group.quota].__getitem__, group.term_keys)) == then):
                return False
        # Measured against what jobs physically use, not the effective usage: unlendable guarantees count in the latter,
        # and a job inside its own quota's guarantee may use capacity they occupy (with guarantees that exceed the
        # pool, the effective free amount is even negative). The examination itself applies the exact rule.
        cap, occupied = tree.cap, tree.u[ROOT]
        cycle_no = self._cycle_no
        cursors = self._cursors
        key_of = tree.keys.keys
        root_holds = self._root_holds
        orders: list[int]  # (typed: compiled, a cursor's fields are read natively, not as Python objects)
        groups: list[Group]
        i: int
        needed: int
        key: int
        number: int
        while frontier:
            top = frontier[0]
            cursor = cursors[top & CURSOR_MASK]
            orders, groups, i, needed, key, number = cursor
            group = groups[i]
            if group.parked and group.tried != cycle_no:
                order = orders[i]
                if needed > cap[key] - occupied[key]:
                    heappop(frontier)  # the whole bucket needs more than is free: capacity only returns by release
                    continue
                head = None
                steady = True  # whether the answer depends only on what _wake_memo records
                skip = False
                # Is this capacity held for someone else? _held_against, with its common case inline: a guarantee
                # hold of another group against a group that would borrow here (its order key's class when its first
                # pool is this key's pool, else its class in the option with this key, from the option's room under
                # its quota's guarantee).
                hs = root_holds[key]  # (holds on (ROOT, key))
                if hs is not None:
                    held = hs.guarantee
                    options = group.options
                    other = (group not in held or len(held) > 1) if held else False  # (the cheaper test first: len() is a call)
                    if options[0].pool == key_of[key][0] or len(options) == 1:  # (key_of[key].pool)
                        skip = other and order >= BORROWS
                    else:
                        steady = False  # (its class there reads its quota's usage on other keys)
                        if other:
                            uq = tree.u[group.quota]
                            for opt in options:
                                if key in opt.keys:
                                    for k, room in opt.room:
                                        if uq[k] > room:
                                            skip = True
                                            break
                                    break
                    if not skip:
                        head = group.head()
                        assert head is not None
                        skip = self._held_against(group, head, key, order)
                if not skip:
                    if head is None:
                        head = group.head()
                        assert head is not None
                    fresh = self._key(group.quota, group, head, self._now)
                    if fresh != order:  # ranked with the key it had when it was parked: re-rank it alone, then compare
                        self._skip(frontier, cursor, i)
                        self._token += 1
                        cursors.append([[fresh], [group], 0, needed, key, len(cursors)])
                        heappush(frontier, (fresh << ORDER_SHIFT) | (self._token << TOKEN_SHIFT) | (len(cursors) - 1))
                        continue
                    if best_active is not None and order >= best_active:
                        if steady:
                            self._wake_memo = (top, group, self._holds_version, cycle_no,
                                               tuple(map(tree.u[group.quota].__getitem__, group.term_keys)), order,
                                               cursor)
                        return False
                    self._skip(frontier, cursor, i)
                    self._wake(group)
                    return True
            # Past this entry: _skip, inline (most entries the frontier looks at are skipped)
            i += 1
            n = len(groups)
            while i < n:
                group = groups[i]
                if group.parked and group.tried != cycle_no:
                    cursor[2] = i
                    self._token += 1
                    heapreplace(frontier, (orders[i] << ORDER_SHIFT) | (self._token << TOKEN_SHIFT) | number)
                    break
                i += 1
            else:
                cursor[2] = i
                heappop(frontier)
        return False

    def _skip(self, frontier: list[int], cursor: list, i: int) -> None:
        """The frontier's top cursor moves past its entry ``i``: heappop, then _advance, in one heap step (the same
        entries, and the same tokens, as popping it and pushing the cursor back at its next entry)."""
        orders: list[int] = cursor[0]
        groups: list[Group] = cursor[1]
        cycle_no = self._cycle_no
        i += 1
        while i < len(groups):
            group = groups[i]
            if group.parked and group.tried != cycle_no:
                cursor[2] = i
                self._token += 1
                heapreplace(frontier, (orders[i] << ORDER_SHIFT) | (self._token << TOKEN_SHIFT) | cursor[5])
                return
            i += 1
        cursor[2] = i
        heappop(frontier)

    def _held_against(self, group: Group, head: QueuedRec, key: int, order: int) -> bool:
        """Is the pool-level capacity on ``key`` held against this group (so waking it would be pointless)?
        ``order`` is the group's order key (it carries its borrowing class for its first pool)."""
        holds = self._holds.get((ROOT, key))
        if holds is None:
            return False
        cls = order >> CLASS_SHIFT  # order_keys.key_class, inlined (as key_aged below)
        first = group.options[0]
        if len(group.options) > 1 and first.pool != self._tree.keys.keys[key].pool:
            for opt in group.options:
                if opt.keys.__contains__(key):
                    uq = self._tree.u[group.quota]  # its borrowing class there (borrow_class_and_share's)
                    cls = 0
                    for k, room in opt.room:
                        if uq[k] > room:
                            cls = 1
                            break
                    break
        return holds.blocking(group, head, cls, not order & NOT_AGED) is not None

    def _end_wakes(self, complete: bool) -> None:
        """After a cycle: if it ran to completion, every parked group that could use the free capacity was tried, so
        all pools are clean until capacity comes back; otherwise they stay dirty for the next cycle."""
        self._frontier = []
        self._cursors = []
        if complete:
            self._dirty = {}
            self._unlisted = {}
        else:
            self._unlisted = dict(self._dirty)
