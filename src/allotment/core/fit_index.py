"""A three-level index for placement on nodes: items (nodes or devices) filed under a key (a node's number of
completely free devices, or a device's free share; for CPU-only jobs whether a node has free GPU) and, inside it,
their node's whole free cores, then its free memory in GiB (``levels``).

A search walks the keys in best-fit order and, inside a key, only the core levels from the job's cores up and in
each only the memory levels from the job's memory up, so nodes short of CPU or memory are not visited; what is
left to check per item is the fraction of a core or GiB below a level. Items of one cell are kept in insertion
order and read newest first, as DevicePool's buckets are.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from typing import Final

# Final: compiled (mypyc), a C static, where an imported name is a globals lookup on every call
bisect_left: Final = bisect.bisect_left
insort: Final = bisect.insort

Cell = tuple[int, int, int]  # (key, cores, GiB)


class FitIndex:
    __slots__ = ("_cells", "_cores", "_mems", "filed")

    def __init__(self) -> None:
        self._cells: dict[Cell, dict[str, None]] = {}  # (key, cores, GiB) -> items
        self._cores: dict[int, list[int]] = {}  # key -> its core levels, sorted
        self._mems: dict[tuple[int, int], list[int]] = {}  # (key, cores) -> its memory levels, sorted
        self.filed: dict[str, Cell] = {}  # item -> its cell (read only outside)

    def __len__(self) -> int:
        return len(self.filed)

    def where(self, item: str) -> Cell | None:
        return self.filed.get(item)

    def put(self, item: str, key: int, cores: int, mem: int) -> None:
        """File ``item`` in (key, cores, mem), moving it from where it was."""
        cell = (key, cores, mem)
        old = self.filed.get(item)
        if old == cell:
            return
        if old is not None:
            self._unfile(item, old)
        bucket = self._cells.get(cell)
        if bucket is None:
            bucket = self._cells[cell] = {}
            mems = self._mems.get((key, cores))
            if mems is None:
                mems = self._mems[(key, cores)] = []
                insort(self._cores.setdefault(key, []), cores)
            insort(mems, mem)
        bucket[item] = None
        self.filed[item] = cell

    def drop(self, item: str) -> None:
        old = self.filed.get(item)
        if old is not None:
            self._unfile(item, old)

    def _unfile(self, item: str, cell: Cell) -> None:
        bucket = self._cells[cell]
        # popitem() when it is the last entry: `del` there leaves a tombstone that slows reversed() iteration
        if next(reversed(bucket)) == item:
            bucket.popitem()
        else:
            del bucket[item]
        if not bucket:
            del self._cells[cell]
            key, cores, mem = cell
            mems = self._mems[(key, cores)]
            del mems[bisect_left(mems, mem)]
            if not mems:
                del self._mems[(key, cores)]
                levels = self._cores[key]
                del levels[bisect_left(levels, cores)]
                if not levels:
                    del self._cores[key]
        del self.filed[item]

    def has(self, key: int) -> bool:
        return key in self._cores

    def scan(self, key: int, cores: int, mem: int, newest: bool = True, most_cores: bool = False) -> Iterator[str]:
        """The items filed under ``key`` with at least ``cores`` and ``mem`` levels: the fewest cores first (the most
        first with ``most_cores``), then the least memory; inside a cell newest first (oldest first unless
        ``newest``)."""
        levels = self._cores.get(key)
        if not levels or levels[-1] < cores:
            return
        mems_of, cells = self._mems, self._cells
        # index ranges, not slices: a slice copies every level above (hundreds of memory levels when nodes differ)
        first = bisect_left(levels, cores)
        for i in range(len(levels) - 1, first - 1, -1) if most_cores else range(first, len(levels)):
            c = levels[i]
            mems = mems_of[(key, c)]
            if mems[-1] < mem:
                continue
            for j in range(bisect_left(mems, mem), len(mems)):
                cell = cells[(key, c, mems[j])]
                yield from reversed(cell) if newest else cell
