"""Resource keys and vectors.

A resource key is ``(pool, resource)``: GPUs are counted per pool (so per GPU model), and so are cpu and memory.
The pool ``ANY_POOL`` ("*") stands for the sum over all pools; a quota may set a guarantee or limit on it (ClearML
resource policies reserve "8 GPUs" without naming a pool). A job placed in pool ``p`` counts on ``(p, r)`` and on
``("*", r)``.

``ResourceVector`` is an immutable mapping key -> Quantity for the public API (quota usage, requests). The scheduler's
hot path does not use it: it compiles requests to tuples of ``(key index, raw int)``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import NamedTuple

from allotment.core.quantity import RESOURCES, ZERO, Quantity, format_quantity, parse_quantity

ANY_POOL = "*"


class ResourceKey(NamedTuple):
    pool: str
    resource: str

    def describe(self) -> str:
        """'gpu in pool a100' / 'gpu in all pools' (used in messages)."""
        where = "all pools" if self.pool == ANY_POOL else f"pool {self.pool}"
        return f"{self.resource} in {where}"


def key(pool: str, resource: str) -> ResourceKey:
    if resource not in RESOURCES:
        raise ValueError(f"unknown resource {resource!r}: expected one of {', '.join(RESOURCES)}")
    if not pool:
        raise ValueError("a resource key needs a pool name")
    return ResourceKey(pool, resource)


def parse_requests(values: Mapping[str, str | int | float | Quantity]) -> dict[str, Quantity]:
    """{"gpu": "0.5", "memory": "16Gi"} -> {"gpu": Quantity(500), "memory": Quantity(17179869184)}.

    Zero amounts are dropped; unknown resources and unlimited requests raise ValueError.
    """
    out: dict[str, Quantity] = {}
    for resource, value in values.items():
        quantity = parse_quantity(value, resource)
        if quantity.is_unlimited:
            raise ValueError(f"a job cannot request unlimited {resource}")
        if quantity:
            out[resource] = quantity
    return out


class ResourceVector(Mapping[ResourceKey, Quantity]):
    """Immutable mapping ResourceKey -> Quantity; missing keys read as zero. Zero entries are not stored."""

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[ResourceKey, Quantity] | Mapping[tuple[str, str], Quantity] | None = None) -> None:
        clean: dict[ResourceKey, Quantity] = {}
        for k, v in (items or {}).items():
            if not isinstance(v, Quantity):
                raise TypeError(f"ResourceVector values must be Quantity, got {type(v).__name__} for {k}")
            if v:
                clean[ResourceKey(*k)] = v
        self._items = clean

    def __getitem__(self, k: tuple[str, str]) -> Quantity:
        return self._items.get(ResourceKey(*k), ZERO)

    def __iter__(self) -> Iterator[ResourceKey]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, k: object) -> bool:
        return k in self._items

    def __add__(self, other: ResourceVector) -> ResourceVector:
        merged = dict(self._items)
        for k, v in other.items():
            merged[k] = merged.get(k, ZERO) + v
        return ResourceVector(merged)

    def __sub__(self, other: ResourceVector) -> ResourceVector:
        """Saturating: a key never goes below zero."""
        merged = dict(self._items)
        for k, v in other.items():
            merged[k] = merged.get(k, ZERO) - v
        return ResourceVector(merged)

    def fits(self, within: Mapping[tuple[str, str], Quantity]) -> bool:
        """True when every amount here is at most the amount in ``within`` (missing there = zero)."""
        return all(v <= within.get(k, ZERO) for k, v in self._items.items())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ResourceVector):
            return self._items == other._items
        return NotImplemented

    def __hash__(self) -> int:
        return hash(frozenset(self._items.items()))

    def describe(self) -> str:
        parts = [f"{format_quantity(v, k.resource)} {k.describe()}" for k, v in sorted(self._items.items())]
        return ", ".join(parts) if parts else "nothing"

    def __repr__(self) -> str:
        return f"ResourceVector({self.describe()})"
