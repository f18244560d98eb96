"""GPU placement inside one pool: fractional jobs share devices, whole-GPU jobs get whole free devices.

Rules:
- A fractional request (below one GPU) goes to ONE device, best fit: the device with the least free capacity that
  still holds it, so partially used devices fill up before a whole device is broken into.
- A whole request (n GPUs) takes n devices that are completely free, preferring a single node that has just enough
  (best fit by node); otherwise it spreads over the nodes with the most free devices first.
- A device is never oversubscribed: every placement is checked against its free capacity.

Indexes (so a decision costs O(distinct free values + nodes), not O(devices)): devices grouped by free amount with a
sorted list of the distinct amounts, and completely free devices grouped by node.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable, Sequence

from allotment.core.quantity import format_raw

WHOLE = 1000  # milli-GPU in one GPU

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
        self.whole_count = 0
        self.total_free = 0
        self.total_capacity = 0
        for dev, free, cap, node in devices:
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
            self._set_free(dev, free)

    # -- index maintenance ----------------------------------------------------------------------------------------
    def _set_free(self, dev: str, new: int) -> None:
        old = self.free[dev]
        cap = self.cap[dev]
        if old > 0:
            bucket = self._by_free[old]
            del bucket[dev]
            if not bucket:
                del self._by_free[old]
                del self._free_values[bisect_left(self._free_values, old)]
            if old == cap == WHOLE:
                node_set = self._whole[self.node[dev]]
                del node_set[dev]
                self.whole_count -= 1
                if not node_set:
                    del self._whole[self.node[dev]]
        self.free[dev] = new
        self.total_free += new - old
        if new > 0:
            bucket = self._by_free.get(new)
            if bucket is None:
                bucket = self._by_free[new] = {}
                insort(self._free_values, new)
            bucket[dev] = None
            if new == cap == WHOLE:
                self._whole.setdefault(self.node[dev], {})[dev] = None
                self.whole_count += 1

    # -- placement --------------------------------------------------------------------------------------------------
    def choose(self, amount: int) -> Shares | None:
        """Where ``amount`` milli-GPU would go, or None if it does not fit. Does not change anything."""
        if amount <= 0:
            return ()
        if amount < WHOLE:
            i = bisect_left(self._free_values, amount)
            if i == len(self._free_values):
                return None
            bucket = self._by_free[self._free_values[i]]
            return ((next(iter(bucket)), amount),)
        n = amount // WHOLE
        if n > self.whole_count:
            return None
        best_node, best_count = None, 0
        for node, devs in self._whole.items():
            c = len(devs)
            if c >= n and (best_node is None or c < best_count):
                best_node, best_count = node, c
                if c == n:
                    break
        if best_node is not None:
            devs = self._whole[best_node]
            picked = [d for d, _ in zip(devs, range(n))]
        else:
            picked = []
            for node in sorted(self._whole, key=lambda nd: -len(self._whole[nd])):
                for d in self._whole[node]:
                    picked.append(d)
                    if len(picked) == n:
                        break
                if len(picked) == n:
                    break
        return tuple((d, WHOLE) for d in picked)

    def could_ever_fit(self, amount: int) -> bool:
        """Would ``amount`` fit in this pool if every device were free?"""
        if amount <= 0:
            return True
        if amount < WHOLE:
            return any(c >= amount for c in self.cap.values())
        return sum(1 for c in self.cap.values() if c == WHOLE) >= amount // WHOLE

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

    def shortfall(self, amount: int) -> str:
        """Sentence explaining why ``amount`` does not fit (used after choose() returned None)."""
        if amount < WHOLE:
            largest = self._free_values[-1] if self._free_values else 0
            return (
                f"pool {self.name}: no device has {format_raw(amount, 'gpu')} gpu free "
                f"(largest free share {format_raw(largest, 'gpu')} gpu, {format_raw(self.total_free, 'gpu')} gpu "
                f"free in total)"
            )
        return (
            f"pool {self.name}: {amount // WHOLE} completely free devices needed, {self.whole_count} available "
            f"({format_raw(self.total_free, 'gpu')} gpu free in total)"
        )
