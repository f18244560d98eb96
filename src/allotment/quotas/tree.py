"""The bridge between the quota tables and core/quota_tree.py: rows -> QuotaSpec, and core's findings -> field errors.

Inside core a quota is named by its name and a pool by its name within the cluster (a quota tree belongs to one
cluster, where pool names are unique); a quota resource without a pool is core.resources.ANY_POOL ("*").
The scheduler loop may use `quota_specs` to build its snapshot.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from allotment.core.quantity import UNLIMITED, Quantity
from allotment.core.quota_tree import QuotaLimits, QuotaSpec, TreeError
from allotment.core.resources import ANY_POOL, ResourceKey
from allotment.errors import FieldError, ValidationFailed
from allotment.inventory.models import Pool
from allotment.quotas.models import Quota, QuotaResource

# Which request field a core finding is about.
_FIELD_OF_CODE = {
    "cycle": "parent",
    "unknown_parent": "parent",
    "invalid_weight": "weight",
    "invalid_min_runtime": "min_runtime_s",
    "duplicate_quota": "name",
    "invalid_id": "name",
}


def pool_names(session: Session, cluster_id: int) -> dict[int, str]:
    return dict(session.execute(select(Pool.id, Pool.name).where(Pool.cluster_id == cluster_id)).all())


def limits_of(row: QuotaResource) -> QuotaLimits:
    return QuotaLimits(
        Quantity(row.guarantee),
        UNLIMITED if row.limit is None else Quantity(row.limit),
        None if row.lending_limit is None else Quantity(row.lending_limit),
    )


def spec_of(quota: Quota, parent_name: str | None, rows: Iterable[QuotaResource], pools: dict[int, str]) -> QuotaSpec:
    resources = {ResourceKey(ANY_POOL if r.pool_id is None else pools.get(r.pool_id, str(r.pool_id)), r.resource):
                 limits_of(r) for r in rows}
    return QuotaSpec(
        id=quota.name,
        parent_id=parent_name,
        weight=quota.weight,
        resources=resources,
        child_preemption=quota.child_preemption,
        reclaim=quota.reclaim,
        within_quota_preemption=quota.within_quota_preemption,
        min_runtime_s=float(quota.min_runtime_s or 0),
        allowed_priority_classes=(None if quota.allowed_priority_classes is None
                                  else frozenset(quota.allowed_priority_classes)),
    )


def quota_specs(session: Session, cluster_id: int) -> list[QuotaSpec]:
    """The cluster's whole quota tree as core specs (flushed state, so pending edits are included)."""
    quotas = session.scalars(select(Quota).where(Quota.cluster_id == cluster_id).order_by(Quota.id)).all()
    names = {q.id: q.name for q in quotas}
    rows: dict[int, list[QuotaResource]] = {}
    if quotas:
        for r in session.scalars(select(QuotaResource).where(QuotaResource.quota_id.in_(names))).all():
            rows.setdefault(r.quota_id, []).append(r)
    pools = pool_names(session, cluster_id)
    return [spec_of(q, names.get(q.parent_id) if q.parent_id else None, rows.get(q.id, []), pools) for q in quotas]


def raise_tree_errors(errors: list[TreeError], prefix: str = "") -> None:
    """Turn core's findings into one 422 listing each with the field it is about."""
    if not errors:
        return
    fields = [FieldError(prefix + _FIELD_OF_CODE.get(e.code, "resources"), e.message) for e in errors]
    raise ValidationFailed("; ".join(e.message for e in errors), fields)
