"""Recalculate usage (Backend.AI's maintenance action): bring the usage records in line with the jobs' own record of
when they held resources, and say what was corrected.

The scheduler writes and closes records in the transactions that change the jobs, so in normal operation there is
nothing to correct. This covers what happened outside it: jobs admitted before metering existed, rows changed by hand
or restored from a backup. Run at start-up and on request (`allot admin recalculate-usage`), it
- closes an open record whose job no longer holds resources under that admission, at the job's recorded end (its
  finished time, else the time it last changed);
- opens a record for a holding job that has none for its current admission (its interval continues);
- adds the closed record of an ended job's last interval when none exists;
- starts the capacity history of a pool that has none (accounting/capacity.py).
Every correction is a sentence naming the job and the numbers; reports roll up from the records, so they follow.
With the scheduler running, each cluster's state is then rebuilt at once and its engine asked about its holding jobs
(occupied resources from the engines' truth). Where an engine's own record disagrees with the records (a job the
database calls running ended or was lost there), the loop corrects the job and its interval; each such correction is
returned with the interval before and after, and audited with the others (`run`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from allotment.accounting import capacity
from allotment.accounting.models import UsageRecord
from allotment.inventory.models import Pool
from allotment.workloads.models import FINAL_STATES, HOLDING_STATES, Job


def _ts(value) -> float | None:
    return None if value is None else value.timestamp()


def recalculate(session: Session, now: float, cluster_id: int | None = None) -> list[str]:
    corrections: list[str] = []
    open_q = select(UsageRecord).where(UsageRecord.end_s.is_(None))
    if cluster_id is not None:
        open_q = open_q.where(UsageRecord.cluster_id == cluster_id)
    open_rows = list(session.scalars(open_q))
    jobs = {}
    if open_rows:
        ids = sorted({r.job_id for r in open_rows})
        for i in range(0, len(ids), 500):
            for job in session.scalars(select(Job).where(Job.id.in_(ids[i:i + 500]))):
                jobs[job.id] = job
    for rec in open_rows:
        job = jobs.get(rec.job_id)
        if job is not None and job.state in HOLDING_STATES and _ts(job.admitted_at) == rec.start_s:
            continue
        if job is None:
            end = now
        else:
            end = _ts(job.finished_at) or _ts(job.updated_at) or now
        end = max(end, rec.start_s)
        rec.end_s = end
        rec.outcome = (job.state if job is not None and job.state in FINAL_STATES else "preempted"
                       if job is not None else "cancelled")
        corrections.append(f"job {rec.job_id}: closed its open usage interval at its recorded end "
                           f"({(end - rec.start_s) / 3600:.3f} h held)")
    jq = select(Job).where(Job.admitted_at.is_not(None),
                           Job.state.in_(tuple(HOLDING_STATES) + tuple(FINAL_STATES)))
    if cluster_id is not None:
        jq = jq.where(Job.cluster_id == cluster_id)
    known = {(job_id, start) for job_id, start in session.execute(
        select(UsageRecord.job_id, UsageRecord.start_s).where(
            *(() if cluster_id is None else (UsageRecord.cluster_id == cluster_id,))))}
    models = dict(session.execute(select(Pool.id, Pool.device_model)).all())
    for job in session.scalars(jq.execution_options(yield_per=2000)):
        start = _ts(job.admitted_at)
        if (job.id, start) in known:
            continue
        holding = job.state in HOLDING_STATES
        end = None if holding else max(_ts(job.finished_at) or start, start)
        session.add(UsageRecord(job_id=job.id, cluster_id=job.cluster_id, owner_id=job.owner_id,
                                quota_id=job.quota_id, pool_id=job.placed_pool_id,
                                device_model=models.get(job.placed_pool_id), gpu_milli=job.gpu_milli or 0,
                                cpu_milli=job.cpu_milli or 0, memory_bytes=job.memory_bytes or 0, start_s=start,
                                end_s=end, outcome=None if holding else job.state))
        corrections.append(f"job {job.id}: added its missing usage interval "
                           + ("(still holding resources)" if holding else f"({(end - start) / 3600:.3f} h held)"))
    session.flush()
    corrections += capacity.baseline(session, now, cluster_id)
    return corrections


@dataclass
class Recalculation:
    corrections: list[str] = field(default_factory=list)  # the usage records brought in line with the jobs
    engines: list[str] = field(default_factory=list)  # the clusters rebuilt, asking their engines
    engine_corrections: list = field(default_factory=list)  # scheduler.recovery.EngineCorrection, one per interval

    @property
    def total(self) -> int:
        return len(self.corrections) + len(self.engine_corrections)

    def audit_changes(self, limit: int = 1000) -> dict[str, Any]:
        """The audit record: the engines' corrections as a before/after difference per job interval, the records'
        corrections as sentences."""
        before, after = {}, {}
        for c in self.engine_corrections[:limit]:
            key = f"job {c.job_id} interval from {_iso(c.interval_start)}"
            before[key] = interval_text(c.before_state, None, c.held_s(None))
            after[key] = interval_text(c.after_state, c.after_end, c.held_s(c.after_end))
        out: dict[str, Any] = {"corrections": self.corrections[:limit], "total": self.total}
        if before:
            out.update(before=before, after=after)
        return out


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


def interval_text(state: str, end: float | None, held_s: float) -> str:
    if end is None:
        return f"{state}, open, {held_s / 3600:.3f} h so far"
    return f"{state}, closed at {_iso(end)}, {held_s / 3600:.3f} h held"


def run(session: Session, extras: dict, now: float, cluster_id: int | None = None) -> Recalculation:
    """The whole recalculation: the records first (committed, so that the scheduler's cycle sees them), then the
    engines through the scheduler's rebuild, then the budget gate reads every record again."""
    out = Recalculation(corrections=recalculate(session, now, cluster_id))
    session.commit()
    scheduler = extras.get("scheduler")
    gate = getattr(scheduler, "budgets", None)
    if gate is not None:
        gate.ledger.stale = True
    if scheduler is not None:
        out.engines, out.engine_corrections = scheduler.rebuild(cluster_id)
    return out
