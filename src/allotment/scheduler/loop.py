"""The scheduler loop: a thread that admits, places and preempts jobs, in a process of its own under `allot server`
(process.py) or in the server's process when the app is embedded (settings.scheduler_mode).

One cycle:
 1. clusters: build a cluster's state from the database the first time and whenever its configuration version or
    its resource-management switch changes (runtime.py); otherwise keep it;
 2. pull what changed since the last cycle: new submissions (jobs above the id watermark), cancellations (an indexed
    look at the last minute), and the backends' events (started, succeeded, failed);
 3. requeue the jobs preempted in the previous cycle; at most once per tick, end the running jobs their engine found
    idle for their owner's resource policy's idle timeout; then let core decide (admit, place, preempt, wait with
    reason);
 4. persist every change of the cycle in ONE transaction (bulk UPDATEs, guarded by the state each job must be in;
    the events' rows go to the database from a writer thread while core decides, persist.EventWrites);
 5. only then tell the engines: stop the preempted and cancelled jobs, launch the admitted ones.
A crash before 4 loses nothing (the database still says what it said; events not yet written are polled again or
replayed); after a crash between 4 and 5, or while jobs ran, the new loop asks each engine about the holding jobs and
adopts, records or launches them (recovery.py): launch is idempotent across restarts, so nothing runs twice. If the
guarded writes find that a job changed under the cycle, the cycle is rolled back and every cluster's state is rebuilt.

Each cluster's engine is built from its stored settings, again when they change (engine_setup.py); the loop records
its health on the cluster, has remote engines report their nodes periodically, keeps an engine's outage from failing
anything (queued jobs wait with reason `backend_unavailable`, launches that met it are retried under the same
admission) and reconciles the control plane's view with each engine's continuously (reconcile.py).

Failures are isolated: an engine event that cannot be applied is logged, counted and dropped (the cluster is then
rebuilt and its engine asked again about its jobs); a cluster whose step fails loses only its own work of the cycle
and is rebuilt the same way, retried after a growing pause (up to a minute) while it keeps failing; other clusters
and later cycles go on.

It reacts to events (state.scheduler_wakeup, set by submissions, cancellations and configuration changes, and once
more after their transaction commits), to the engines' next due event and to core's (a waiting job's preemption
delay ending, a job ageing), with settings.scheduler_tick_s as the longest sleep. Tests drive it deterministically
with `Scheduler(state).run_cycle(now)`.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from allotment import compiled_core
from allotment.accounting.gate import BUDGET_EXHAUSTED, BudgetGate
from allotment.api.state import AppState
from allotment.backends.base import Backend, JobEvent, recovers, reports_idleness
from allotment.core.model import Admit, Preempt, SchedulerConfig, Wait
from allotment.policies.gate import PolicyGate
from allotment.scheduler import load, metering
from allotment.scheduler.engine_setup import EngineSetup
from allotment.scheduler.engines import opened
from allotment.scheduler.gates import Gates
from allotment.scheduler.gcpause import CycleCollector, gc_paused
from allotment.scheduler.metering import Meter, Usage
from allotment.scheduler.persist import Conflict, EventWrites, Sent, Writes
from allotment.scheduler.reconcile import EngineWatch, unavailable
from allotment.scheduler.recovery import EngineCorrection, Faults, holding_admissions, recover, stop_orphans
from allotment.scheduler.runtime import NO_BACKEND, Actions, ClusterRuntime
from allotment.scheduler.scan import Scan
from allotment.scheduler.wake_hook import Hooks, install_wake_hook, remove_wake_hook
from allotment.workloads.models import FAILED, HOLDING_STATES, RUNNING, Job

log = logging.getLogger("allotment.scheduler")

MAX_RETRY_PAUSE_S = 60.0  # a cluster that keeps failing is loaded again at most this far apart
# Idle timeouts are whole seconds (minutes in practice): looking for idle jobs more often than this ends none sooner
# and cost a database read per tick (a tenth of the loop's time on PostgreSQL at a 50 ms tick, benchmarks/README.md).
IDLE_CHECK_S = 1.0


@dataclass
class CycleReport:
    admitted: int = 0
    preempted: int = 0
    waiting: int = 0
    finished: int = 0
    writes: int = 0
    seconds: float = 0.0
    conflict: bool = False  # the database changed under the cycle: nothing was written, the state is rebuilt


class Scheduler(EngineSetup, Scan):
    def __init__(self, state: AppState) -> None:
        self.state = state
        settings = state.settings
        self.config = SchedulerConfig(starvation_age_s=settings.scheduler_starvation_age_s,
                                      max_admissions_per_cycle=settings.scheduler_max_admissions_per_cycle,
                                      preemption_delay_s=settings.scheduler_preemption_delay_s)
        self.tick = max(float(settings.scheduler_tick_s), 0.001)
        self.runtimes: dict[int, ClusterRuntime] = {}
        self.backends: dict[int, Backend | None] = {}
        self._fresh_engines: set[int] = set()  # clusters whose engine must be asked about their jobs (recovery.py)
        self._unswept: set[int] = set()  # new engines that have not stopped their orphan runs yet
        self._failures: dict[int, int] = {}  # cluster -> failed steps in a row
        self._retry_at: dict[int, float] = {}  # cluster -> when it may be loaded again after a failure
        self._reconcile: set[int] = set()  # clusters to rebuild after this cycle (an event was dropped)
        self._names: dict[int, str] = {}  # cluster id -> name, for the log and metrics of a cluster not loaded
        self.backlog: dict[int, list[JobEvent]] = {}  # polled, not yet committed
        self.watermark: int | None = None
        self._gaps: list[tuple[int, int, float]] = []
        self._last_scan = 0.0
        self._last_now = 0.0  # the latest cycle's time: a rebuild between cycles never runs behind it
        self._engine_corrections: list[EngineCorrection] | None = None  # collected while a rebuild runs a cycle
        self._idle_checked: float | None = None
        self._more = False
        # Limits core does not know (gates.py), shared by every cluster: resource policies' totals, hour budgets.
        self.budgets = BudgetGate(settings.budget_safe_mode, settings.budget_default_time_limit_s,
                                  stop_running=settings.budget_stop_running, grace_s=settings.budget_grace_s)
        self.gates = Gates([PolicyGate(), self.budgets])
        meter = state.extras.get("scheduler_meter")
        if meter is None:
            meter = state.extras["scheduler_meter"] = Meter(state.extras.get("metrics_registry"), state.sessions)
        self.meter: Meter = meter
        faults = state.extras.get("scheduler_faults")
        if faults is None:
            faults = state.extras["scheduler_faults"] = Faults(state.extras.get("metrics_registry"))
        self.faults: Faults = faults
        self.watch = EngineWatch(faults)  # each engine's health, inventory, outages and reconciliation
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        # Set once the thread's first cycle has committed: the loaded state and the engines are up, so a submission is
        # decided within a cycle from then on (/readyz reports it).
        self._first_cycle = threading.Event()
        self._collector = CycleCollector()
        self._lock = threading.Lock()  # a cycle changes the runtimes; explain() reads them between cycles
        state.extras["scheduler"] = self
        self._hooks: Hooks = []

    # -- the cycle ---------------------------------------------------------------------------------------------------
    def run_cycle(self, now: float | None = None, scan: bool = True) -> CycleReport:
        """One cycle at time `now` (epoch seconds; default: the clock). `scan` looks for new and cancelled jobs."""
        with self._lock, gc_paused():  # the whole cycle (scheduler/gcpause.py): none of its objects form cycles
            report = self._cycle(now, scan)
            self._collector.after_cycle()
            return report

    def rebuild(self, cluster_id: int | None = None) -> tuple[list[str], list[EngineCorrection]]:
        """Usage recalculation (Backend.AI): drop the clusters' state and build it again at once from the database,
        asking each engine about its holding jobs (recovery.py), so that what is held is the engines' truth. Returns
        a sentence per cluster and every job interval an engine's answer corrected (committed by that cycle)."""
        with self._lock:
            names = []
            for cid in [cluster_id] if cluster_id is not None else list(self.runtimes):
                rt = self.runtimes.pop(cid, None)
                if rt is None:
                    continue
                if self.backends.get(cid) is not None:
                    self._fresh_engines.add(cid)
                names.append(f"cluster {rt.name}: its state is rebuilt from the database and its engine asked about "
                             f"its {sum(1 for i in rt.jobs.values() if i.state in HOLDING_STATES)} holding job(s)")
            corrections: list[EngineCorrection] = []
            if names:
                self._engine_corrections = corrections
                try:
                    report = self._cycle(max(time.time(), self._last_now), True)
                except Exception:
                    log.exception("scheduler: the rebuild for a usage recalculation failed")
                    report = None
                finally:
                    self._engine_corrections = None
                if report is None or report.conflict:
                    corrections = []
                    names.append("the rebuild did not complete; the loop asks the engines again at its next cycle")
        self.state.scheduler_wakeup.set()
        return names, corrections

    def explain(self, cluster_id: int, job_id: int, wait_s: float = 0.5) -> tuple[str, str] | None:
        """(reason code, sentence) of a queued job with the numbers of now, from the loop's own state; None when the
        loop does not know the job or is busy with a cycle for longer than `wait_s` (the stored reason then stands).
        Stored reasons of jobs queued behind a blocked group's head are refreshed only when the code changes (see
        runtime.REASON_REFRESH_S), so a job's page asks here."""
        if not self._lock.acquire(timeout=wait_s):
            return None
        try:
            rt = self.runtimes.get(cluster_id)
            return rt.explain(job_id) if rt is not None else None
        finally:
            self._lock.release()

    def _cycle(self, now: float | None, scan: bool) -> CycleReport:
        began = time.perf_counter()
        clock = now is None
        now = time.time() if clock else now
        self._last_now = max(self._last_now, now)
        report = CycleReport()
        writes, actions, usage = Writes(), Actions(), []
        session = self.state.sessions()
        sent: Sent | None = None
        try:
            scan = scan or not self._last_scan or not self.runtimes
            if scan:  # configuration changes always wake the loop (commit hook), so clusters are read on scans only
                self.gates.refresh(session)
                self._clusters(session, now, writes, actions, usage)
                self._scan(session, now, writes, actions, usage)
                if clock:  # decisions are stamped after the scan, so no job is admitted before it was submitted
                    now = time.time()
            holding: list[dict[int, str]] = []  # read once, when an engine's reconciliation first needs it
            for cid, rt in list(self.runtimes.items()):
                self._guarded(cid, "events", now, writes, actions, usage, self._events, session, rt, now, writes,
                              actions, usage, holding)
            for cid, backend in self.backends.items():
                if backend is not None:
                    self.watch.report(session, cid, backend)
            self._end_idle(session, now, writes, actions, usage)
            self._end_overdrawn(now, writes, actions, usage)
            report.finished = len(usage)
            # The events' rows are written while core decides (persist.EventWrites); nothing touches the session
            # again until they are done.
            before = len(writes)
            sent = EventWrites.send(session.connection(), writes)
            taken = before - len(writes)
            self.gates.begin_cycle()
            for cid, rt in list(self.runtimes.items()):
                for d in self._guarded(cid, "decide", now, writes, actions, usage, rt.decide, now, writes, actions,
                                       usage) or ():
                    if isinstance(d, Admit):
                        report.admitted += 1
                    elif isinstance(d, Preempt):
                        report.preempted += 1
                    elif isinstance(d, Wait):
                        report.waiting += 1
            EventWrites.wait(sent, session.connection())
            report.writes = taken + len(writes)
            if len(writes):
                writes.apply(session.connection())
            session.commit()
        except Conflict as exc:
            EventWrites.settle(sent)
            session.rollback()
            self.watch.unreported()
            self.runtimes.clear()
            log.info("scheduler: %s; the cycle was rolled back and the state is rebuilt from the database", exc)
            report.conflict = True
            return report
        except BaseException:
            EventWrites.settle(sent)  # the rollback must not overtake rows still being written
            session.rollback()
            self.watch.unreported()
            self.runtimes.clear()  # rebuilt from the database next cycle; polled events stay in the backlog
            self.faults.failure("*", "cycle")
            raise
        finally:
            session.close()
        self.backlog.clear()
        for cid in self.runtimes:
            self._failures.pop(cid, None)
        for cid in self._reconcile:  # an event of it was dropped: rebuild it and ask its engine again
            if self.runtimes.pop(cid, None) is not None and self.backends.get(cid) is not None:
                self._fresh_engines.add(cid)
        self._reconcile.clear()
        self.meter.record_all(usage)  # committed: metered before the engines are told (a stop may wait for a grace)
        self.meter.admitted(actions.waits)
        self._dispatch(actions, now)
        limit = self.config.max_admissions_per_cycle
        self._more = (limit is not None and report.admitted >= limit) or self.gates.reopened
        report.seconds = time.perf_counter() - began
        return report

    def _clusters(self, session: Session, now: float, writes: Writes, actions: Actions, usage: list[Usage]) -> None:
        rows = load.clusters(session)
        if self._ensure_backends(session, rows, now):
            session.commit()  # the engines' statuses and the inventory they reported; the cycle's own writes follow
            rows = load.clusters(session)
        present = {r.id for r in rows}
        self._names = {r.id: r.name for r in rows}
        for cid in [c for c in self.runtimes if c not in present]:
            del self.runtimes[cid]
        for cid in [c for c in self.backends if c not in present]:
            self._close(cid)
        holding: list[dict[int, str]] = []  # read once, when a new engine first needs it
        for row in rows:
            rt = self.runtimes.get(row.id)
            if rt is not None and rt.version == row.config_version \
                    and rt.enabled == bool(row.resource_management_enabled):
                continue
            if rt is None and self._retry_at.get(row.id, now) > now:
                continue  # it failed a moment ago: not again at every cycle
            if self.watermark is None:  # read before loading, so nothing submitted meanwhile is missed
                self.watermark = session.scalar(select(func.max(Job.id))) or 0
            self._guarded(row.id, "load", now, writes, actions, usage, self._load, session, row, now, writes,
                          actions, usage, holding)

    def _load(self, session: Session, row, now: float, writes: Writes, actions: Actions, usage: list[Usage],
              holding: list[dict[int, str]]) -> None:
        """Build a cluster's state from the database; with an engine new to it, recover its jobs first. When only
        its nodes and devices changed, the state it has takes them node by node instead (runtime.refresh_inventory)."""
        old = self.runtimes.pop(row.id, None)
        inv = load.inventory(session, row.id)
        if old is not None and old.enabled == bool(row.resource_management_enabled) \
                and row.id not in self._fresh_engines and old.refresh_inventory(inv):
            old.version = row.config_version
            self.runtimes[row.id] = old
            log.info("scheduler: cluster %s: its nodes changed (config version %s); applied node by node", row.name,
                     row.config_version)
            return
        rt = ClusterRuntime(row, inv, load.active_jobs(session, row.id), self.config, now,
                            self.backends.get(row.id) is not None, self.gates,
                            old.core.preemption_history() if old is not None and old.core is not None else None)
        backend = self.backends.get(row.id)
        build_error = self.watch.state(row.id).build_error
        if build_error and rt.blocked_reason is not None and rt.blocked_reason[0] == NO_BACKEND:
            rt.blocked_reason = (NO_BACKEND, f"cluster {row.name}: {build_error}; queued jobs wait until it is fixed")
        error = unavailable(backend)
        if error is not None:  # down already: recovery waits until it answers (_events)
            rt.engine_down(error)
        elif row.id in self._fresh_engines and backend is not None:
            try:
                self._recover(session, rt, backend, now, writes, actions, usage, holding)
            except Exception as exc:
                error = unavailable(backend, exc)
                if error is None:
                    raise
                rt.engine_down(error)  # asked again once it answers (it stays in _fresh_engines)
        self.runtimes[row.id] = rt
        log.info("scheduler: loaded cluster %s (config version %s, %d active jobs)", row.name, row.config_version,
                 len(rt.jobs))

    def _recover(self, session: Session, rt: ClusterRuntime, backend: Backend, now: float, writes: Writes,
                 actions: Actions, usage: list[Usage], holding: list[dict[int, str]]) -> None:
        """A new engine: ask it about the cluster's holding jobs, then stop its orphan runs (recovery.py)."""
        cid = rt.cluster_id
        recover(rt, backend, now, writes, actions, usage, self.faults, corrections=self._engine_corrections)
        if cid in self._unswept and recovers(backend):
            if not holding:
                holding.append(holding_admissions(session))
            stop_orphans(rt, backend, holding[0], now, self.faults)
        self._fresh_engines.discard(cid)
        self._unswept.discard(cid)

    def _events(self, session: Session, rt: ClusterRuntime, now: float, writes: Writes, actions: Actions,
                usage: list[Usage], holding: list[dict[int, str]]) -> None:
        """A cluster's requeues, stops and engine events of this cycle; the engine's outages and reconciliation."""
        cid = rt.cluster_id
        rt.requeue_preempted(now, writes)
        for job_id in rt.cancel_requested:
            rt.stop_requested(job_id, now, writes, actions, usage)
        rt.cancel_requested.clear()
        backend = self.backends.get(cid)
        if backend is not None:
            try:
                if cid in self._fresh_engines:  # its recovery met an outage: now it may answer
                    self._recover(session, rt, backend, now, writes, actions, usage, holding)
                polled = backend.poll(now)
            except Exception as exc:
                error = unavailable(backend, exc)
                if error is None:
                    self.watch.failed(cid, exc, now)
                    raise
                rt.engine_down(error)
                polled = []
            else:
                if rt.outage is not None and unavailable(backend) is None:
                    rt.engine_up()
            if polled:
                self.backlog.setdefault(cid, []).extend(polled)
        self._apply_events(rt, now, writes, usage)
        if backend is not None and rt.outage is None and cid not in self._fresh_engines:
            try:
                self.watch.relaunch(rt, backend, now, writes, actions, usage)
                if self.watch.reconcile_due(cid, backend, now):
                    if not holding:
                        holding.append(holding_admissions(session))
                    self.watch.reconcile(rt, backend, holding[0], now, writes, actions, usage)
            except Exception as exc:
                error = unavailable(backend, exc)
                if error is None:
                    raise
                rt.engine_down(error)

    def _apply_events(self, rt: ClusterRuntime, now: float, writes: Writes, usage: list[Usage]) -> None:
        cid = rt.cluster_id
        events = self.backlog.get(cid)
        if not events:
            return
        poison = rt.apply(events, now, writes, usage)
        for ev, exc in poison:
            log.error("scheduler: cluster %s: dropped engine event %s of job %s (%s): %s; the cluster's state is "
                      "rebuilt and its engine asked again about its jobs", rt.name, ev.kind, ev.job_id, ev,
                      exc, exc_info=(type(exc), exc, exc.__traceback__))
            self.faults.failure(rt.name, "event")
            self._reconcile.add(cid)
        if poison:
            dropped = {id(ev) for ev, _ in poison}
            self.backlog[cid] = [ev for ev in events if id(ev) not in dropped]

    def _guarded(self, cid: int, stage: str, now: float, writes: Writes, actions: Actions, usage: list[Usage],
                 step, *args):
        """Run one cluster's step; if it raises, undo what it added to the cycle and set the cluster aside (its
        state is dropped and rebuilt from the database, its engine asked again about its jobs) so that the other
        clusters' work of this cycle is still committed."""
        marks = writes.mark(), actions.mark(), len(usage)
        try:
            return step(*args)
        except Conflict:
            raise
        except Exception:  # noqa: BLE001 - logged with its traceback and counted by _cluster_failed
            writes.undo(marks[0])
            actions.undo(marks[1])
            del usage[marks[2]:]
            self._cluster_failed(cid, stage, now)
            return None

    def _cluster_failed(self, cid: int, stage: str, now: float) -> None:
        rt = self.runtimes.pop(cid, None)
        name = rt.name if rt is not None else self._names.get(cid, str(cid))
        failures = self._failures[cid] = self._failures.get(cid, 0) + 1
        pause = min(2.0 ** (failures - 1) - 1.0, MAX_RETRY_PAUSE_S)
        self._retry_at[cid] = now + pause
        self.backlog.pop(cid, None)  # the rebuilt cluster asks its engine about its jobs instead
        if self.backends.get(cid) is not None:
            self._fresh_engines.add(cid)
        self.faults.failure(name, stage)
        log.exception("scheduler: cluster %s: its %s step failed (%d in a row); its work of this cycle was dropped "
                      "and it is loaded again from the database in %.0f s, its engine asked about its jobs", name,
                      stage, failures, pause)

    def _end_idle(self, session: Session, now: float, writes: Writes, actions: Actions, usage: list[Usage]) -> None:
        """The idle timeout of resource policies (Backend.AI): a running job whose processes have used no CPU time
        (and, where the engine can tell, whose GPUs showed no utilisation) for its owner's policy's idle timeout is
        ended like any other end of this cycle (runtime.idle_timeout). At most once per tick and per IDLE_CHECK_S; only
        clusters whose engine reports idleness, only jobs whose owner's policy has a timeout (read afresh each time)."""
        if self._idle_checked is not None and 0 <= now - self._idle_checked < max(self.tick, IDLE_CHECK_S):
            return
        self._idle_checked = now
        engines = {cid: b for cid, b in self.backends.items() if cid in self.runtimes and reports_idleness(b)}
        if not engines:
            return
        for limit in load.idle_limits(session, sorted(engines)):
            rt = self.runtimes.get(limit.cluster_id)
            if rt is None:  # set aside after a failure in this cycle
                continue
            info = rt.jobs.get(limit.job_id)
            if info is None or info.state != RUNNING:
                continue
            try:
                since = engines[limit.cluster_id].idle_since(limit.job_id, now)  # type: ignore[union-attr]
            except Exception:  # a failed measurement must not stop scheduling: the job counts as busy
                log.exception("scheduler: could not tell whether job %s is idle", limit.job_id)
                continue
            if since is not None and self._guarded(limit.cluster_id, "idle", now, writes, actions, usage,
                                                   rt.idle_timeout, limit.job_id, now, now - since, limit.policy,
                                                   limit.timeout_s, writes, actions, usage):
                log.info("scheduler: job %s ended: idle for %d s, the idle timeout of resource policy %s is %d s",
                         limit.job_id, now - since, limit.policy, limit.timeout_s)

    def _end_overdrawn(self, now: float, writes: Writes, actions: Actions, usage: list[Usage]) -> None:
        """Hour budgets: a running job whose budget has been spent for longer than the grace ends `failed` with
        reason budget_exhausted and is stopped after the commit (accounting/gate.py)."""
        for cid, job_id, why in self.budgets.overdrawn(now):
            rt = self.runtimes.get(cid)
            info = rt.jobs.get(job_id) if rt is not None else None
            if info is not None and info.state in HOLDING_STATES:
                self._guarded(cid, "budget", now, writes, actions, usage, rt.end, info, now, FAILED, None,
                              BUDGET_EXHAUSTED, why, writes, usage)
                actions.cancels.append((cid, job_id))
                log.info("scheduler: job %s %s", job_id, why)

    def _dispatch(self, actions: Actions, now: float) -> None:
        for cid, job_id in actions.cancels:
            backend = self.backends.get(cid)
            if backend is not None:
                try:
                    backend.cancel(job_id, now)
                except Exception as exc:
                    if unavailable(backend, exc) is None:
                        log.exception("scheduler: could not stop job %s", job_id)
                    else:  # the engine sends the stop again once it answers
                        log.warning("scheduler: job %s: its stop waits for its engine: %s", job_id, exc)
        for cid, launch in actions.launches:
            backend = self.backends.get(cid)
            rt = self.runtimes.get(cid)
            if backend is None:
                continue
            try:
                handle = backend.launch(opened(launch, self.state.secret_key), now)
            except Exception as exc:
                error = unavailable(backend, exc)
                if error is not None:  # it stays admitted: asked about, then launched, once the engine answers
                    self.watch.launch_failed(cid, launch, error, rt)
                    continue
                log.exception("scheduler: could not launch job %s", launch.job_id)
                self.backlog.setdefault(cid, []).append(
                    JobEvent(launch.job_id, "failed", now, None, f"the engine could not start it: {exc}"))
                continue
            info = rt.jobs.get(launch.job_id) if rt is not None else None
            if info is not None:
                info.handle = handle

    # -- the thread --------------------------------------------------------------------------------------------------
    def _timeout(self) -> float:
        if self._more:
            return 0.0
        now = time.time()
        timeout = max(self.tick - (now - self._last_scan), 0.0)
        for backend in self.backends.values():
            due = backend.next_event_at() if backend is not None else None
            if due is not None:
                timeout = min(timeout, max(due - now, 0.0))
        for rt in list(self.runtimes.values()):  # waiting jobs due again: a preemption delay ends, a job ages
            due = rt.next_due()
            if due is not None:
                timeout = min(timeout, max(due - now, 0.0))
        return timeout

    def _run(self) -> None:
        wakeup = self.state.scheduler_wakeup
        while not self._stop.is_set():
            woke = wakeup.wait(self._timeout())
            if self._stop.is_set():
                break
            if woke:
                wakeup.clear()
            scan = woke or time.time() - self._last_scan >= self.tick
            try:
                report = self.run_cycle(scan=scan)
                if not report.conflict:
                    self._first_cycle.set()
                if report.admitted or report.preempted or report.finished:
                    log.debug("scheduler cycle: %s", report)
            except Exception:
                log.exception("scheduler: cycle failed; rebuilding its state from the database")
                self._stop.wait(min(self.tick, 1.0))

    def ready(self, within_s: float = 0.0) -> bool:
        """Whether the loop has run its first cycle, waiting up to `within_s` for it."""
        return self._first_cycle.wait(within_s)

    def start(self) -> Scheduler:
        self._hooks = install_wake_hook(self.state.sessions, self.state.scheduler_wakeup)
        self._thread = threading.Thread(target=self._run, name="allot-scheduler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.state.scheduler_wakeup.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        remove_wake_hook(self.state.sessions, self._hooks)
        for backend in self.backends.values():
            if backend is not None:
                backend.close()


# The loop thread shares the interpreter lock with the threads that answer requests, and every database call gives
# the lock up and must take it back. While a cycle computes, a request thread coming back from a query waits until
# the cycle hands the lock over, which CPython does every switch interval (5 ms by default): a submission's dozen
# statements each waited milliseconds, and a busy stretch of requests held up each statement of a cycle alike
# (benchmarks/README.md, Kueue large-scale). 1 ms bounds that wait at a cost of more frequent hand-overs.
SWITCH_INTERVAL_S = 0.001


def start_scheduler(state: AppState) -> Scheduler:
    """Start the loop thread (services.py calls this when settings.scheduler_enabled)."""
    metering.repair_at_start(state.sessions)
    log.info("scheduler: core %s", compiled_core.STATUS)
    if sys.getswitchinterval() > SWITCH_INTERVAL_S:
        sys.setswitchinterval(SWITCH_INTERVAL_S)
    return Scheduler(state).start()
