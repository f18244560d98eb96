"""Prometheus gauges per quota and pool, read from the database at each scrape, and the time-to-admission histogram.

Per quota, resource and pool ("*" for a quota's amount over all pools): `allot_quota_guarantee`, `allot_quota_limit`
(absent when unlimited) and `allot_quota_in_use` (what the quota's own jobs hold now, raw units: milli-GPU,
millicores, bytes); per quota `allot_quota_queued_jobs` and, per budget, `allot_quota_budget_left_hours`; per pool
`allot_pool_in_use` and `allot_pool_queued_jobs`. `allot_time_to_admission_seconds` is a histogram per quota of the
wait from submission to each admission, observed by the scheduler after the cycle commits.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from allotment.accounting.budgets import budget_status
from allotment.accounting.models import QuotaBudget
from allotment.inventory.models import Cluster, Pool
from allotment.quotas.models import Quota, QuotaResource
from allotment.workloads.models import HOLDING_STATES, QUEUED, Job, active

log = logging.getLogger("allotment.metrics")
WAIT_BUCKETS = (0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 1800, 3600, 4 * 3600, 12 * 3600, 86400, float("inf"))


class QuotaPoolCollector(Collector):
    def __init__(self, sessions) -> None:
        self.sessions = sessions

    def collect(self) -> Iterator[GaugeMetricFamily]:
        labels = ["cluster", "quota", "resource", "pool"]
        guarantee = GaugeMetricFamily("allot_quota_guarantee", "guaranteed amount (raw units)", labels=labels)
        limit = GaugeMetricFamily("allot_quota_limit", "limit (raw units); absent when unlimited", labels=labels)
        in_use = GaugeMetricFamily("allot_quota_in_use", "held now by the quota's own jobs (raw units)",
                                   labels=labels)
        queued = GaugeMetricFamily("allot_quota_queued_jobs", "queued jobs", labels=["cluster", "quota"])
        left = GaugeMetricFamily("allot_quota_budget_left_hours", "hours left of the budget's current period",
                                 labels=["cluster", "quota", "resource", "period"])
        pool_use = GaugeMetricFamily("allot_pool_in_use", "held now in the pool (raw units)",
                                     labels=["cluster", "pool", "resource"])
        pool_queued = GaugeMetricFamily("allot_pool_queued_jobs", "queued jobs pinned to the pool",
                                        labels=["cluster", "pool"])
        try:
            with self.sessions() as db:
                clusters = dict(db.execute(select(Cluster.id, Cluster.name)).all())
                pools = {pid: (clusters.get(cid, str(cid)), name)
                         for pid, cid, name in db.execute(select(Pool.id, Pool.cluster_id, Pool.name))}
                quotas = {q.id: q for q in db.scalars(select(Quota))}

                def qlabels(qid: int) -> list[str]:
                    q = quotas[qid]
                    return [clusters.get(q.cluster_id, str(q.cluster_id)), q.name]

                for r in db.scalars(select(QuotaResource)):
                    if r.quota_id not in quotas:
                        continue
                    pool = pools[r.pool_id][1] if r.pool_id in pools else "*"
                    guarantee.add_metric([*qlabels(r.quota_id), r.resource, pool], r.guarantee)
                    if r.limit is not None:
                        limit.add_metric([*qlabels(r.quota_id), r.resource, pool], r.limit)
                held = db.execute(select(Job.quota_id, Job.placed_pool_id, func.sum(Job.gpu_milli),
                                         func.sum(Job.cpu_milli), func.sum(Job.memory_bytes))
                                  .where(active(*HOLDING_STATES))
                                  .group_by(Job.quota_id, Job.placed_pool_id)).all()
                per_pool: dict[int, list[int]] = {}
                for qid, pid, gpu, cpu, memory in held:
                    pool = pools[pid][1] if pid in pools else "*"
                    for resource, amount in (("gpu", gpu), ("cpu", cpu), ("memory", memory)):
                        if qid in quotas:
                            in_use.add_metric([*qlabels(qid), resource, pool], amount or 0)
                    if pid in pools:
                        sums = per_pool.setdefault(pid, [0, 0, 0])
                        for i, amount in enumerate((gpu, cpu, memory)):
                            sums[i] += amount or 0
                for pid, sums in per_pool.items():
                    for resource, amount in zip(("gpu", "cpu", "memory"), sums):
                        pool_use.add_metric([*pools[pid], resource], amount)
                for qid, count in db.execute(select(Job.quota_id, func.count()).where(active(QUEUED))
                                             .group_by(Job.quota_id)):
                    if qid in quotas:
                        queued.add_metric(qlabels(qid), count)
                for pid, count in db.execute(select(Job.pool_id, func.count()).where(active(QUEUED),
                                                                                     Job.pool_id.is_not(None))
                                             .group_by(Job.pool_id)):
                    if pid in pools:
                        pool_queued.add_metric(list(pools[pid]), count)
                now = time.time()
                for b in db.scalars(select(QuotaBudget)):
                    if b.quota_id in quotas:
                        status = budget_status(db, quotas[b.quota_id], b, now)
                        left.add_metric([*qlabels(b.quota_id), b.resource, b.period], status["left_hours"])
        except Exception:  # a scrape must never fail the endpoint: the gauges are left out this time
            log.exception("metrics: could not read quotas and pools")
            return
        yield from (guarantee, limit, in_use, queued, left, pool_use, pool_queued)


class AdmissionWaits:
    """The time-to-admission histogram per quota."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.histogram = Histogram("allot_time_to_admission_seconds", "wait from submission to admission",
                                   ["cluster", "quota"], buckets=WAIT_BUCKETS, registry=registry)
        # (cluster, quota) -> its histogram: one label lookup per quota for the life of the process, not per cycle
        # (a cycle admitting a job in each of 1,000 quotas looked 1,000 labels up). Label sets are never removed.
        self._children: dict[tuple[str, str], Histogram] = {}

    def observe(self, waits: list[tuple[str, str, float]]) -> None:
        children = self._children
        if len(children) > 100_000:  # quotas renamed or deleted over a long life: look them up afresh
            children.clear()
        for cluster, quota, seconds in waits:
            child = children.get((cluster, quota))
            if child is None:
                child = children[(cluster, quota)] = self.histogram.labels(cluster, quota)
            child.observe(max(seconds, 0.0))


def install(registry: CollectorRegistry | None, sessions) -> AdmissionWaits | None:
    """Register the gauges and the histogram on the app's registry (once per registry)."""
    if registry is None:
        return None
    registry.register(QuotaPoolCollector(sessions))
    return AdmissionWaits(registry)
