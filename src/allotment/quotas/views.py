"""Quotas as the API shows them, built for many quotas at once with a fixed number of queries (a tree of 1,000
quotas lists in a handful of round trips): resources, parent and children, current use of each subtree, bindings."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from allotment.core.permissions import Principal
from allotment.core.quantity import format_raw
from allotment.core.resources import ANY_POOL
from allotment.inventory.models import Cluster, Pool
from allotment.quotas import bindings
from allotment.quotas.models import Quota
from allotment.quotas.quota_pools import own_pools, usable_pools
from allotment.quotas.schemas import BindingOut, QuotaOut, ResourceOut
from allotment.quotas.service import quota_resources
from allotment.workloads.models import HOLDING_STATES, Job, active

Usage = dict[tuple[int | None, str], int]  # (pool id or None for all pools, resource) -> raw amount


class QuotaViews:
    def __init__(self, db: Session, quotas: Sequence[Quota], principal: Principal | None = None):
        self.db = db
        cluster_ids = {q.cluster_id for q in quotas}
        self.clusters = dict(db.execute(select(Cluster.id, Cluster.name).where(Cluster.id.in_(cluster_ids))).all())
        self.pools = dict(db.execute(select(Pool.id, Pool.name).where(Pool.cluster_id.in_(cluster_ids))).all())
        tree = db.execute(select(Quota.id, Quota.name, Quota.parent_id)
                          .where(Quota.cluster_id.in_(cluster_ids))).all()
        self.names = {qid: name for qid, name, _ in tree}
        self.parent = {qid: parent for qid, _, parent in tree}
        self.children: dict[int, list[str]] = {}
        for qid, name, parent in sorted(tree, key=lambda r: r[1]):
            if parent is not None:
                self.children.setdefault(parent, []).append(name)
        self.resources = quota_resources(db, [q.id for q in quotas])
        self.own_pools = own_pools(db, [q.id for q in quotas])
        self.usable_pools = usable_pools(db, cluster_ids)
        self.usage = self._subtree_usage()
        self.submittable = bindings.submittable_quota_ids(db, principal) if principal is not None else None
        self.principal = principal

    def _subtree_usage(self) -> dict[int, Usage]:
        """Usage of admitted and running jobs, summed up each quota's path to the root."""
        if not self.names:
            return {}
        rows = self.db.execute(
            select(Job.quota_id, Job.placed_pool_id, func.sum(Job.gpu_milli), func.sum(Job.cpu_milli),
                   func.sum(Job.memory_bytes))
            .where(Job.quota_id.in_(self.names), active(*HOLDING_STATES))
            .group_by(Job.quota_id, Job.placed_pool_id)
        ).all()
        out: dict[int, Usage] = {}
        for quota_id, pool_id, gpu, cpu, memory in rows:
            node, seen = quota_id, set()
            while node is not None and node not in seen:  # up the path to the root
                seen.add(node)
                use = out.setdefault(node, {})
                for resource, amount in (("gpu", gpu), ("cpu", cpu), ("memory", memory)):
                    if amount:
                        for k in ((pool_id, resource), (None, resource)):
                            use[k] = use.get(k, 0) + int(amount)
                node = self.parent.get(node)
        return out

    def can_submit(self, quota: Quota) -> bool | None:
        if self.principal is None:
            return None
        return self.submittable is None or quota.id in self.submittable

    def out(self, quota: Quota, detailed: bool = False) -> QuotaOut:
        use = self.usage.get(quota.id, {})
        resources = [ResourceOut(
            resource=r.resource, pool=ANY_POOL if r.pool_id is None else self.pools.get(r.pool_id, str(r.pool_id)),
            guarantee=format_raw(r.guarantee, r.resource),
            limit="unlimited" if r.limit is None else format_raw(r.limit, r.resource),
            lending_limit=None if r.lending_limit is None else format_raw(r.lending_limit, r.resource),
            in_use=format_raw(use.get((r.pool_id, r.resource), 0), r.resource),
        ) for r in self.resources.get(quota.id, [])]
        out = QuotaOut(
            id=quota.id, name=quota.name, cluster=self.clusters.get(quota.cluster_id, ""),
            parent=self.names.get(quota.parent_id) if quota.parent_id else None,
            children=self.children.get(quota.id, []), description=quota.description, weight=quota.weight,
            child_preemption=quota.child_preemption, reclaim=quota.reclaim,
            within_quota_preemption=quota.within_quota_preemption, min_runtime_s=quota.min_runtime_s,
            allowed_priority_classes=quota.allowed_priority_classes,
            resources=resources, can_submit=self.can_submit(quota), pools=self.own_pools.get(quota.id, []),
            usable_pools=None if (usable := self.usable_pools.get(quota.id)) is None else sorted(usable),
        )
        if detailed:
            out.bindings = [BindingOut(**b) for b in bindings.list_bindings(self.db, quota.id)]
        return out


def quota_out(db: Session, quota: Quota, detailed: bool = False, principal: Principal | None = None) -> QuotaOut:
    return QuotaViews(db, [quota], principal).out(quota, detailed)
