"""Recovery: what the loop does with a cluster's jobs when its engine is new to it, and how it reports failures.

An engine is new to the loop when the server (re)started, and also after one of the cluster's steps failed (the
loop then drops the cluster's state and loads it again from the database). The database says which jobs hold
resources (admitted or running); only the engine knows what became of them, so each is asked about
(Backend `reattach`, backends/base.py):
 - it runs: the engine tracks it again; a job the database still calls admitted is marked running;
 - it ended (while the server was down, or while the cluster was being rebuilt): recorded with its exit code and
   end time, and metered up to that end;
 - it is lost (started, gone, no recorded exit code): failed with reason code `lost`, saying the exit status is
   unknown;
 - the engine has no record of it: an admitted job is launched (it never started), a running one is lost.
Then the engine stops its runs that no holding job owns (cancelled, preempted or ended while their stop was not
delivered), and the preempted jobs not requeued yet are stopped again. Launch itself is idempotent across restarts
(a local run's record says whether it started), so a job admitted just before a crash is never run twice.

Failures the loop isolates (one event, one cluster's step) are logged with their traceback and counted on /metrics:
allot_scheduler_failures_total{cluster, stage}; recovery outcomes in allot_scheduler_recovered_jobs_total{cluster,
outcome} and stopped orphans in allot_scheduler_orphans_stopped_total{cluster}. What an engine's answer changes in a
job's interval is also handed back as an EngineCorrection, which a usage recalculation returns and audits.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter
from sqlalchemy import select
from sqlalchemy.orm import Session

from allotment.backends.base import ENDED, LOST, RUNS, Backend, recovers
from allotment.scheduler.engines import duration_of, launch_of
from allotment.scheduler.load import admission_key
from allotment.scheduler.metering import Usage
from allotment.scheduler.persist import Writes
from allotment.scheduler.runtime import Actions, ClusterRuntime
from allotment.workloads.models import ADMITTED, FAILED, HOLDING_STATES, RUNNING, SUCCEEDED, Job, active

log = logging.getLogger("allotment.scheduler")

LOST_CODE = "lost"
RESTARTED = "the server restarted while the job ran"


class Faults:
    """The loop's failure and recovery counters on the app's metrics registry (None: counted nowhere)."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        self._failures = self._recovered = self._orphans = None
        if registry is not None:
            self._failures = Counter(
                "allot_scheduler_failures", "Scheduler steps that failed and were isolated (stage: event = one engine "
                "event dropped, load/events/idle/decide = one cluster's step, cycle = the whole cycle)",
                ["cluster", "stage"], registry=registry)
            self._recovered = Counter("allot_scheduler_recovered_jobs", "Holding jobs found again by a new engine "
                                      "(outcome: adopted, ended, lost, launched)", ["cluster", "outcome"],
                                      registry=registry)
            self._orphans = Counter("allot_scheduler_orphans_stopped", "Runs no holding job owned, stopped at "
                                    "recovery", ["cluster"], registry=registry)

    def failure(self, cluster: str, stage: str) -> None:
        if self._failures is not None:
            self._failures.labels(cluster, stage).inc()

    def recovered(self, cluster: str, outcome: str) -> None:
        if self._recovered is not None:
            self._recovered.labels(cluster, outcome).inc()

    def orphans(self, cluster: str, count: int) -> None:
        if self._orphans is not None and count:
            self._orphans.labels(cluster).inc(count)


@dataclass(frozen=True)
class EngineCorrection:
    """Where an engine's own record of a job disagreed with the database's, for one job interval (one admission):
    what the records said before (`before_*`, the interval open as of `as_of`) and what they say after the engine
    answered. `outcome` is the engine's answer: ended, lost or launched (it never started)."""

    cluster: str
    job_id: int
    outcome: str
    interval_start: float
    gpu_milli: int
    cpu_milli: int
    before_state: str
    after_state: str
    after_end: float | None
    as_of: float

    def held_s(self, end: float | None) -> float:
        return max((self.as_of if end is None else end) - self.interval_start, 0.0)

    def sentence(self) -> str:
        before = f"{self.before_state}, interval open ({self.held_s(None) / 3600:.3f} h so far)"
        if self.after_end is None:
            after = f"{self.after_state}, interval open"
        else:
            after = f"{self.after_state}, interval closed ({self.held_s(self.after_end) / 3600:.3f} h held)"
        said = {"ended": "its engine says it ended", "lost": "its engine lost it",
                "launched": "its engine never started it (launched now)"}.get(self.outcome, self.outcome)
        return f"cluster {self.cluster}: job {self.job_id}: {said}; {before} -> {after}"


