"""Quota trees: create, change, delete, scale; every change is validated as a whole by core.quota_tree.

Edits are flushed first and the cluster's whole tree is then checked with `validate_tree`; on any finding the
service raises and the request's transaction rolls everything back, so the stored tree is always valid.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from allotment.core.names import as_id
from allotment.core.quantity import Quantity, parse_quantity
from allotment.core.quota_tree import QuotaLimits, ScaleError, scale, validate_tree
from allotment.core.resources import ANY_POOL, ResourceKey
from allotment.errors import Conflict, FieldError, NotFound, ValidationFailed, invalid
from allotment.inventory.models import Pool
from allotment.inventory.service import bump_config_version, check_name
from allotment.quotas.models import (
    RECLAIM_VALUES,
    RESOURCE_NAMES,
    WITHIN_QUOTA_VALUES,
    PriorityClass,
    Quota,
    QuotaResource,
)
from allotment.quotas.quota_pools import set_pools
from allotment.quotas.tree import pool_names, quota_specs, raise_tree_errors
from allotment.workloads import references
from allotment.workloads.models import Job, active


@dataclass
class ResourceInput:
    resource: str
    guarantee: str | int | float = 0
    limit: str | int | float | None = None  # None = unlimited
    lending_limit: str | int | float | None = None
    pool: str | None = None  # None or "*" = all pools of the cluster


@dataclass
class ResourceChange:
    """A partial change of one entry of a quota (PATCH): only the fields in `provided` change. The entry is found by
    pool and resource; without a pool, the quota's only entry for the resource (all pools when it has none yet)."""

    resource: str
    pool: str | None = None  # None: the quota's only entry for the resource; "*": the all-pools entry
    guarantee: str | int | float | None = None
    limit: str | int | float | None = None  # None (when provided) = unlimited
    lending_limit: str | int | float | None = None  # None (when provided) = all of the guarantee may be lent
    remove: bool = False
    provided: set[str] = field(default_factory=set)


@dataclass
class QuotaInput:
    """Fields of a create or update; `None` leaves a field unchanged on update."""

    name: str | None = None
    parent: str | None = None
    clear_parent: bool = False
    description: str | None = None
    weight: float | None = None
    child_preemption: bool | None = None
    reclaim: str | None = None
    within_quota_preemption: str | None = None
    min_runtime_s: int | None = None
    allowed_priority_classes: list[str] | None = None
    clear_allowed_priority_classes: bool = False
    resources: list[ResourceInput] | None = None  # replaces the whole list (create, provision)
    resource_changes: list[ResourceChange] | None = None  # changes only the entries and fields given (PATCH)
    pools: list[str] | None = None  # the pools its jobs may use ([] = all); applied only when "pools" is provided
    provided: set[str] = field(default_factory=set)  # fields explicitly sent (for nullable ones)


def find_quota(session: Session, ref: str | int) -> Quota:
    text = str(ref).strip()
    quota = session.scalar(select(Quota).where(Quota.name == text))
    if quota is None and as_id(text):
        quota = session.get(Quota, as_id(text))
    if quota is None:
        raise NotFound(f"no quota '{text}'")
    return quota


def list_quotas(session: Session, cluster_id: int | None = None) -> list[Quota]:
    query = select(Quota).order_by(Quota.name)
    if cluster_id is not None:
        query = query.where(Quota.cluster_id == cluster_id)
    return list(session.scalars(query).all())


def quota_resources(session: Session, quota_ids: Iterable[int]) -> dict[int, list[QuotaResource]]:
    ids = list(quota_ids)
    out: dict[int, list[QuotaResource]] = {i: [] for i in ids}
    if ids:
        rows = session.scalars(select(QuotaResource).where(QuotaResource.quota_id.in_(ids))
                               .order_by(QuotaResource.pool_id, QuotaResource.resource)).all()
        for row in rows:
            out[row.quota_id].append(row)
    return out


def children(session: Session, quota_id: int) -> list[Quota]:
    return list(session.scalars(select(Quota).where(Quota.parent_id == quota_id).order_by(Quota.name)).all())


