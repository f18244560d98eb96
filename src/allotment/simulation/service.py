"""Where a replay's inputs come from (the cluster's configurations and job history) and the replays the server runs
in the background for the API and the console.

Configurations: `current` is what the scheduler runs now (scheduler/load.py's reading of the live tables, so the
replay sees exactly the pools, devices, nodes, profiles and quota tree of the real loop); `draft` is the cluster's
draft (quotas/config.py), or the provisioned configuration when there is none; a document in the same shape (a file)
is checked and built over the cluster's pools. Priority classes, scheduler settings and the quota tree's GPU- and
CPU-hour budgets are the live ones (a configuration document holds no budgets).

History: the cluster's jobs submitted in a period that ran, each with its submission time, the time it ran (its end,
or now for one still running, minus its start), its requests, quota, priority class, pinned pool and gang size. Jobs that never
started have no runtime to replay and are left out (counted).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from allotment.accounting import budgets as accounting_budgets
from allotment.core.model import SchedulerConfig
from allotment.errors import NotFound, ValidationFailed, invalid
from allotment.inventory.models import Cluster
from allotment.inventory.models import Pool as PoolRow
from allotment.quotas import config as resource_config
from allotment.quotas import priorities
from allotment.quotas.models import Quota
from allotment.scheduler import load
from allotment.settings import Settings
from allotment.simulation.budgets import BudgetSpec
from allotment.simulation.config import SimConfig, from_document
from allotment.simulation.replay import run_replays
from allotment.simulation.traces import TraceJob
from allotment.workloads.models import Job

MAX_KEPT_RUNS = 20  # finished replays kept in memory per server, oldest dropped first
NAMED = ("current", "draft")


def scheduler_config(settings: Settings, gpu_share_step: int) -> SchedulerConfig:
    return SchedulerConfig(starvation_age_s=settings.scheduler_starvation_age_s,
                           preemption_delay_s=settings.scheduler_preemption_delay_s, gpu_share_step=gpu_share_step)


def current(session: Session, cluster: Cluster, settings: Settings) -> SimConfig:
    inv = load.inventory(session, cluster.id)
    classes = priorities.list_classes(session)
    default = priorities.default_class(session)
    allowed = {inv.quota_names[qid]: tuple(sorted(pools)) for qid, pools in inv.allowed.items()
               if pools is not None and qid in inv.quota_names}
    budgets: dict[str, list[BudgetSpec]] = {}
    for quota_id, rows in accounting_budgets.budgets_of(session, list(inv.quota_names)).items():
        budgets[inv.quota_names[quota_id]] = [BudgetSpec(r.resource, r.period, r.amount_s, r.granted_at)
                                              for r in rows]
    return SimConfig(list(inv.quotas), list(inv.pools), list(inv.profiles), {c.name: c.value for c in classes},
                     default.name if default else None, allowed, scheduler_config(settings, inv.gpu_share_step),
                     budgets)


def configuration(session: Session, cluster: Cluster, settings: Settings, which: str | dict,
                  field_name: str = "config") -> SimConfig:
    """``which``: "current", "draft" or a configuration document."""
    base = current(session, cluster, settings)
    if which == "current":
        return base
    if which == "draft":
        return from_document(resource_config.get_draft(session, cluster), base.pools, base)
    if isinstance(which, dict):
        try:
            return from_document(which, base.pools, base)
        except ValidationFailed as exc:
            errors = [type(e)(f"{field_name}.{e.field}", e.message) for e in exc.errors]
            raise ValidationFailed(f"{field_name}: {exc}", errors) from None
    raise invalid(field_name, "must be current, draft or a configuration document")


def history(session: Session, cluster: Cluster, lo: float, hi: float, now: float | None = None) -> tuple[
        list[TraceJob], int]:
    """The jobs submitted in [lo, hi) that ran, as a trace; and how many were left out because they never ran."""
    now = time.time() if now is None else now
    rows = session.execute(
        select(Job.id, Job.submitted_at, Job.started_at, Job.admitted_at, Job.finished_at, Job.gpu_milli,
               Job.cpu_milli, Job.memory_bytes, Job.priority_class, Job.nodes, Quota.name.label("quota"),
               PoolRow.name.label("pool"))
        .join(Quota, Quota.id == Job.quota_id).outerjoin(PoolRow, PoolRow.id == Job.pool_id)
        .where(Job.cluster_id == cluster.id, Job.submitted_at >= _dt(lo), Job.submitted_at < _dt(hi))
        .order_by(Job.submitted_at, Job.id)).all()
    jobs, skipped = [], 0
    for r in rows:
        start = load.ts(r.started_at) or load.ts(r.admitted_at)
        if start is None:
            skipped += 1
            continue
        end = load.ts(r.finished_at) or now
        jobs.append(TraceJob(load.ts(r.submitted_at) or start, max(0.0, end - start), r.quota, r.gpu_milli or 0,
                             r.cpu_milli or 0, r.memory_bytes or 0, r.priority_class, r.pool, r.id, r.nodes or 1))
    return jobs, skipped


def _dt(epoch: float):
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, UTC)


# --- background runs ---------------------------------------------------------------------------------------------

@dataclass
class Run:
    id: int
    cluster_id: int
    cluster: str
    created_by: str
    created_at: float
    jobs: int
    status: str = "running"  # running | done | failed
    progress: float = 0.0
    result: dict[str, Any] | None = None
    error: str | None = None
    finished_at: float | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def view(self) -> dict[str, Any]:
        return {"id": self.id, "cluster": self.cluster, "status": self.status, "progress": round(self.progress, 3),
                "jobs": self.jobs, "created_by": self.created_by, "created_at": self.created_at,
                "finished_at": self.finished_at, "error": self.error, "result": self.result}


class Runs:
    """The replays of one server, kept in memory (a replay is a few seconds of CPU and is not worth a table)."""

    def __init__(self) -> None:
        self._runs: OrderedDict[int, Run] = OrderedDict()
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def start(self, cluster: Cluster, who: str, cfg: SimConfig, against: SimConfig | None, jobs: list[TraceJob],
              series: int = 0, meta: dict[str, Any] | None = None) -> Run:
        with self._lock:
            run = Run(next(self._ids), cluster.id, cluster.name, who, time.time(), len(jobs))
            self._runs[run.id] = run
            while len(self._runs) > MAX_KEPT_RUNS:
                self._runs.popitem(last=False)
        thread = threading.Thread(target=self._work, args=(run, cfg, against, jobs, series, meta or {}),
                                  name=f"simulation-{run.id}", daemon=True)
        thread.start()
        return run

    @staticmethod
    def _work(run: Run, cfg: SimConfig, against: SimConfig | None, jobs: list[TraceJob], series: int,
              meta: dict[str, Any]) -> None:
        try:
            result = run_replays(cfg, against, jobs, lambda f: setattr(run, "progress", f), series)
            result.update(meta)
            run.result, run.status = result, "done"
        except Exception as exc:  # noqa: BLE001 - a failed replay is reported on the run, not lost in a thread
            run.status, run.error = "failed", f"the replay failed: {exc}"
        run.finished_at = time.time()

    def get(self, cluster_id: int, run_id: int) -> Run:
        run = self._runs.get(run_id)
        if run is None or run.cluster_id != cluster_id:
            raise NotFound(f"no simulation {run_id} on this cluster (finished ones are kept for the last "
                           f"{MAX_KEPT_RUNS} replays of the server)")
        return run

    def latest(self, cluster_id: int) -> Run | None:
        for run in reversed(self._runs.values()):
            if run.cluster_id == cluster_id:
                return run
        return None


def runs_of(extras: dict[str, Any]) -> Runs:
    found = extras.get("simulations")
    if found is None:
        found = extras.setdefault("simulations", Runs())
    return found