def holding_admissions(session: Session) -> dict[int, str]:
    """Every holding job of every cluster with its admission: the runs engines must keep (engines of several
    clusters may share one place, such as the local engine's jobs directory)."""
    rows = session.execute(select(Job.id, Job.admitted_at).where(active(*HOLDING_STATES))).all()
    return {job_id: admission_key(admitted_at) or "" for job_id, admitted_at in rows}


def recover(rt: ClusterRuntime, backend: Backend, now: float, writes: Writes, actions: Actions, usage: list[Usage],
            faults: Faults, cause: str = RESTARTED, corrections: list[EngineCorrection] | None = None) -> None:
    """Ask the cluster's new engine about every job the database says holds resources (see the module's text).
    The loop also asks a running engine about jobs it lost track of, or whose launch met an outage (reconcile.py):
    `cause` says why in the reasons and the log. Each answer that changes a job's interval is appended to
    `corrections` when given."""
    for job_id in [*rt.recover_admitted, *rt.recover_running]:
        info = rt.jobs.get(job_id)
        if info is None or info.state not in HOLDING_STATES:
            continue
        before, ended_at, ended_as = info.state, None, None
        remaining = None
        if info.state == RUNNING and rt.kind == "simulated":
            duration = duration_of(info)
            remaining = None if duration is None else (info.started_at or now) + duration - now
        launch = launch_of(info, info.devices, remaining, rt.inv.pool_names.get(info.placed_pool))
        if not recovers(backend):  # an engine without the contract: launch what never started, the rest is lost
            if info.state == ADMITTED:
                actions.launches.append((rt.cluster_id, launch))
            else:
                rt.end(info, now, FAILED, None, LOST_CODE, f"{cause} and its engine cannot find its runs again; "
                       "its exit status is unknown", writes, usage)
                _note(corrections, rt, info, "lost", before, FAILED, now, now)
            continue
        found = backend.reattach(launch, now)  # type: ignore[attr-defined]
        if found.state == RUNS:
            if found.handle:
                info.handle = found.handle
            if info.state == ADMITTED:
                rt.mark_running(info, found.started_at or now, writes)
            outcome = "adopted"
        elif found.state == ENDED:
            if info.state == ADMITTED and found.started_at is not None:
                info.started_at = found.started_at
            ok = found.exit_code == 0 and found.message is None
            message = None if ok else (found.message or f"exited with code {found.exit_code}")
            ended_at, ended_as = found.ended_at or now, SUCCEEDED if ok else FAILED
            rt.end(info, ended_at, ended_as, found.exit_code,
                   None if ok else "failed", message, writes, usage)
            outcome = "ended"
        elif found.state == LOST:
            if info.state == ADMITTED and found.started_at is not None:
                info.started_at = found.started_at
            ended_at, ended_as = found.ended_at or now, FAILED
            rt.end(info, ended_at, FAILED, None, LOST_CODE,
                   f"{cause}: {found.message or 'its exit status is unknown'}",
                   writes, usage)
            outcome = "lost"
        elif info.state == ADMITTED:  # no record: it never started
            actions.launches.append((rt.cluster_id, launch))
            outcome = "launched"
        else:
            ended_at, ended_as = now, FAILED
            rt.end(info, now, FAILED, None, LOST_CODE, f"{cause} and its engine has no record of it; its exit status "
                   "is unknown", writes, usage)
            outcome = "lost"
        faults.recovered(rt.name, outcome)
        if outcome != "adopted":
            _note(corrections, rt, info, outcome, before, ended_as or info.state, ended_at, now)
            log.info("scheduler: cluster %s: job %s %s (%s)", rt.name, job_id, outcome,
                     "the engine is new" if cause == RESTARTED else cause)
    for job_id in rt.requeue:
        actions.cancels.append((rt.cluster_id, job_id))  # the stop may not have happened before the restart
    rt.recover_admitted.clear()
    rt.recover_running.clear()


def _note(corrections: list[EngineCorrection] | None, rt: ClusterRuntime, info, outcome: str, before: str,
          after: str, ended_at: float | None, now: float) -> None:
    if corrections is not None:
        start = int(info.admission) / 1e6 if info.admission else (info.started_at or now)
        corrections.append(EngineCorrection(rt.name, info.id, outcome, start, info.gpu, info.cpu, before, after,
                                            ended_at, now))


def stop_orphans(rt: ClusterRuntime, backend: Backend, holding: dict[int, str], now: float, faults: Faults) -> None:
    """Stop the engine's runs that no holding job owns, and say so in the log."""
    if not recovers(backend):
        return
    stopped = backend.stop_orphans(holding, now)  # type: ignore[attr-defined]
    for what in stopped:
        log.warning("scheduler: cluster %s: stopped an orphan run: %s", rt.name, what)
    faults.orphans(rt.name, len(stopped))
