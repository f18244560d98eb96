"""Prometheus gauges per quota and pool, read from the database at each scrape, and the time-to-admission histogram.

Per quota, resource and pool ("*" for a quota's amount over all pools): `allot_quota_guarantee`, `allot_quota_limit`
(absent when unlimited) and `allot_quota_in_use` (what the quota's own jobs hold now, raw units: milli-GPU,
millicores, bytes); per quota `allot_quota_queued_jobs` and, per budget, `allot_quota_budget_left_hours`; per pool
`allot_pool_in_use` and `allot_pool_queued_jobs`. `allot_time_to_admission_seconds` is a histogram per quota of the
wait from submission to each admission, observed by the scheduler after the cycle commits.
"""

from __future__ import annotations

import logging
import threading
import time
from bisect import bisect_left
from collections.abc import Iterator
from itertools import accumulate

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString
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


class AdmissionWaits(Collector):
    """The time-to-admission histogram per quota: a collector of its own, counting each cycle's waits into buckets
    under one lock (the scheduler observes thousands of admissions a cycle; prometheus_client's Histogram takes a
    lock per value and per bucket, which cost the loop about 2 us per admitted job)."""

    NAME = "allot_time_to_admission_seconds"

    def __init__(self, registry: CollectorRegistry) -> None:
        self._bounds = [float(b) for b in WAIT_BUCKETS]
        self._les = [floatToGoString(b) for b in WAIT_BUCKETS]
        # (cluster, quota) -> [count per bucket (not cumulative), sum]. Label sets are never removed, as with a
        # Histogram's children.
        self._series: dict[tuple[str, str], list] = {}
        self._lock = threading.Lock()
        registry.register(self)

    def observe(self, waits: list[tuple[str, str, float]]) -> None:
        series, bounds, where = self._series, self._bounds, bisect_left
        with self._lock:
            for cluster, quota, seconds in waits:
                entry = series.get((cluster, quota))
                if entry is None:
                    entry = series[(cluster, quota)] = [[0] * len(bounds), 0.0]
                seconds = max(seconds, 0.0)
                entry[0][where(bounds, seconds)] += 1  # the first bucket whose bound is at least the wait (le)
                entry[1] += seconds

    def describe(self) -> list:
        return [HistogramMetricFamily(self.NAME, "wait from submission to admission", labels=["cluster", "quota"])]

    def collect(self) -> Iterator[HistogramMetricFamily]:
        family = HistogramMetricFamily(self.NAME, "wait from submission to admission", labels=["cluster", "quota"])
        with self._lock:
            taken = [(labels, list(counts), total) for labels, (counts, total) in self._series.items()]
        for labels, counts, total in taken:
            family.add_metric(list(labels), list(zip(self._les, accumulate(counts), strict=True)), total)
        yield family


def install(registry: CollectorRegistry | None, sessions) -> AdmissionWaits | None:
    """Register the gauges and the histogram on the app's registry (once per registry)."""
    if registry is None:
        return None
    registry.register(QuotaPoolCollector(sessions))
    return AdmissionWaits(registry)
