"""GPU placement inside one pool: fractional jobs share devices, whole-GPU jobs get whole free devices.

Rules:
- A fractional request (below one GPU) goes to ONE device, best fit: the device with the least free capacity that
  still holds it, so partially used devices fill up before a whole device is broken into.
- A whole request (n GPUs) takes n devices that are completely free on ONE node, the node with the fewest free
  devices that suffice (best fit by node). It is never split over nodes: no single process could use such a set
  (multi-node jobs are explicit gangs, placed per node by placement.NodePool).
- A device is never oversubscribed: every placement is checked against its free capacity.

Indexes (so a decision costs O(distinct free values + nodes), not O(devices)): devices grouped by free amount with a
sorted list of the distinct amounts, and completely free devices grouped by node.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterable, Sequence
from typing import Final

from allotment.core.quantity import Quantity, format_raw

# Final: compiled (mypyc), a C static, where an imported name is a globals lookup on every call
bisect_left: Final = bisect.bisect_left
insort: Final = bisect.insort
islice: Final = itertools.islice

WHOLE: Final = 1000  # milli-GPU in one GPU
_ONE_GPU = Quantity(WHOLE)  # immutable, shared

Shares = tuple[tuple[str, int], ...]  # ((device id, raw amount), ...)


class DevicePool:
    def __init__(self, name: str, devices: Iterable[tuple[str, int, int, str]]) -> None:
        """``devices``: (device id, free raw, capacity raw, node) in a stable order."""
        self.name = name
        self.free: dict[str, int] = {}
        self.cap: dict[str, int] = {}
        self.node: dict[str, str] = {}
        self._by_free: dict[int, dict[str, None]] = {}  # free amount (> 0) -> devices, insertion-ordered
        self._free_values: list[int] = []  # sorted distinct keys of _by_free
        self._whole: dict[str, dict[str, None]] = {}  # node -> completely free whole devices
        self._nodes_by_count: dict[int, dict[str, None]] = {}  # n -> nodes with exactly n completely free devices
        self._max_per_node = 0
        self.whole_count = 0
        self.total_free = 0
        self.total_capacity = 0
        self.largest_capacity = 0
        self.whole_devices = 0  # devices of exactly one GPU (the only ones whole-GPU jobs use)
        # Per device, built once and shared by every placement (no allocation per admission): (device, WHOLE),
        # the one-device placement ((device, WHOLE),), and the same as Admit decisions list it (Quantity amounts).
        self._unit: dict[str, tuple[str, int]] = {}
        self._single: dict[str, Shares] = {}
        self.public: dict[str, tuple[str, Quantity]] = {}
        self.public_single: dict[str, tuple[tuple[str, Quantity]]] = {}
        self._fractions: dict[str, dict[int, Shares]] = {}  # see _fraction
        self._caps: dict[int, int] = {}  # capacity -> number of devices with it (largest_capacity after removals)
        self.whole_on_node: dict[str, int] = {}  # node -> devices of one whole GPU on it, free or not
        for dev, free, cap, node in devices:
            self._add_device(dev, free, cap, node)

    def _add_device(self, dev: str, free: int, cap: int, node: str) -> None:
        name = self.name
        if dev in self.free:
            raise ValueError(f"pool {name}: device {dev} listed twice")
        if not 0 < cap <= WHOLE:
            raise ValueError(f"pool {name}: device {dev} capacity must be above 0 and at most one GPU")
        if not 0 <= free <= cap:
            raise ValueError(f"pool {name}: device {dev} free {format_raw(free, 'gpu')} outside 0..capacity")
        self.cap[dev] = cap
        self.node[dev] = node
        self.free[dev] = 0
        self.total_capacity += cap
        self._caps[cap] = self._caps.get(cap, 0) + 1
        self.largest_capacity = max(self.largest_capacity, cap)
        if cap == WHOLE:
            self.whole_devices += 1
            self.whole_on_node[node] = self.whole_on_node.get(node, 0) + 1
        self._unit[dev] = unit = (dev, WHOLE)
        self._single[dev] = (unit,)
        self.public[dev] = pub = (dev, _ONE_GPU)
        self.public_single[dev] = (pub,)
        self._set_free(dev, free)

    def _remove_device(self, dev: str) -> None:
        """Forget a device (its node left or was drained); jobs holding shares of it release nothing here."""
        self._set_free(dev, 0)
        cap = self.cap.pop(dev)
        node = self.node.pop(dev)
        del self.free[dev]
        self.total_capacity -= cap
        self._caps[cap] -= 1
        if not self._caps[cap]:
            del self._caps[cap]
            self.largest_capacity = max(self._caps, default=0)
        if cap == WHOLE:
            self.whole_devices -= 1
            self.whole_on_node[node] -= 1
            if not self.whole_on_node[node]:
                del self.whole_on_node[node]
        for index in (self._unit, self._single, self.public, self.public_single, self._fractions):
            index.pop(dev, None)

    # -- index maintenance ----------------------------------------------------------------------------------------
    def _set_free(self, dev: str, new: int) -> None:
        free = self.free
        old = free[dev]
        if old == new:
            return
        by_free = self._by_free
        whole_device = self.cap[dev] == WHOLE
        if old > 0:
            bucket = by_free[old]
            # popitem() when it is the last entry: deleting from the end with `del` would leave a tombstone there
            # and make reversed() iteration (used by choose) slower and slower.
            if next(reversed(bucket)) == dev:
                bucket.popitem()
            else:
                del bucket[dev]
            if not bucket:
                del by_free[old]
                values = self._free_values
                del values[bisect_left(values, old)]
            if old == WHOLE and whole_device:
                node = self.node[dev]
                node_set = self._whole[node]
                del node_set[dev]
                self._move_node(node, len(node_set) + 1, len(node_set))
                if not node_set:
                    del self._whole[node]
                self.whole_count -= 1
        free[dev] = new
        self.total_free += new - old
        if new > 0:
            new_bucket = by_free.get(new)
            if new_bucket is None:
                by_free[new] = {dev: None}
                insort(self._free_values, new)
            else:
                new_bucket[dev] = None
            if new == WHOLE and whole_device:
                node = self.node[dev]
                new_set = self._whole.get(node)
                if new_set is None:
                    new_set = self._whole[node] = {}
                new_set[dev] = None
                self._move_node(node, len(new_set) - 1, len(new_set))
                self.whole_count += 1

    def _move_node(self, node: str, before: int, after: int) -> None:
        if before:
            bucket = self._nodes_by_count[before]
            if next(reversed(bucket)) == node:  # see _set_free: keep the end of the dict free of tombstones
                bucket.popitem()
            else:
                del bucket[node]
            if not bucket:
                del self._nodes_by_count[before]
        if after:
            self._nodes_by_count.setdefault(after, {})[node] = None
            self._max_per_node = max(self._max_per_node, after)

    # -- placement --------------------------------------------------------------------------------------------------
    def choose(self, amount: int) -> Shares | None:
        """Where ``amount`` milli-GPU would go, or None if it does not fit. Does not change anything."""
        if amount <= 0:
            return ()
        if amount < WHOLE:
            values = self._free_values
            i = bisect_left(values, amount)
            if i == len(values):
                return None
            value = values[i]
            if value == WHOLE and self._nodes_by_count:
                # A completely free device must be broken into: take it from the node with the fewest free
                # devices, keeping fuller nodes intact for whole-GPU jobs.
                nodes = self._nodes_by_count[min(self._nodes_by_count)]  # buckets are never empty
                return self._fraction(next(iter(self._whole[next(reversed(nodes))])), amount)
            # The last device of the bucket: buckets are stacks (see _set_free), so this stays O(1).
            return self._fraction(next(reversed(self._by_free[value])), amount)
        n = amount // WHOLE
        if n > self.whole_count:
            return None
        count = self._fewest(n)  # best fit: the node with the fewest free devices that suffice
        if count is None:
            return None  # no single node has enough
        return tuple([(d, WHOLE) for d in islice(self._whole[next(reversed(self._nodes_by_count[count]))], n)])

    def _fewest(self, n: int) -> int | None:
        """The fewest completely free devices, at least ``n``, that a node has (None: no node has ``n``). The counts
        are walked up from ``n``, unless fewer distinct counts exist than that walk's length (a pool of few large
        nodes, e.g. one node of hundreds of devices): then they are compared directly. Empty buckets are deleted."""
        by_count, top = self._nodes_by_count, self._max_per_node
        if top - n < len(by_count):
            for count in range(n, top + 1):
                if count in by_count:
                    return count
            return None
        best: int | None = None
        for count in by_count:
            if n <= count and (best is None or count < best):
                best = count
        return best

    def _fraction(self, dev: str, amount: int) -> Shares:
        """((dev, amount),), built once per device and amount (shares come in steps of the configured share step:
        at most 1000 / step per device)."""
        per_device = self._fractions.get(dev)
        if per_device is None:
            per_device = self._fractions[dev] = {}
        shares = per_device.get(amount)
        if shares is None:
            shares = per_device[amount] = ((dev, amount),)
        return shares

    def could_ever_fit(self, amount: int) -> bool:
        """Would ``amount`` fit in this pool if every device were free?"""
        if amount <= 0:
            return True
        if amount < WHOLE:
            return self.largest_capacity >= amount
        n = amount // WHOLE
        return self.whole_devices >= n and max(self.whole_on_node.values(), default=0) >= n

    def place(self, amount: int) -> Shares | None:
        """choose() and take() in one step (the admission hot path)."""
        if amount < WHOLE:
            values = self._free_values
            i = bisect_left(values, amount)
            if i == len(values):
                return None
            value = values[i]
            by_free, by_count = self._by_free, self._nodes_by_count
            # choose(), _fraction() and _set_free() inlined for the two common cases; the device found is moved from
            # the bucket of its free amount to the bucket of what it has left.
            if value < WHOLE:  # a device already shared: the last device of the bucket
                bucket = by_free[value]
                dev = bucket.popitem()[0]
                if not bucket:
                    del by_free[value]
                    del values[i]
            elif value == WHOLE and by_count:
                # Break into a completely free device of the node with the fewest (as choose()).
                least = min(by_count)  # the fewest (buckets are never empty)
                nodes = by_count[least]
                node = nodes.popitem()[0]  # the bucket's last node, as choose() takes; it moves to least - 1
                if not nodes:
                    del by_count[least]
                node_set = self._whole[node]
                dev = next(iter(node_set))
                del node_set[dev]
                if node_set:
                    by_count.setdefault(least - 1, {})[node] = None
                else:
                    del self._whole[node]
                self.whole_count -= 1
                bucket = by_free[WHOLE]
                if next(reversed(bucket)) == dev:  # as _set_free: no tombstone at the end of the bucket
                    bucket.popitem()
                else:
                    del bucket[dev]
                if not bucket:
                    del by_free[WHOLE]
                    del values[i]
            else:
                shares = self.choose(amount)
                if shares:
                    dev = shares[0][0]
                    self._set_free(dev, self.free[dev] - amount)
                return shares
            shares = self._fraction(dev, amount)
            left = value - amount
            self.free[dev] = left
            self.total_free -= amount
            if left:
                left_bucket = by_free.get(left)
                if left_bucket is None:
                    by_free[left] = {dev: None}
                    insort(values, left)
                else:
                    left_bucket[dev] = None
            return shares
        n = amount // WHOLE
        if n > self.whole_count:
            return None
        by_count = self._nodes_by_count
        count = self._fewest(n)  # as choose(): the best-fitting node, taken directly
        if count is None:
            return None  # no single node has enough
        bucket = by_count[count]
        node = next(reversed(bucket))
        node_set = self._whole[node]
        free, whole_bucket, unit = self.free, self._by_free[WHOLE], self._unit
        if n == 1:
            dev = next(iter(node_set))
            shares = self._single[dev]
            del whole_bucket[dev]
            free[dev] = 0
            del node_set[dev]
        else:
            devs = list(islice(node_set, n))
            shares = tuple(map(unit.__getitem__, devs))
            for dev in devs:
                del whole_bucket[dev]
                free[dev] = 0
                del node_set[dev]
        # self._move_node(node, count, count - n), inlined (node is the bucket's last entry)
        bucket.popitem()
        if not bucket:
            del by_count[count]
        if count == n:
            del self._whole[node]
        else:
            by_count.setdefault(count - n, {})[node] = None
        if not whole_bucket:
            del self._by_free[WHOLE]
            del self._free_values[bisect_left(self._free_values, WHOLE)]
        self.whole_count -= n
        self.total_free -= amount
        return shares

    def could_fit_after(self, amount: int, freed: dict[str, int]) -> bool:
        """Would a fractional ``amount`` fit one device if ``freed`` (device -> amount) were given back?"""
        if self._free_values and self._free_values[-1] >= amount:
            return True
        free = self.free
        for dev, x in freed.items():
            if free[dev] + x >= amount:
                return True
        return False

    def take(self, shares: Sequence[tuple[str, int]]) -> None:
        for dev, amt in shares:
            free = self.free.get(dev)
            if free is None:
                raise KeyError(f"pool {self.name}: unknown device {dev}")
            if amt > free:
                raise ValueError(f"pool {self.name}: device {dev} would be oversubscribed")
            self._set_free(dev, free - amt)

    def release(self, shares: Sequence[tuple[str, int]]) -> None:
        for dev, amt in shares:
            free = self.free.get(dev)
            if free is None:
                continue  # the device left the pool; nothing to give back
            self._set_free(dev, min(free + amt, self.cap[dev]))

    def _give_back(self, shares: Sequence[tuple[str, int]]) -> None:
        """release() where nothing is layered on _set_free and _move_node (an untracked placement.NodePool: its
        overrides only drop memos, which the caller does): a device that comes back completely free, the common case,
        is filed inline, exactly as _set_free and _move_node file it; anything else goes through _set_free."""
        free, cap, node_of = self.free, self.cap, self.node
        for dev, amt in shares:
            old = free.get(dev)
            if old is None:
                continue  # the device left the pool; nothing to give back
            new = old + amt
            if new != WHOLE or old or cap[dev] != WHOLE:
                DevicePool._set_free(self, dev, min(new, cap[dev]))
                continue
            free[dev] = WHOLE
            self.total_free += WHOLE
            by_free = self._by_free
            bucket = by_free.get(WHOLE)
            if bucket is None:
                by_free[WHOLE] = {dev: None}
                insort(self._free_values, WHOLE)
            else:
                bucket[dev] = None
            node = node_of[dev]
            node_set = self._whole.get(node)
            if node_set is None:
                node_set = self._whole[node] = {}
            node_set[dev] = None
            after = len(node_set)
            by_count = self._nodes_by_count
            if after > 1:  # DevicePool._move_node(node, after - 1, after), inlined
                before = by_count[after - 1]
                if next(reversed(before)) == node:
                    before.popitem()
                else:
                    del before[node]
                if not before:
                    del by_count[after - 1]
            moved = by_count.get(after)
            if moved is None:
                by_count[after] = {node: None}
            else:
                moved[node] = None
            if after > self._max_per_node:  # noqa: PLR1730 - hot loop: a comparison is ~5x cheaper than max()
                self._max_per_node = after
            self.whole_count += 1

    def shortfall(self, amount: int) -> str:
        """Sentence explaining why ``amount`` does not fit (used after choose() returned None)."""
        if amount < WHOLE:
            largest = self._free_values[-1] if self._free_values else 0
            return (
                f"pool {self.name}: no device has {format_raw(amount, 'gpu')} gpu free "
                f"(largest free share {format_raw(largest, 'gpu')} gpu, {format_raw(self.total_free, 'gpu')} gpu "
                f"free in total)"
            )
        most = max(map(len, self._whole.values()), default=0)
        return (
            f"pool {self.name}: {amount // WHOLE} completely free devices needed on one node, at most {most} free "
            f"on a node ({self.whole_count} in the pool, {format_raw(self.total_free, 'gpu')} gpu free in total)"
        )