def parse_amount(field_name: str, value, resource: str, allow_unlimited: bool) -> int | None:
    """Raw integer of a quantity; None for unlimited (when allowed)."""
    try:
        quantity = parse_quantity(value, resource)
    except ValueError as exc:
        raise invalid(field_name, str(exc)) from None
    if quantity.is_unlimited:
        if not allow_unlimited:
            raise invalid(field_name, "cannot be unlimited")
        return None
    return quantity.raw


def _resource_rows(session: Session, cluster_id: int, items: Sequence[ResourceInput],
                   prefix: str = "resources") -> list[QuotaResource]:
    """Parse resource inputs into unsaved rows, collecting every field error."""
    errors: list[FieldError] = []
    rows: list[QuotaResource] = []
    seen: set[tuple[int | None, str]] = set()
    for i, item in enumerate(items):
        where = f"{prefix}.{i}"
        if item.resource not in RESOURCE_NAMES:
            errors.append(FieldError(f"{where}.resource", f"must be one of {', '.join(RESOURCE_NAMES)}"))
            continue
        pool_id = None
        if item.pool not in (None, "", ANY_POOL):
            pool_id = session.scalar(select(Pool.id).where(Pool.cluster_id == cluster_id, Pool.name == item.pool))
            if pool_id is None:
                errors.append(FieldError(f"{where}.pool", f"no pool '{item.pool}' in the quota's cluster"))
                continue
        if (pool_id, item.resource) in seen:
            errors.append(FieldError(where, f"{item.resource} in pool {item.pool or ANY_POOL} is listed twice"))
            continue
        seen.add((pool_id, item.resource))
        try:
            guarantee = parse_amount(f"{where}.guarantee", item.guarantee, item.resource, False)
            limit = None if item.limit is None else parse_amount(f"{where}.limit", item.limit, item.resource, True)
            lending = (None if item.lending_limit is None
                       else parse_amount(f"{where}.lending_limit", item.lending_limit, item.resource, True))
        except ValidationFailed as exc:
            errors.extend(exc.errors)
            continue
        rows.append(QuotaResource(pool_id=pool_id, resource=item.resource, guarantee=guarantee, limit=limit,
                                  lending_limit=lending))
    if errors:
        raise ValidationFailed("; ".join(f"{e.field}: {e.message}" for e in errors), errors)
    return rows


