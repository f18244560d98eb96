"""A two-level index for placement on nodes: items (nodes or devices) filed under a GPU key (a node's number of
completely free devices, or a device's free share) and, inside it, a level (its node's whole free cores).

A search walks the keys in best-fit order and, inside a key, only the levels from the job's cores up, so nodes short
of CPU are never visited; what is left to check per item is memory (and the fraction of a core below a level).
Items of one (key, level) are kept in insertion order and read newest first, as DevicePool's buckets are.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterator


class FitIndex:
    __slots__ = ("_items", "_levels", "_where")

    def __init__(self) -> None:
        self._items: dict[int, dict[int, dict[str, None]]] = {}  # key -> level -> items
        self._levels: dict[int, list[int]] = {}  # key -> its levels, sorted
        self._where: dict[str, tuple[int, int]] = {}  # item -> (key, level)

    def __len__(self) -> int:
        return len(self._where)

    def where(self, item: str) -> tuple[int, int] | None:
        return self._where.get(item)

    def put(self, item: str, key: int, level: int) -> None:
        """File ``item`` under (key, level), moving it from where it was."""
        old = self._where.get(item)
        if old == (key, level):
            return
        if old is not None:
            self._unfile(item, old)
        by_level = self._items.get(key)
        if by_level is None:
            by_level = self._items[key] = {}
            self._levels[key] = []
        bucket = by_level.get(level)
        if bucket is None:
            bucket = by_level[level] = {}
            insort(self._levels[key], level)
        bucket[item] = None
        self._where[item] = (key, level)

    def drop(self, item: str) -> None:
        old = self._where.get(item)
        if old is not None:
            self._unfile(item, old)

    def _unfile(self, item: str, at: tuple[int, int]) -> None:
        key, level = at
        by_level = self._items[key]
        bucket = by_level[level]
        # popitem() when it is the last entry: `del` there leaves a tombstone that slows reversed() iteration
        if next(reversed(bucket)) == item:
            bucket.popitem()
        else:
            del bucket[item]
        if not bucket:
            del by_level[level]
            levels = self._levels[key]
            del levels[bisect_left(levels, level)]
            if not levels:
                del self._items[key], self._levels[key]
        del self._where[item]

    def has(self, key: int) -> bool:
        return key in self._items

    def scan(self, key: int, least: int) -> Iterator[str]:
        """The items filed under ``key`` at level ``least`` or above: the lowest level first (the tightest fit on
        cores), newest first inside a level."""
        levels = self._levels.get(key)
        if not levels:
            return
        by_level = self._items[key]
        for level in levels[bisect_left(levels, least):]:
            yield from reversed(by_level[level])
