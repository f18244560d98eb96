"""Metering: a usage record for every interval in which a job holds resources, and hooks on what a job used.

`write_intervals` runs inside the cycle's one transaction (persist.Writes.apply): each admission opens a record
(accounting.models.UsageRecord, unique per job and admission time) and each end or preemption closes the job's open
one. The record and the job's state therefore commit together or not at all: a crash or kill -9 never drops an
interval nor counts one twice, and a retried cycle finds the record it already wrote. Intervals run from admission
(resources are reserved from then on) to the end or preemption.

Device-seconds are the GPU amount (a fraction counts as such) times the seconds held; cpu likewise. The loop calls
every hook with a `Usage` after the commit; a Prometheus counter keeps the running totals per cluster for /metrics.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from allotment.scheduler.persist import Writes

from prometheus_client import CollectorRegistry, Counter
from sqlalchemy import BigInteger, Float, String, and_, any_, bindparam, exists, func, insert, select, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection

from allotment.accounting.models import UsageRecord
from allotment.inventory.models import Device, Pool
from allotment.scheduler import bulk
from allotment.workloads.models import Job

log = logging.getLogger("allotment.scheduler")


class Usage(NamedTuple):
    """One interval a job held resources (a tuple: the loop makes one per job that ends or is preempted)."""

    job_id: int
    cluster: str
    quota_id: int | None
    pool_id: int | None
    outcome: str  # succeeded | failed | cancelled | preempted
    started_at: float
    ended_at: float
    gpu_milli: int
    cpu_milli: int

    @property
    def seconds(self) -> float:
        return max(self.ended_at - self.started_at, 0.0)

    @property
    def device_seconds(self) -> float:
        return self.gpu_milli / 1000.0 * self.seconds

    @property
    def cpu_seconds(self) -> float:
        return self.cpu_milli / 1000.0 * self.seconds


Hook = Callable[[Usage], None]


class Meter:
    def __init__(self, registry: CollectorRegistry | None, sessions=None) -> None:
        self.hooks: list[Hook] = []
        self._gpu = self._cpu = None
        self._waits = None
        if registry is not None and sessions is not None:  # gauges per quota and pool, time to admission
            from allotment.accounting.metrics import install

            self._waits = install(registry, sessions)
        self._sessions = sessions
        if registry is not None:
            self._gpu = Counter("allot_gpu_seconds", "GPU device-seconds used by finished jobs", ["cluster"],
                                registry=registry)
            self._cpu = Counter("allot_cpu_seconds", "CPU core-seconds used by finished jobs", ["cluster"],
                                registry=registry)

    def admitted(self, waits: list[tuple[str, str, float]]) -> None:
        """After the commit: the time to admission of the cycle's admissions (cluster, quota, seconds), which the
        loop knows from its own state (runtime.Actions.waits)."""
        if self._waits is None or not waits:
            return
        try:
            self._waits.observe(waits)
        except Exception:  # a metric must never stop the scheduler
            log.exception("metering: could not observe the times to admission")

    def record(self, usage: Usage) -> None:
        self.record_all([usage])

    def record_all(self, usages: list[Usage]) -> None:
        """The cycle's committed intervals: the counters per cluster (one update per cluster), then every hook."""
        if self._gpu is not None and self._cpu is not None:
            totals: dict[str, list[float]] = {}  # milli-GPU and millicore seconds: divided once per cluster
            for usage in usages:
                sums = totals.get(usage.cluster)
                if sums is None:
                    sums = totals[usage.cluster] = [0.0, 0.0]
                held = usage.ended_at - usage.started_at  # Usage.seconds, inline: a cycle ends thousands of jobs
                if held > 0:
                    sums[0] += usage.gpu_milli * held
                    sums[1] += usage.cpu_milli * held
            for cluster, (gpu, cpu) in totals.items():
                self._gpu.labels(cluster).inc(gpu / 1000.0)
                self._cpu.labels(cluster).inc(cpu / 1000.0)
        for hook in self.hooks:
            for usage in usages:
                try:
                    hook(usage)
                except Exception:  # a metering consumer must never stop the scheduler
                    log.exception("metering hook %r failed for job %s", hook, usage.job_id)


U = UsageRecord.__table__
J = Job.__table__
# Typed, so that PostgreSQL knows what the parameters are (psycopg renders the casts).
_JOB = bindparam("u_job", type_=BigInteger())
_START = bindparam("u_start", type_=Float())
CLOSE = update(U).where(U.c.job_id == _JOB, U.c.end_s.is_(None)).values(
    end_s=bindparam("u_end", type_=Float()), outcome=bindparam("u_outcome", type_=String()))