def _join(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def entry_pools(rows: Iterable[QuotaResource], resource: str, pools: dict[int, str]) -> list[str]:
    """Names of the pools in which the quota has an entry for `resource` ("*" for its all-pools entry), sorted."""
    return sorted(ANY_POOL if r.pool_id is None else pools.get(r.pool_id, str(r.pool_id))
                  for r in rows if r.resource == resource)


def several_entries(quota: Quota, resource: str, names: Sequence[str]) -> str:
    return f"quota {quota.name} has {resource} entries in pools {_join(names)}: choose one of them with pool"


def _resource_changes(session: Session, quota: Quota, changes: Sequence[ResourceChange]) -> None:
    """Apply partial entry changes: each changes only the fields it was given (absent = unchanged); a new entry
    starts at guarantee 0, no limit. Every problem is collected and nothing changes unless all are valid."""
    pools = pool_names(session, quota.cluster_id)
    pool_ids = {name: pid for pid, name in pools.items()}
    rows = list(session.scalars(select(QuotaResource).where(QuotaResource.quota_id == quota.id)).all())
    by_key = {(r.pool_id, r.resource): r for r in rows}
    errors: list[FieldError] = []
    plans: list[tuple[ResourceChange, int | None, dict[str, int | None]]] = []
    seen: set[tuple[int | None, str]] = set()
    for i, ch in enumerate(changes):
        where = f"resources.{i}"
        if ch.resource not in RESOURCE_NAMES:
            errors.append(FieldError(f"{where}.resource", f"must be one of {', '.join(RESOURCE_NAMES)}"))
            continue
        if ch.pool in (None, ""):
            names = entry_pools(rows, ch.resource, pools)
            if len(names) > 1:
                errors.append(FieldError(f"{where}.pool", several_entries(quota, ch.resource, names)))
                continue
            pool_name = names[0] if names else ANY_POOL
        else:
            pool_name = ch.pool
        if pool_name != ANY_POOL and pool_name not in pool_ids:
            errors.append(FieldError(f"{where}.pool", f"no pool '{pool_name}' in the quota's cluster"))
            continue
        pool_id = None if pool_name == ANY_POOL else pool_ids[pool_name]
        if (pool_id, ch.resource) in seen:
            errors.append(FieldError(where, f"{ch.resource} in pool {pool_name} is listed twice"))
            continue
        seen.add((pool_id, ch.resource))
        amounts = ch.provided & {"guarantee", "limit", "lending_limit"}
        if ch.remove:
            if amounts:
                errors.append(FieldError(f"{where}.remove", "an entry that is removed takes no guarantee, limit or "
                                                            "lending_limit"))
            elif (pool_id, ch.resource) not in by_key:
                errors.append(FieldError(f"{where}.pool", f"quota {quota.name} has no {ch.resource} entry in pool "
                                                          f"{pool_name} to remove"))
            else:
                plans.append((ch, pool_id, {}))
            continue
        values: dict[str, int | None] = {}
        try:
            if "guarantee" in amounts:
                if ch.guarantee is None:
                    raise invalid(f"{where}.guarantee", "cannot be null: give an amount (0 for none)")
                values["guarantee"] = parse_amount(f"{where}.guarantee", ch.guarantee, ch.resource, False)
            if "limit" in amounts:
                values["limit"] = (None if ch.limit is None
                                   else parse_amount(f"{where}.limit", ch.limit, ch.resource, True))
            if "lending_limit" in amounts:
                values["lending_limit"] = (None if ch.lending_limit is None else
                                           parse_amount(f"{where}.lending_limit", ch.lending_limit, ch.resource, True))
        except ValidationFailed as exc:
            errors.extend(exc.errors)
            continue
        plans.append((ch, pool_id, values))
    if errors:
        raise ValidationFailed("; ".join(f"{e.field}: {e.message}" for e in errors), errors)
    for ch, pool_id, values in plans:
        row = by_key.get((pool_id, ch.resource))
        if ch.remove:
            session.delete(row)
            continue
        if row is None:
            row = QuotaResource(quota_id=quota.id, pool_id=pool_id, resource=ch.resource, guarantee=0, limit=None,
                                lending_limit=None)
            session.add(row)
        for attr, value in values.items():
            setattr(row, attr, value)
    session.flush()


def _check_scalars(session: Session, data: QuotaInput) -> None:
    errors: list[FieldError] = []
    if data.weight is not None and not data.weight >= 0:
        errors.append(FieldError("weight", "must be zero or more"))
    if data.reclaim is not None and data.reclaim not in RECLAIM_VALUES:
        errors.append(FieldError("reclaim", f"must be one of {', '.join(RECLAIM_VALUES)}"))
    if data.within_quota_preemption is not None and data.within_quota_preemption not in WITHIN_QUOTA_VALUES:
        errors.append(FieldError("within_quota_preemption", f"must be one of {', '.join(WITHIN_QUOTA_VALUES)}"))
    if data.min_runtime_s is not None and data.min_runtime_s < 0:
        errors.append(FieldError("min_runtime_s", "must be zero or more"))
    if data.allowed_priority_classes is not None:
        known = set(session.scalars(select(PriorityClass.name)).all())
        unknown = [c for c in data.allowed_priority_classes if c not in known]
        if unknown:
            errors.append(FieldError("allowed_priority_classes",
                                     f"unknown priority class(es) {', '.join(unknown)}; known: "
                                     f"{', '.join(sorted(known))}"))
    if errors:
        raise ValidationFailed("; ".join(f"{e.field}: {e.message}" for e in errors), errors)


def _apply(session: Session, quota: Quota, data: QuotaInput) -> None:
    if data.name is not None:
        name = check_name("name", data.name)
        other = session.scalar(select(Quota.id).where(Quota.name == name))
        if other is not None and other != quota.id:
            raise Conflict(f"a quota named {name} already exists", [FieldError("name", f"quota {name} exists")])
        quota.name = name
    if data.clear_parent:
        quota.parent_id = None
    elif data.parent is not None:
        parent = find_quota(session, data.parent)
        if parent.cluster_id != quota.cluster_id:
            raise invalid("parent", f"quota {parent.name} belongs to another cluster")
        quota.parent_id = parent.id
    for attr in ("description", "weight", "child_preemption", "reclaim", "within_quota_preemption",
                 "min_runtime_s"):
        value = getattr(data, attr)
        if value is not None:
            setattr(quota, attr, value)
    if data.clear_allowed_priority_classes:
        quota.allowed_priority_classes = None
    elif data.allowed_priority_classes is not None:
        quota.allowed_priority_classes = sorted(set(data.allowed_priority_classes))


def _validate_cluster_tree(session: Session, cluster_id: int) -> None:
    session.flush()
    raise_tree_errors(validate_tree(quota_specs(session, cluster_id)))


def create_quota(session: Session, cluster_id: int, data: QuotaInput) -> Quota:
    if not data.name:
        raise invalid("name", "is required")
    _check_scalars(session, data)
    rows = _resource_rows(session, cluster_id, data.resources or [])
    quota = Quota(cluster_id=cluster_id, name="", weight=1.0, child_preemption=False, reclaim="never",
                  within_quota_preemption="never", min_runtime_s=0)
    _apply(session, quota, data)
    session.add(quota)
    session.flush()
    for row in rows:
        row.quota_id = quota.id
        session.add(row)
    if data.pools:
        set_pools(session, quota, data.pools)
    _validate_cluster_tree(session, cluster_id)
    bump_config_version(session, cluster_id)
    return quota


def update_quota(session: Session, quota: Quota, data: QuotaInput) -> Quota:
    _check_scalars(session, data)
    rows = None if data.resources is None else _resource_rows(session, quota.cluster_id, data.resources)
    _apply(session, quota, data)
    if rows is not None:
        for old in session.scalars(select(QuotaResource).where(QuotaResource.quota_id == quota.id)).all():
            session.delete(old)
        session.flush()
        for row in rows:
            row.quota_id = quota.id
            session.add(row)
    if data.resource_changes is not None:
        _resource_changes(session, quota, data.resource_changes)
    if "pools" in data.provided:
        set_pools(session, quota, data.pools)
    _validate_cluster_tree(session, quota.cluster_id)
    bump_config_version(session, quota.cluster_id)
    return quota


def active_job_count(session: Session, quota_id: int) -> int:
    return session.scalar(select(func.count()).select_from(Job)
                          .where(Job.quota_id == quota_id, active())) or 0


def delete_quota(session: Session, quota: Quota) -> None:
    references.claim(session, Quota.id, quota.id)  # a batch submitting to it commits first, then is counted below
    kids = children(session, quota.id)
    if kids:
        raise Conflict(f"quota {quota.name} has child quotas ({', '.join(k.name for k in kids)}): delete or move "
                       f"them first")
    active = active_job_count(session, quota.id)
    if active:
        raise Conflict(f"quota {quota.name} has {active} queued or running jobs: wait for them or cancel them")
    cluster_id = quota.cluster_id
    from allotment.access.service import forget_object  # access reads quotas through this service

    forget_object(session, "quota", [quota.id])  # its access rules go with it
    references.forget_quota(session, quota.id)  # its finished jobs keep their history without it
    session.delete(quota)
    session.flush()
    bump_config_version(session, cluster_id)


@dataclass
class ScaleChange:
    quota: str
    resource: str
    guarantee: str | int | float
    limit: str | int | float | None = None  # None: the limit follows the guarantee when they were equal, else kept
    pool: str | None = None


def scale_quotas(session: Session, cluster_id: int, changes: Sequence[ScaleChange]) -> list[Quota]:
    """PAI scale: change several quotas' sizes at once (e.g. Quota1.1 48 -> 56 and Quota1.2 80 -> 72), validated as
    a whole by core.quota_tree.scale; nothing changes unless the result is valid."""
    if not changes:
        raise invalid("changes", "give at least one change")
    pools = {name: pid for pid, name in pool_names(session, cluster_id).items()}
    errors: list[FieldError] = []
    wanted: dict[str, dict[ResourceKey, Quantity | QuotaLimits]] = {}
    quotas: dict[str, Quota] = {}
    for i, ch in enumerate(changes):
        where = f"changes.{i}"
        quota = session.scalar(select(Quota).where(Quota.name == ch.quota, Quota.cluster_id == cluster_id))
        if quota is None:
            errors.append(FieldError(f"{where}.quota", f"no quota '{ch.quota}' in this cluster"))
            continue
        if ch.resource not in RESOURCE_NAMES:
            errors.append(FieldError(f"{where}.resource", f"must be one of {', '.join(RESOURCE_NAMES)}"))
            continue
        if ch.pool in (None, ""):
            # Without a pool: the quota's only entry for the resource; never a new all-pools entry beside it.
            names = entry_pools(session.scalars(select(QuotaResource).where(QuotaResource.quota_id == quota.id)),
                                ch.resource, pool_names(session, cluster_id))
            if len(names) != 1:
                errors.append(FieldError(f"{where}.pool", several_entries(quota, ch.resource, names) if names else
                                         f"quota {quota.name} has no {ch.resource} entry: name the pool to scale "
                                         f"(one of {', '.join([ANY_POOL, *sorted(pools)])})"))
                continue
            pool = names[0]
        else:
            pool = ch.pool
        if pool != ANY_POOL and pool not in pools:
            errors.append(FieldError(f"{where}.pool", f"no pool '{pool}' in this cluster"))
            continue
        try:
            guarantee = Quantity(parse_amount(f"{where}.guarantee", ch.guarantee, ch.resource, False))
            limit = None if ch.limit is None else parse_amount(f"{where}.limit", ch.limit, ch.resource, True)
        except ValidationFailed as exc:
            errors.extend(exc.errors)
            continue
        quotas[quota.name] = quota
        k = ResourceKey(pool, ch.resource)
        if ch.limit is None:
            wanted.setdefault(quota.name, {})[k] = guarantee
        else:
            old = next(s for s in quota_specs(session, cluster_id) if s.id == quota.name).limits_for(k)
            wanted.setdefault(quota.name, {})[k] = QuotaLimits(
                guarantee, Quantity.UNLIMITED if limit is None else Quantity(limit),
                old.lending_limit if old else None)
    if errors:
        raise ValidationFailed("; ".join(f"{e.field}: {e.message}" for e in errors), errors)
    try:
        new_specs = scale(quota_specs(session, cluster_id), wanted)
    except ScaleError as exc:
        raise_tree_errors(exc.errors)
        raise  # pragma: no cover - raise_tree_errors always raises for a non-empty list
    by_name = {s.id: s for s in new_specs}
    for name, quota in quotas.items():
        spec = by_name[name]
        for k in wanted[name]:
            lim = spec.limits_for(k)
            pool_id = None if k.pool == ANY_POOL else pools[k.pool]
            row = session.scalar(select(QuotaResource).where(
                QuotaResource.quota_id == quota.id, QuotaResource.resource == k.resource,
                QuotaResource.pool_id.is_(None) if pool_id is None else QuotaResource.pool_id == pool_id))
            if row is None:
                row = QuotaResource(quota_id=quota.id, pool_id=pool_id, resource=k.resource)
                session.add(row)
            row.guarantee = lim.guarantee.raw
            row.limit = None if lim.limit.is_unlimited else lim.limit.raw
            row.lending_limit = None if lim.lending_limit is None else lim.lending_limit.raw
    session.flush()
    bump_config_version(session, cluster_id)
    return list(quotas.values())
