"""Quota tree specifications, whole-tree validation and atomic scaling.

A quota is a node of one tree (Alibaba PAI QuotaTree, Kueue cohort / ClusterQueue, ClearML resource policy). Per
resource key ``(pool, resource)`` it may set:

- ``guarantee``: capacity it can always get back (PAI quota size, Kueue nominal quota, ClearML reservation);
- ``limit``: cap on the total usage of its subtree (>= guarantee, or unlimited; Kueue nominal + borrowing limit);
- ``lending_limit``: how much of its *unused* guarantee its siblings may borrow (None = all of it).

A key the quota does not mention has guarantee 0, no limit and is never counted as borrowing: the quota simply has no
opinion there (its ancestors and the pool's capacity still bound it). Set ``limit=0`` to forbid a pool.

Validation rules (``validate_tree``): ids unique, parents exist, no cycles, limit >= guarantee, lending limit <=
guarantee, guarantee finite, weight >= 0, min runtime >= 0, and per key the children's guarantees summed may not exceed
the parent's guarantee. ``scale`` applies several guarantee changes at once and validates the result as a whole.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum

from allotment.core.quantity import RESOURCES, UNLIMITED, ZERO, Quantity, format_quantity, parse_quantity
from allotment.core.resources import ResourceKey


class Reclaim(StrEnum):
    """May a quota below its guarantee preempt jobs of other quotas that borrow? (Kueue reclaimWithinCohort)"""

    NEVER = "never"
    LOWER_PRIORITY = "lower_priority"
    ANY = "any"


class WithinQuota(StrEnum):
    """May a job preempt lower-priority jobs of its own quota? (Kueue withinClusterQueue)"""

    NEVER = "never"
    LOWER_PRIORITY = "lower_priority"


@dataclass(frozen=True, slots=True)
class QuotaLimits:
    guarantee: Quantity = ZERO
    limit: Quantity = UNLIMITED
    lending_limit: Quantity | None = None

    @classmethod
    def parse(
        cls,
        resource: str,
        guarantee: str | float = 0,
        limit: str | float = "unlimited",
        lending_limit: str | float | None = None,
    ) -> QuotaLimits:
        """``QuotaLimits.parse("gpu", 8, 16)`` reads human amounts of ``resource``."""
        return cls(
            parse_quantity(guarantee, resource),
            parse_quantity(limit, resource),
            None if lending_limit is None else parse_quantity(lending_limit, resource),
        )


@dataclass(frozen=True, slots=True)
class QuotaSpec:
    id: str
    parent_id: str | None = None
    weight: float = 1.0
    resources: Mapping[ResourceKey, QuotaLimits] = field(default_factory=dict)
    child_preemption: bool = False
    reclaim: Reclaim = Reclaim.NEVER
    within_quota_preemption: WithinQuota = WithinQuota.NEVER
    min_runtime_s: float = 0.0
    allowed_priority_classes: frozenset[str] | None = None  # None: every class allowed

    def __post_init__(self) -> None:
        # Accept plain tuples / strings from callers and normalise once, so the rest of core can rely on the types.
        object.__setattr__(self, "resources", {ResourceKey(*k): v for k, v in dict(self.resources).items()})
        object.__setattr__(self, "reclaim", Reclaim(self.reclaim))
        object.__setattr__(self, "within_quota_preemption", WithinQuota(self.within_quota_preemption))
        if self.allowed_priority_classes is not None:
            object.__setattr__(self, "allowed_priority_classes", frozenset(self.allowed_priority_classes))

    def limits_for(self, k: tuple[str, str]) -> QuotaLimits | None:
        return self.resources.get(ResourceKey(*k))


@dataclass(frozen=True, slots=True)
class TreeError:
    """One problem found in a quota tree. ``code`` is machine-readable, ``message`` a sentence with the numbers."""

    code: str
    quota_id: str
    message: str

    def __str__(self) -> str:
        return self.message


class InvalidQuotaTree(ValueError):
    def __init__(self, errors: Sequence[TreeError]) -> None:
        self.errors = list(errors)
        super().__init__("; ".join(e.message for e in self.errors))


def _fmt(q: Quantity, k: ResourceKey) -> str:
    return f"{format_quantity(q, k.resource)} {k.describe()}"


def _check_one(spec: QuotaSpec, errors: list[TreeError]) -> None:
    qid = spec.id
    if not (spec.weight >= 0):  # also refuses NaN
        errors.append(TreeError("invalid_weight", qid, f"quota {qid}: weight must be zero or more, got {spec.weight}"))
    if not (spec.min_runtime_s >= 0):
        errors.append(
            TreeError("invalid_min_runtime", qid, f"quota {qid}: min_runtime_s must be zero or more, got {spec.min_runtime_s}")
        )
    for k, lim in spec.resources.items():
        if k.resource not in RESOURCES:
            errors.append(TreeError("unknown_resource", qid, f"quota {qid}: unknown resource {k.resource!r}"))
            continue
        if lim.guarantee.is_unlimited:
            errors.append(TreeError("unlimited_guarantee", qid, f"quota {qid}: a guarantee cannot be unlimited ({k.describe()})"))
        if lim.limit < lim.guarantee:
            errors.append(
                TreeError(
                    "limit_below_guarantee",
                    qid,
                    f"quota {qid}: limit of {_fmt(lim.limit, k)} is below its guarantee of "
                    f"{format_quantity(lim.guarantee, k.resource)}",
                )
            )
        if lim.lending_limit is not None and lim.lending_limit > lim.guarantee:
            errors.append(
                TreeError(
                    "lending_above_guarantee",
                    qid,
                    f"quota {qid}: lending limit of {_fmt(lim.lending_limit, k)} exceeds its guarantee of "
                    f"{format_quantity(lim.guarantee, k.resource)}",
                )
            )


def _find_cycles(by_id: Mapping[str, QuotaSpec]) -> list[TreeError]:
    errors: list[TreeError] = []
    state: dict[str, int] = {}  # 1 = on the current walk, 2 = known to reach a root
    for start in by_id:
        walk: list[str] = []
        node: str | None = start
        while node is not None and node in by_id and state.get(node) is None:
            state[node] = 1
            walk.append(node)
            node = by_id[node].parent_id
        if node is not None and state.get(node) == 1:
            loop = walk[walk.index(node):] + [node]
            errors.append(TreeError("cycle", node, f"quota {node}: parent chain forms a cycle: {' -> '.join(loop)}"))
        for n in walk:
            state[n] = 2
    return errors


def validate_tree(
    specs: Iterable[QuotaSpec], capacity: Mapping[tuple[str, str], Quantity] | None = None
) -> list[TreeError]:
    """All problems of a quota tree, empty when valid. ``capacity`` (optional) also checks top-level guarantees
    against the physical pool capacity."""
    specs = list(specs)
    errors: list[TreeError] = []
    by_id: dict[str, QuotaSpec] = {}
    for spec in specs:
        if not spec.id:
            errors.append(TreeError("invalid_id", "", "a quota needs a non-empty id"))
            continue
        if spec.id in by_id:
            errors.append(TreeError("duplicate_quota", spec.id, f"quota {spec.id} is defined twice"))
            continue
        by_id[spec.id] = spec
    for spec in by_id.values():
        if spec.parent_id is not None and spec.parent_id not in by_id:
            errors.append(TreeError("unknown_parent", spec.id, f"quota {spec.id}: parent quota {spec.parent_id} does not exist"))
        if spec.parent_id == spec.id:
            continue  # reported as a cycle below
        _check_one(spec, errors)
    errors.extend(_find_cycles(by_id))

    # Children's guarantees must fit in the parent's guarantee, key by key (a PAI parent is split into its children).
    sums: dict[str | None, dict[ResourceKey, int]] = {}
    for spec in by_id.values():
        if spec.parent_id is not None and spec.parent_id not in by_id:
            continue
        per_key = sums.setdefault(spec.parent_id, {})
        for k, lim in spec.resources.items():
            if lim.guarantee and not lim.guarantee.is_unlimited:
                per_key[k] = per_key.get(k, 0) + lim.guarantee.raw
    for parent_id, per_key in sums.items():
        for k, total in sorted(per_key.items()):
            if parent_id is None:
                if capacity is None or k not in capacity:
                    continue
                cap = capacity[k]
                if total > cap.raw:
                    errors.append(
                        TreeError(
                            "guarantees_exceed_capacity",
                            "",
                            f"top-level quotas guarantee {_fmt(Quantity(total), k)} but the pool has only "
                            f"{format_quantity(cap, k.resource)}",
                        )
                    )
                continue
            parent = by_id[parent_id]
            lim = parent.resources.get(k)
            parent_g = lim.guarantee if lim is not None else ZERO
            if total > parent_g.raw:
                errors.append(
                    TreeError(
                        "children_exceed_guarantee",
                        parent_id,
                        f"children of quota {parent_id} guarantee {_fmt(Quantity(total), k)} but {parent_id} "
                        f"guarantees {format_quantity(parent_g, k.resource)}",
                    )
                )
    return errors


class ScaleError(InvalidQuotaTree):
    """A scale request that would leave the tree invalid; nothing was applied."""


def scale(
    specs: Iterable[QuotaSpec],
    changes: Mapping[str, Mapping[tuple[str, str], Quantity | QuotaLimits]],
    capacity: Mapping[tuple[str, str], Quantity] | None = None,
) -> tuple[QuotaSpec, ...]:
    """Apply several quota size changes atomically and return the new tree; raise ScaleError if the result is invalid.

    ``changes`` maps quota id -> key -> new guarantee (a Quantity) or full QuotaLimits. With a bare Quantity the limit
    follows the guarantee when the two were equal (a fixed-size PAI quota stays fixed-size); otherwise it is kept.
    Example (PAI): ``scale(tree, {"Quota1.1": {("a100", "gpu"): 56 GPUs}, "Quota1.2": {("a100", "gpu"): 72 GPUs}})``.
    """
    specs = list(specs)
    by_id = {s.id: s for s in specs}
    errors = [
        TreeError("unknown_quota", qid, f"cannot scale quota {qid}: it does not exist")
        for qid in changes
        if qid not in by_id
    ]
    if errors:
        raise ScaleError(errors)
    out: list[QuotaSpec] = []
    for spec in specs:
        change = changes.get(spec.id)
        if not change:
            out.append(spec)
            continue
        resources = dict(spec.resources)
        for k, new in change.items():
            k = ResourceKey(*k)
            if isinstance(new, QuotaLimits):
                resources[k] = new
                continue
            old = resources.get(k, QuotaLimits())
            limit = new if old.limit == old.guarantee else old.limit
            resources[k] = QuotaLimits(new, limit, old.lending_limit)
        out.append(replace(spec, resources=resources))
    errors = validate_tree(out, capacity)
    if errors:
        raise ScaleError(errors)
    return tuple(out)