SET_MODEL = update(U).where(U.c.job_id == _JOB, U.c.start_s == _START).values(
    device_model=bindparam("u_model", type_=String()))
P = Pool.__table__


def _opening(ids: Any) -> Any:
    """One INSERT ... SELECT for the jobs admitted at one time (a cycle stamps all its admissions alike): what each
    holds is copied from its row, just updated by the admission; the NOT EXISTS keeps a replayed admission from
    writing a second record. `ids` is the condition naming the jobs (one parameter, whatever their number)."""
    return insert(U).from_select(
        ["job_id", "cluster_id", "owner_id", "quota_id", "pool_id", "device_model", "gpu_milli", "cpu_milli",
         "memory_bytes", "start_s"],
        select(J.c.id, J.c.cluster_id, J.c.owner_id, J.c.quota_id, J.c.placed_pool_id,
               select(P.c.device_model).where(P.c.id == J.c.placed_pool_id).scalar_subquery(),
               J.c.gpu_milli, J.c.cpu_milli, J.c.memory_bytes, _START)
        .where(ids, ~exists().where(and_(U.c.job_id == J.c.id, U.c.start_s == _START))))


# The job ids travel as one array (PostgreSQL) or one JSON text (SQLite's json_each): one statement per cycle, which
# the database runs as one set (a statement per job cost eight times as much on PostgreSQL).
OPEN_PG = _opening(J.c.id == any_(bindparam("u_jobs", type_=postgresql.ARRAY(BigInteger()))))
OPEN_JSON = _opening(J.c.id.in_(select(func.json_each(bindparam("u_jobs", type_=String())).table_valued("value")
                                       .c.value)))


def _open(conn: Connection, start_s: float, ids: list[int]) -> None:
    if conn.dialect.name == "postgresql":
        with bulk.planned_for_its_rows(conn):  # an array of any length: planned for it (bulk.py says why)
            conn.execute(OPEN_PG, {"u_jobs": ids, "u_start": start_s})
    else:
        conn.execute(OPEN_JSON, {"u_jobs": json.dumps(ids), "u_start": start_s})


def _device_models(conn: Connection, admits: list[dict]) -> list[dict]:
    """The models of the GPUs placed for each GPU job, comma-separated (a pool's own model is set by _open)."""
    device_ids = {d["device_id"] for a in admits for d in a["b_devices"] or () if "device_id" in d}
    if not device_ids:
        return []
    models = dict(conn.execute(select(Device.id, Device.model).where(Device.id.in_(device_ids))).all())
    out = []
    for a in admits:
        held = sorted({models[d["device_id"]] for d in a["b_devices"] or () if d.get("device_id") in models})
        if held:
            out.append({"u_job": a["b_id"], "u_start": a["b_at"].timestamp(), "u_model": ",".join(held)[:255]})
    return out


def write_intervals(conn: Connection, writes: Writes) -> None:
    """Close the intervals of the jobs that ended or were preempted, then open those of the admitted ones."""
    closes = [{"u_job": f["b_id"], "u_end": f["b_at"].timestamp(), "u_outcome": f["b_state"]}
              for f in writes.finishes]
    closes += [{"u_job": p["b_id"], "u_end": p["b_at"].timestamp(), "u_outcome": "preempted"}
               for p in writes.preempts]
    if closes:
        bulk.executemany(conn, CLOSE, closes)
    if writes.admits:
        by_start: dict[float, list[int]] = {}
        for a in writes.admits:
            by_start.setdefault(a["b_at"].timestamp(), []).append(a["b_id"])
        for start_s, ids in by_start.items():
            _open(conn, start_s, ids)
        models = _device_models(conn, writes.admits)
        if models:
            bulk.executemany(conn, SET_MODEL, models)


def repair_at_start(sessions) -> None:
    """Before the loop's first cycle: bring usage records in line with the jobs (accounting/recalculate.py). Open
    intervals of jobs still holding resources continue; those of jobs that ended are closed at the recorded end."""
    from allotment.accounting.recalculate import recalculate
    from allotment.db import transaction

    try:
        with transaction(sessions) as session:
            for correction in recalculate(session, time.time()):
                log.warning("metering at start-up: %s", correction)
    except Exception:  # metering repairs must never keep the scheduler from starting
        log.exception("metering: the start-up check of usage records failed")
