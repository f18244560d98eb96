"""Quota tree specifications, whole-tree validation and atomic scaling.

A quota is a node of one tree (Alibaba PAI QuotaTree, Kueue cohort / ClusterQueue, ClearML resource policy). Per
resource key ``(pool, resource)`` it may set:

- ``guarantee``: capacity it can always get back (PAI quota size, Kueue nominal quota, ClearML reservation);
- ``limit``: cap on the total usage of its subtree (>= guarantee, or unlimited; Kueue nominal + borrowing limit);
- ``lending_limit``: how much of its *unused* guarantee its siblings may borrow (None = all of it).

A key the quota does not mention has guarantee 0, no limit and is never counted as borrowing: the quota simply has no
opinion there (its ancestors and the pool's capacity still bound it). Set ``limit=0`` to forbid a pool.

Validation rules (``validate_tree``): ids unique, parents exist, no cycles, limit >= guarantee, lending limit <=
guarantee, guarantee finite, weight >= 0, min runtime >= 0, and the children's guarantees fit in the parent's (below).
``scale`` applies several guarantee changes at once and validates the result as a whole.

Children's guarantees fit in the parent's, per resource ``r``. The pool ``*`` (ANY_POOL) means all pools together,
and a job placed in pool ``P`` counts on both ``(P, r)`` and ``(*, r)``, so a quota is within its guarantee in ``P``
only while it is within both of those it sets. What a child can claim as guaranteed is therefore:

- in pool ``P``: the smaller of its guarantees on ``(P, r)`` and ``(*, r)``, among those it sets (0 if neither):
  a guarantee on ``*`` may be claimed entirely in any one pool;
- in all pools together: its guarantee on ``(*, r)`` if it sets one, else the sum of its per-pool guarantees.

Against the parent:

1. per pool ``P`` named by the parent or by a child: the children's claims in ``P`` may not exceed the parent's
   guarantee on ``(P, r)`` if it sets one; otherwise its guarantee on ``(*, r)`` (then this is implied by rule 2,
   which reports it); otherwise 0;
2. if the parent sets ``(*, r)``: the children's claims in all pools together may not exceed that guarantee; if it
   sets only per-pool guarantees on ``r``, not their sum either (a child's all-pools guarantee may otherwise be
   claimed in pools its parent guarantees nothing in);
3. if the parent sets nothing for ``r`` at all, children may not claim any guarantee on ``(*, r)`` either.

So a child with 8 GPUs in ``a100`` fits under a parent guaranteeing 16 GPUs in ``*``; a child guaranteeing 8 in
``*`` fits under a parent guaranteeing 16 in ``a100`` (the child may take all 8 there), but not under one guaranteeing
4 in ``a100`` and 4 in ``h100`` (it might claim all 8 in either pool). Pools nobody names are not checked. This is
only validation: admission still treats every key on its own (core/usage.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum

from allotment.core.quantity import RESOURCES, UNLIMITED, ZERO, Quantity, format_quantity, parse_quantity
from allotment.core.resources import ANY_POOL, ResourceKey


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

    children: dict[str | None, list[QuotaSpec]] = {}
    for spec in by_id.values():
        if spec.parent_id is None or spec.parent_id in by_id:
            children.setdefault(spec.parent_id, []).append(spec)
    for parent_id, kids in children.items():
        if parent_id is None:
            if capacity is not None:
                errors.extend(_top_level_exceed_capacity(kids, capacity))
        else:
            errors.extend(_children_exceed_parent(by_id[parent_id], kids))
    return errors


def _top_level_exceed_capacity(tops: list[QuotaSpec], capacity: Mapping[tuple[str, str], Quantity]) -> list[TreeError]:
    """Top-level guarantees against the physical capacity of each pool (keys ``capacity`` names)."""
    per_key: dict[ResourceKey, int] = {}
    for spec in tops:
        for k, lim in spec.resources.items():
            if lim.guarantee and not lim.guarantee.is_unlimited:
                per_key[k] = per_key.get(k, 0) + lim.guarantee.raw
    errors = []
    for k, total in sorted(per_key.items()):
        cap = capacity.get(k)
        if cap is not None and total > cap.raw:
            errors.append(TreeError("guarantees_exceed_capacity", "",
                                    f"top-level quotas guarantee {_fmt(Quantity(total), k)} but the pool has only "
                                    f"{format_quantity(cap, k.resource)}"))
    return errors


ANY_POOL_KEYS = {r: ResourceKey(ANY_POOL, r) for r in RESOURCES}


def _guarantee(spec: QuotaSpec, k: ResourceKey) -> int | None:
    """The finite guarantee ``spec`` sets on ``k`` in raw units; None when it does not set ``k``."""
    lim = spec.resources.get(k)
    if lim is None:
        return None
    return 0 if lim.guarantee.is_unlimited else lim.guarantee.raw  # unlimited is reported by _check_one


def _children_exceed_parent(parent: QuotaSpec, kids: list[QuotaSpec]) -> list[TreeError]:
    """Rules 1-3 of the module docstring for one parent, in one pass over the children's keys."""
    pid = parent.id
    # Per resource: the children's all-pools guarantees summed (shared), and per pool what children setting that pool
    # claim from their per-pool guarantee (own) and how much of `shared` that replaces (a child setting both claims
    # the smaller one there); per_pool_total: per pool, guarantees of children without an all-pools guarantee.
    shared: dict[str, int] = {}
    own: dict[ResourceKey, int] = {}
    replaced: dict[ResourceKey, int] = {}
    per_pool_total: dict[ResourceKey, int] = {}
    for kid in kids:
        for k, lim in kid.resources.items():
            g = 0 if lim.guarantee.is_unlimited else lim.guarantee.raw  # unlimited is reported by _check_one
            if k.pool == ANY_POOL:
                shared[k.resource] = shared.get(k.resource, 0) + g
                continue
            g_star = _guarantee(kid, ResourceKey(ANY_POOL, k.resource))
            if g_star is None:
                own[k] = own.get(k, 0) + g
                per_pool_total[k] = per_pool_total.get(k, 0) + g
            elif g <= g_star:
                own[k] = own.get(k, 0) + g
                replaced[k] = replaced.get(k, 0) + g_star
            else:
                own.setdefault(k, 0)
    named = set(own)
    named.update(k for k in parent.resources if k.pool != ANY_POOL and shared.get(k.resource))
    errors: list[TreeError] = []
    pool_reported: set[str] = set()
    for k in sorted(named):
        if k.resource not in RESOURCES:
            continue  # reported by _check_one
        r = k.resource
        parent_g = _guarantee(parent, k)
        if parent_g is None and ANY_POOL_KEYS[r] in parent.resources:
            continue  # bounded by the parent's all-pools guarantee: rule 2 reports it with the whole sum
        mine, theirs = own.get(k, 0), shared.get(r, 0) - replaced.get(k, 0)
        bound = parent_g or 0
        if mine + theirs > bound:
            pool_reported.add(r)
            detail = "" if not theirs else (
                f" ({format_quantity(Quantity(mine), r)} in that pool and {format_quantity(Quantity(theirs), r)} "
                f"in all pools, which may all be used there)")
            errors.append(TreeError(
                "children_exceed_guarantee", pid,
                f"children of quota {pid} guarantee {_fmt(Quantity(mine + theirs), k)}{detail} but {pid} "
                f"guarantees {format_quantity(Quantity(bound), r)}"
                + ("" if parent_g is not None else f" (it sets no guarantee on {r} in pool {k.pool} or in all pools)")))
    for r in sorted(set(shared) | {k.resource for k in per_pool_total}):
        if r not in RESOURCES:
            continue
        star = ANY_POOL_KEYS[r]
        parent_star = _guarantee(parent, star)
        pools = sorted((k.pool, v) for k, v in per_pool_total.items() if k.resource == r and v)
        total = shared.get(r, 0) + sum(v for _, v in pools)
        if parent_star is not None and total > parent_star:
            parts = [f"{format_quantity(Quantity(shared[r]), r)} in all pools"] if shared.get(r) else []
            parts += [f"{format_quantity(Quantity(v), r)} in pool {pool}" for pool, v in pools]
            detail = "" if not pools else f" together ({', '.join(parts)})"
            errors.append(TreeError(
                "children_exceed_guarantee", pid,
                f"children of quota {pid} guarantee {_fmt(Quantity(total), star)}{detail} but {pid} guarantees "
                f"{format_quantity(Quantity(parent_star), r)}"))
        elif parent_star is None and shared.get(r) and any(k.resource == r for k in parent.resources):
            # Only when no pool of r was reported above: that finding already names the conflict.
            parent_total = sum(_guarantee(parent, k) or 0 for k in parent.resources if k.resource == r)
            if total > parent_total and r not in pool_reported:
                parts = [f"{format_quantity(Quantity(shared[r]), r)} in all pools"]
                parts += [f"{format_quantity(Quantity(v), r)} in pool {pool}" for pool, v in pools]
                errors.append(TreeError(
                    "children_exceed_guarantee", pid,
                    f"children of quota {pid} guarantee {_fmt(Quantity(total), star)} together ({', '.join(parts)})"
                    f" but {pid} guarantees {format_quantity(Quantity(parent_total), r)} in all its pools together"))
        elif parent_star is None and shared.get(r):
            errors.append(TreeError(
                "children_exceed_guarantee", pid,
                f"children of quota {pid} guarantee {_fmt(Quantity(shared[r]), star)} but {pid} guarantees 0"))
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
