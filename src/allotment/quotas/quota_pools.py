"""DKube's "a group is bound to exactly one pool", as a rule of its own: the pools a quota may use.

A quota lists the pools its jobs may be placed in (`pools`); an empty list means every pool of its cluster, pools
created later included. The rule holds for the whole subtree: a job of a quota may use only the pools allowed by its
own list *and* by every ancestor's list (the intersection along the path to the root), so a team's sub-quotas can
narrow their parent's pools but never escape them. The scheduler loop applies it when it computes each job's pools
(scheduler/load.py); submission refuses a job pinned, or profiled, only onto pools outside it (workloads/service.py).
Jobs already running in a pool that a later change disallows keep running; queued ones are placed by the new rule.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from allotment.errors import FieldError, ValidationFailed
from allotment.inventory.models import Cluster, Pool
from allotment.quotas.models import Quota, QuotaPool


def own_pools(session: Session, quota_ids: Iterable[int]) -> dict[int, list[str]]:
    """Each quota's own list of pool names, sorted ([] = every pool)."""
    ids = list(quota_ids)
    out: dict[int, list[str]] = {i: [] for i in ids}
    for i in range(0, len(ids), 500):
        rows = session.execute(select(QuotaPool.quota_id, Pool.name).join(Pool, Pool.id == QuotaPool.pool_id)
                               .where(QuotaPool.quota_id.in_(ids[i:i + 500]))).all()
        for quota_id, name in rows:
            out[quota_id].append(name)
    return {k: sorted(v) for k, v in out.items()}


def along_paths(parent: Mapping[int, int | None], own: Mapping[int, Iterable[str]],
                only: Iterable[int] | None = None) -> dict[int, frozenset[str] | None]:
    """Each quota's usable pools (of the quotas in `only`, or of all): the intersection of the non-empty lists on its
    path to the root (None = all)."""
    out: dict[int, frozenset[str] | None] = {}
    for quota_id in parent if only is None else only:
        allowed: frozenset[str] | None = None
        node, seen = quota_id, set()
        while node is not None and node not in seen:
            seen.add(node)
            names = own.get(node)
            if names:
                allowed = frozenset(names) if allowed is None else allowed & frozenset(names)
            node = parent.get(node)
        out[quota_id] = allowed
    return out


def usable_pools(session: Session, cluster_ids: Iterable[int],
                 only: Iterable[int] | None = None) -> dict[int, frozenset[str] | None]:
    """Usable pools of every quota of the clusters, or of those in `only` (see along_paths). The lists are read
    by cluster, not by quota: a list of a thousand quota ids cost more to send than the rows."""
    ids = list(cluster_ids)
    own: dict[int, list[str]] = {}
    for quota_id, name in session.execute(select(QuotaPool.quota_id, Pool.name)
                                          .join(Pool, Pool.id == QuotaPool.pool_id)
                                          .join(Quota, Quota.id == QuotaPool.quota_id)
                                          .where(Quota.cluster_id.in_(ids))):
        own.setdefault(quota_id, []).append(name)
    if not own and only is not None:  # no quota lists pools: every pool for all (the tree need not be read)
        return dict.fromkeys(only)
    tree = dict(session.execute(select(Quota.id, Quota.parent_id).where(Quota.cluster_id.in_(ids))).all())
    return along_paths(tree, own, None if only is None else [i for i in only if i in tree])


def usable_pools_of(session: Session, quota: Quota) -> frozenset[str] | None:
    return usable_pools(session, [quota.cluster_id]).get(quota.id)


def set_pools(session: Session, quota: Quota, names: list[str] | None, field: str = "pools") -> None:
    """Replace the quota's list (None or [] = every pool). Unknown pools and pools of another cluster are refused,
    every one named."""
    wanted = sorted({n.strip() for n in names or [] if n and n.strip()})
    errors: list[FieldError] = []
    ids: list[int] = []
    if wanted:
        found = dict(session.execute(select(Pool.name, Pool.id).where(Pool.cluster_id == quota.cluster_id,
                                                                      Pool.name.in_(wanted))).all())
        for name in wanted:
            if name in found:
                ids.append(found[name])
                continue
            elsewhere = session.scalars(select(Cluster.name).join(Pool, Pool.cluster_id == Cluster.id)
                                        .where(Pool.name == name).order_by(Cluster.name)).all()
            here = session.scalar(select(Cluster.name).where(Cluster.id == quota.cluster_id))
            if elsewhere:
                errors.append(FieldError(field, f"pool {name} belongs to cluster {', '.join(elsewhere)}, not to "
                                                f"cluster {here} of quota {quota.name or '(new)'}"))
            else:
                known = session.scalars(select(Pool.name).where(Pool.cluster_id == quota.cluster_id)
                                        .order_by(Pool.name)).all()
                errors.append(FieldError(field, f"no pool '{name}' in cluster {here} (its pools: "
                                                f"{', '.join(known) or 'none'})"))
    if errors:
        raise ValidationFailed("; ".join(f"{e.field}: {e.message}" for e in errors), errors)
    for old in session.scalars(select(QuotaPool).where(QuotaPool.quota_id == quota.id)).all():
        session.delete(old)
    session.flush()
    for pool_id in ids:
        session.add(QuotaPool(quota_id=quota.id, pool_id=pool_id))
    session.flush()


def quotas_only_in(session: Session, pool: Pool) -> list[str]:
    """Quotas whose list holds this pool and no other: deleting the pool would open them to every pool."""
    listing = session.execute(select(QuotaPool.quota_id, QuotaPool.pool_id).join(Quota, Quota.id == QuotaPool.quota_id)
                              .where(Quota.cluster_id == pool.cluster_id)).all()
    pools_of: dict[int, set[int]] = {}
    for quota_id, pool_id in listing:
        pools_of.setdefault(quota_id, set()).add(pool_id)
    ids = [q for q, p in pools_of.items() if p == {pool.id}]
    if not ids:
        return []
    return list(session.scalars(select(Quota.name).where(Quota.id.in_(ids)).order_by(Quota.name)).all())
