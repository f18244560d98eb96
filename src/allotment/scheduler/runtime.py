"""One cluster's scheduler state kept between cycles: core's incremental SchedulerState plus what the loop needs to
write decisions back and to launch jobs (JobInfo per active job).

Built from the database at start and after every configuration change (clusters.config_version), then kept up to
date by events only: new submissions, cancellations, backend events and the cycle's own decisions. So the cost of a
cycle follows what happened, not how many jobs are queued.

Admission gates (gates.py: a user's resource policy totals, ...) decide before core: a queued job a gate holds stays
out of core (`held`, with the gate's Wait as its reason) and is examined again, in submission order, at the start of
a cycle after something was freed or a limit rose.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any

from allotment.backends.base import JobEvent, Launch
from allotment.core.admission import SchedulerState
from allotment.core.inventory import changed_nodes
from allotment.core.model import Admit, Decision, Preempt, QueuedJob, SchedulerConfig, Wait, WaitCode
from allotment.core.quantity import format_raw
from allotment.core.quota_tree import InvalidQuotaTree
from allotment.scheduler.engines import launch_of
from allotment.scheduler.gates import GateJob, Gates
from allotment.scheduler.gcpause import gc_paused
from allotment.scheduler.load import (
    Inventory,
    JobInfo,
    admission_key,
    free_devices,
    held_shares,
    only_nodes_changed,
    queued_job,
    running_job,
)
from allotment.scheduler.metering import Usage
from allotment.scheduler.persist import Writes, dt
from allotment.workloads.models import (
    ADMITTED,
    CANCELLED,
    FAILED,
    PENDING_REASON,
    PREEMPTED,
    QUEUED,
    RUNNING,
    SUCCEEDED,
)

log = logging.getLogger("allotment.scheduler")

HOLDING = (ADMITTED, RUNNING)
# A blocked group's members get its head's reason (with the numbers of that moment) when the reason's code changes,
# and again at most this often: the head's reason is rewritten whenever its numbers change, but rewriting every member
# each time would make the loop's cost grow with the queue (a queue of 30,000 jobs would mean thousands of writes a
# second for nothing new).
REASON_REFRESH_S = 300.0
# A new job that joins a blocked group has its first reason (the group's) stored once it has waited this long, and
# "waiting for the scheduler" (models.PENDING_MESSAGE) until then. Most jobs of a burst are admitted within seconds,
# and a reason stored for one of them was a row written for nobody: the job's page asks the loop, which answers at
# once, and the console's jobs list refreshes every 5 s (web/pages_jobs.REFRESH_S), so a list shows the reason at
# most one refresh later. (Kueue's large-scale scenario: 32,000 of its 36,600 reason rows.)
FIRST_REASON_DELAY_S = 5.0

DISABLED = "resource_management_disabled"
NO_BACKEND = "no_backend"
INVALID_CONFIG = "invalid_configuration"
POOL_NOT_ALLOWED = "pool_not_allowed"  # its quota may not use the job's pinned pool or its profile's pools
IDLE_TIMEOUT = "idle_timeout"
BACKEND_UNAVAILABLE = "backend_unavailable"  # the engine does not answer: nothing is admitted into it


@dataclass
class Actions:
    """What to tell the engines once the cycle is committed: stops first, then launches."""

    cancels: list[tuple[int, int]] = field(default_factory=list)  # (cluster id, job id)
    launches: list[tuple[int, Launch]] = field(default_factory=list)  # (cluster id, launch)
    # (cluster, quota, seconds from submission to admission) of each admission, for the metric once committed
    waits: list[tuple[str, str, float]] = field(default_factory=list)

    def mark(self) -> tuple[int, int, int]:
        return len(self.cancels), len(self.launches), len(self.waits)

    def undo(self, mark: tuple[int, int, int]) -> None:
        del self.cancels[mark[0]:]
        del self.launches[mark[1]:]
        del self.waits[mark[2]:]


class ClusterRuntime:
    def __init__(self, row: Any, inv: Inventory, rows: list[Any], config: SchedulerConfig, now: float,
                 has_backend: bool, gates: Gates | None = None,
                 history: dict[str, tuple[int, float, float]] | None = None) -> None:
        """`history`: the preemption history of the state this one replaces (core: times, run time lost, may borrow
        after); jobs it does not know start from the preemption count stored with them, without a backoff."""
        self.cluster_id: int = row.id
        self.name: str = row.name
        self.kind: str = row.backend
        self.version: int = row.config_version
        self.enabled: bool = bool(row.resource_management_enabled)
        self.has_backend = has_backend
        self.inv = inv
        self.pool_ids = inv.pool_ids
        self.jobs: dict[int, JobInfo] = {}
        self.queued_of: dict[int, QueuedJob] = {}  # what core knows of each active job, to requeue it after preemption
        self.requeue: dict[int, str] = {}  # preempted job -> reason; requeued at the start of the next cycle
        self.recover_admitted: list[int] = []  # admitted, maybe never launched (used when the engine is new)
        self.recover_running: list[int] = []
        self.cancel_requested: list[int] = []
        self.fresh: list[int] = []  # added since the last cycle: their reason is set after it
        self.unsaid: deque[tuple[float, int]] = deque()  # (when, job): new jobs' first reasons (FIRST_REASON_DELAY_S)
        self.group_marks: dict[tuple, tuple[str, float]] = {}
        self.preempted_by: dict[int, str] = {}  # requeued job -> " (requeued after ...)" kept on its reasons
        self.blocked_reason: tuple[str, str] | None = None  # the whole cluster waits (switch off, no engine, bad tree)
        self.outage: tuple[str, str] | None = None  # the engine is unavailable (reconcile.py): the cluster waits
        self._blocked_marked = False
        self.core: SchedulerState | None = None
        self.gates = gates if gates is not None else Gates()
        self.gated: dict[int, GateJob] = {}  # active job -> what the gates know of it
        self._admission_key: tuple[float, str | None] = (-1.0, None)  # (cycle time, its admission key)
        self.held: dict[int, Wait] = {}  # queued job a gate keeps out of core -> why, in submission order
        self.gates.forget_cluster(self.cluster_id)

        running, queued = [], []
        for r in rows:  # jobs already in core count first, whatever the limits say now
            if r.state in HOLDING or (r.state == PREEMPTED and r.finished_at is None):
                self.gates.reserve(self._gate_job(r))
        for r in rows:
            info = JobInfo(r)
            self.queued_of[r.id] = queued_job(r, inv)
            if r.state == PREEMPTED:
                if r.finished_at is None:  # committed as preempted, not requeued yet (the loop stopped in between)
                    self.requeue[r.id] = r.reason or "preempted"
                    self.jobs[r.id] = info
                continue
            self.jobs[r.id] = info
            if r.state == QUEUED and self._gate_holds(r):
                self.fresh.append(r.id)
                continue
            if r.state in HOLDING:
                running.append(running_job(r, inv, info.started_at or now))
                if r.cancel_requested_at is not None:
                    self.cancel_requested.append(r.id)
                (self.recover_admitted if r.state == ADMITTED else self.recover_running).append(r.id)
            else:
                queued.append(self.queued_of[r.id])
                self.fresh.append(r.id)
        try:
            self.core = SchedulerState(inv.quotas, free_devices(inv.pools, running), inv.profiles,
                                       replace(config, gpu_share_step=inv.gpu_share_step))
        except (InvalidQuotaTree, ValueError) as exc:
            self.blocked_reason = (INVALID_CONFIG, (f"cluster {self.name}: the quota configuration cannot be used "
                                                   f"({exc}); queued jobs wait until it is fixed"))
            return
        known = history or {}
        self.core.remember_preemptions({
            str(r.id): known.get(str(r.id), (getattr(r, "preemptions", 0) or 0, 0.0, 0.0)) for r in rows
            if known.get(str(r.id)) or (getattr(r, "preemptions", 0) or 0) > 0})
        for run in running:
            try:
                self.core.add_running(run)
            except ValueError as exc:  # e.g. its pool or quota is gone: it still runs, core cannot count it
                log.warning("cluster %s: running job %s not counted: %s", self.name, run.id, exc)
        for job in queued:
            self.core.add_job(job)
        if not self.enabled:
            self.blocked_reason = (DISABLED, (f"resource management is disabled for cluster {self.name}: queued jobs "
                                             f"wait until an administrator enables it"))
        elif not has_backend:
            self.blocked_reason = (NO_BACKEND, (f"cluster {self.name}: its {self.kind} engine is not available in "
                                               f"this server, so nothing can start there"))

    def refresh_inventory(self, inv: Inventory) -> bool:
        """Apply a new load of the cluster in which only nodes and devices changed, node by node, keeping every job
        (load.only_nodes_changed); False when anything else changed or the state is not usable: rebuild it then."""
        if self.core is None or self.blocked_reason is not None or not only_nodes_changed(self.inv, inv):
            return False
        held = held_shares(info for info in self.jobs.values() if info.state in HOLDING)
        for before, after in zip(self.inv.pools, inv.pools, strict=True):
            diff = changed_nodes(before, after)
            if diff is None:
                self.core.update_pool(free_devices([after], [], held)[0])
                continue
            changed, gone = diff  # node by node: the core's cost is that of the nodes that changed
            for name in gone:
                self.core.remove_node(after.name, name)
            for node, devices in changed:
                self.core.update_node(after.name, node, free_devices([replace(after, devices=devices)], [], held)[0]
                                      .devices)
        inv.refusals.update(self.inv.refusals)  # the reasons of queued jobs that have no allowed pool
        self.inv = inv
        return True

    # -- events ----------------------------------------------------------------------------------------------------
    def add_new(self, row: Any, owner: str | None = None) -> None:
        """A job submitted since the last cycle, a row of load.NEW_JOB_COLUMNS, and its owner's username (rows of
        other states are ignored; known ones too)."""
        if row.id in self.jobs or row.state != QUEUED:
            return
        info = JobInfo(row, new=True, owner=owner)
        self.jobs[row.id] = info
        job = self.queued_of[row.id] = queued_job(row, self.inv)
        self.fresh.append(row.id)
        if self._gate_holds(row):
            return
        if self.core is not None:
            self.core.add_job(job)

    def _gate_job(self, row: Any) -> GateJob:
        job = self.gated[row.id] = GateJob(self.cluster_id, row.id, getattr(row, "owner_id", None), row.quota_id,
                                           row.gpu_milli or 0, row.cpu_milli or 0, row.memory_bytes or 0,
                                           getattr(row, "time_limit_s", None))
        return job

    def _gate_holds(self, row: Any) -> bool:
        """Ask the gates about a queued job: held (kept out of core, with their reason) or let in (reserved)."""
        wait = self.gates.hold(self._gate_job(row))
        if wait is not None:
            self.held[row.id] = wait
        return wait is not None

    def _gate_released(self, job_id: int) -> None:
        self.held.pop(job_id, None)
        job = self.gated.pop(job_id, None)
        if job is not None:
            self.gates.released(job)

    def examine_held(self, now: float, writes: Writes) -> None:
        """Held jobs, in submission order, once something was freed or a limit rose: let in those the gates now
        let through (core decides on them this cycle); the others keep waiting with their reason's new numbers."""
        for job_id in list(self.held):
            job, info = self.gated.get(job_id), self.jobs.get(job_id)
            if job is None or info is None:
                self.held.pop(job_id, None)
                continue
            wait = self.gates.hold(job)
            if wait is None:
                del self.held[job_id]
                if self.core is not None:
                    self.core.add_job(self.queued_of[job_id])
                self.fresh.append(job_id)
            else:
                self.held[job_id] = wait
                self._set_reason(info, wait.code, wait.message, now, writes)

    def cancelled(self, job_id: int, actions: Actions) -> None:
        """The API cancelled the job (queued or preempted, or a race lost against an admission): forget it (a
        preempted one is not requeued), stop it if started."""
        info = self.jobs.pop(job_id, None)
        self.queued_of.pop(job_id, None)
        self.preempted_by.pop(job_id, None)
        self.requeue.pop(job_id, None)
        held = job_id in self.held
        self._gate_released(job_id)
        if info is None:
            return
        if self.core is not None and not held:
            self.core.remove_job(str(job_id))
        if info.state in HOLDING:
            actions.cancels.append((self.cluster_id, job_id))

    def stop_requested(self, job_id: int, now: float, writes: Writes, actions: Actions, usage: list[Usage]) -> None:
        """Cancellation of an admitted or running job: free it, mark it cancelled, stop it after the commit."""
        info = self.jobs.get(job_id)
        if info is None or info.state not in HOLDING:
            return
        self.end(info, now, CANCELLED, None, "cancelled", "cancelled at the owner's or an administrator's request "
                  "while it held resources; it was stopped", writes, usage)
        actions.cancels.append((self.cluster_id, job_id))

    def idle_timeout(self, job_id: int, now: float, idle_s: float, policy: str, timeout_s: int, writes: Writes,
                     actions: Actions, usage: list[Usage]) -> bool:
        """End a running job its engine found idle for at least its owner's policy's idle timeout: `failed` with
        reason code idle_timeout (a limit the system enforces, like the time limit), stopped after the commit."""
        info = self.jobs.get(job_id)
        if info is None or info.state != RUNNING or idle_s < timeout_s:
            return False
        self.end(info, now, FAILED, None, IDLE_TIMEOUT,
                  f"ended by the scheduler: idle for {int(idle_s)} s (its processes used no CPU time and its GPUs no "
                  f"utilisation), the idle timeout of resource policy {policy} is {timeout_s} s", writes, usage)
        actions.cancels.append((self.cluster_id, job_id))
        return True

    def apply(self, events: list[JobEvent], now: float, writes: Writes, usage: list[Usage]) -> list[
            tuple[JobEvent, Exception]]:
        """Backend events: 'started' marks the job running; 'succeeded'/'failed' end it and free its resources.

        Each event is applied on its own: one that raises is skipped and returned with its error (the loop logs and
        counts it, drops it, and has the engine asked again about the cluster's jobs), so a bad event never keeps the
        others, or later cycles, from being applied."""
        started: dict[int, float] = {}
        poison: list[tuple[JobEvent, Exception]] = []
        for ev in events:
            try:
                self._apply_event(ev, started, writes, usage)
            except Exception as exc:  # noqa: BLE001 - isolated on purpose, reported by the loop
                poison.append((ev, exc))
        for job_id, at in started.items():
            info = self.jobs.get(job_id)
            if info is not None and info.state == ADMITTED:
                self.mark_running(info, at, writes)
        return poison

    def _apply_event(self, ev: JobEvent, started: dict[int, float], writes: Writes, usage: list[Usage]) -> None:
        info = self.jobs.get(ev.job_id)
        if info is None or info.state not in HOLDING:
            return  # cancelled or preempted meanwhile
        if ev.kind == "started":
            started[ev.job_id] = ev.at
            if ev.handle:
                info.handle = ev.handle
            return
        if ev.kind not in (SUCCEEDED, FAILED):
            return
        # Started and ended in one poll: an admitted job gets its start time; one already running (resumed after a
        # restart) keeps its own. Either way the start is consumed here, the job being gone after end().
        at_start = started.pop(ev.job_id, None)
        if at_start is not None and info.state == ADMITTED:
            info.started_at = at_start
        state = SUCCEEDED if ev.kind == SUCCEEDED else FAILED
        message = ev.message if state == FAILED else None
        self.end(info, ev.at, state, ev.exit_code, None if state == SUCCEEDED else "failed",
                 message or (None if state == SUCCEEDED else "the job failed"), writes, usage)

    def mark_running(self, info: JobInfo, at: float, writes: Writes) -> None:
        """An admitted job's engine started it (or, after a restart, was found running it)."""
        info.state = RUNNING
        info.started_at = at
        writes.start(info.id, at, info.handle)

    def end(self, info: JobInfo, at: float, state: str, exit_code: int | None, code: str | None,
             reason: str | None, writes: Writes, usage: list[Usage]) -> None:
        del self.jobs[info.id]
        self.preempted_by.pop(info.id, None)
        self.queued_of.pop(info.id, None)
        self._gate_released(info.id)
        if self.core is not None:
            self.core.job_finished(str(info.id))
        started = info.started_at if info.started_at is not None else at
        writes.finish(info.id, at, state, started, exit_code, code, reason, info.handle)
        usage.append(Usage(info.id, self.name, info.quota_id, info.placed_pool, state, started, at, info.gpu,
                           info.cpu))

    def requeue_preempted(self, now: float, writes: Writes) -> None:
        """Preempted jobs go back to the queue (Kueue-style), in their original submission order."""
        for job_id, reason in self.requeue.items():
            info = self.jobs.get(job_id)
            job = self.queued_of.get(job_id)
            if info is None or job is None:
                continue
            if reason is DISPLACED:  # preempted in the cycle that admitted it (_displaced): queued all along
                if self.core is not None:
                    self.core.add_job(job)
                self.fresh.append(job_id)
                continue
            message = reason if "requeued" in reason else f"{reason}; requeued in its original submission order"
            writes.requeue(job_id, now, message)
            self.preempted_by[job_id] = f" ({message.split(':', 1)[0]}; requeued)"
            info.state, info.reason_code, info.reason = QUEUED, "preempted", message
            info.started_at = info.placed_pool = info.handle = info.admission = None
            if self.core is not None:
                self.core.add_job(job)
            self.fresh.append(job_id)
        self.requeue.clear()

    # -- the cycle -------------------------------------------------------------------------------------------------
    def next_due(self) -> float | None:
        """When a cycle is wanted without any event: core's (a waiting job's preemption delay ends, a job ages), or a
        new job's first reason is due to be stored (FIRST_REASON_DELAY_S)."""
        if self.blocked is not None or self.core is None:
            return None
        due = self.core.next_due
        if self.unsaid and (due is None or self.unsaid[0][0] < due):
            return self.unsaid[0][0]
        return due

    @property
    def blocked(self) -> tuple[str, str] | None:
        """Why the whole cluster waits, if it does: its configuration first, then an outage of its engine."""
        return self.blocked_reason or self.outage

    def engine_down(self, error: str) -> None:
        """The engine is unavailable: admit nothing; queued jobs wait with its error (the first one of the outage,
        so that a changing error does not rewrite every queued job's reason)."""
        if self.outage is not None:
            return
        self.outage = (BACKEND_UNAVAILABLE, (f"cluster {self.name}: its {self.kind} engine is unavailable ({error}); "
                                             f"queued jobs wait until it answers again, running jobs go on"))
        self._blocked_marked = False
        log.warning("scheduler: cluster %s: its engine is unavailable: %s", self.name, error)

    def engine_up(self) -> None:
        """The engine answers again: every queued job gets its own reason at the next decision."""
        if self.outage is None:
            return
        self.outage = None
        self._blocked_marked = False
        self.group_marks.clear()
        self.fresh = [job_id for job_id, info in self.jobs.items() if info.state == QUEUED]
        log.info("scheduler: cluster %s: its engine answers again", self.name)

    def decide(self, now: float, writes: Writes, actions: Actions, usage: list[Usage]) -> list[Decision]:
        if self.blocked is not None or self.core is None:
            self._mark_blocked(now, writes)
            return []
        if self.held and self.gates.examining:
            self.examine_held(now, writes)
        with gc_paused():
            decisions = self.core.cycle(now)
        displaced = _displaced(decisions)
        waits: list[Wait] = []
        for d in decisions:
            if isinstance(d, Preempt):
                if displaced and d.victim_id in displaced:
                    self.requeue[int(d.victim_id)] = DISPLACED  # back to core next cycle; its row never left the queue
                    continue
                self._preempted(d, now, writes, actions, usage)
            elif isinstance(d, Admit):
                if displaced:
                    if d.job_id in displaced:
                        continue
                    if d.preempted:  # its reason names only the jobs that were stopped for it
                        d = replace(d, preempted=tuple(v for v in d.preempted if v not in displaced))
                self._admitted(d, now, writes, actions)
            else:
                waits.append(self._worded(d))
        self._reasons(waits, now, writes)
        return decisions

    def _worded(self, wait: Wait) -> Wait:
        """A job with no pool its quota may use was given an impossible pool (load.py): say why instead."""
        if wait.code != WaitCode.UNKNOWN_POOL or not self.inv.refusals:
            return wait
        job = self.queued_of.get(int(wait.job_id))
        reason = self.inv.refusals.get(job.pools[0]) if job is not None and job.pools else None
        return wait if reason is None else Wait(wait.job_id, POOL_NOT_ALLOWED, reason)

    def _preempted(self, d: Preempt, now: float, writes: Writes, actions: Actions, usage: list[Usage]) -> None:
        job_id = int(d.victim_id)
        info = self.jobs.get(job_id)
        if info is None:
            return
        message = f"preempted by job {d.for_job_id}: {d.message}"
        started = info.started_at if info.started_at is not None else now
        usage.append(Usage(job_id, self.name, info.quota_id, info.placed_pool, PREEMPTED, started, now, info.gpu,
                           info.cpu))
        writes.preempt(job_id, now, message)
        info.state = PREEMPTED
        self.requeue[job_id] = message
        actions.cancels.append((self.cluster_id, job_id))

    def _admitted(self, d: Admit, now: float, writes: Writes, actions: Actions) -> None:
        job_id = int(d.job_id)
        info = self.jobs[job_id]
        devices = []
        if d.devices:
            where = self.inv.devices
            for dev, amount in d.devices:
                node, index = where.get(dev, ("", -1))
                devices.append({"device_id": int(dev), "node": node, "index": index, "milli": amount.raw})
        pool_id = self.pool_ids.get(d.pool)
        nodes = list(d.nodes) or list(dict.fromkeys(x["node"] for x in devices if x["node"]))
        placed = f"admitted to pool {d.pool}"
        if devices:
            gpus = format_raw(sum(x["milli"] for x in devices), "gpu")
            placed += f" on {gpus} gpu of {len({x['node'] for x in devices})} node(s)"
        if d.preempted:
            placed += f" after preempting job(s) {', '.join(d.preempted)}"
        writes.admit(job_id, now, pool_id, devices, placed, nodes)
        key = self._admission_key
        if key[0] != now:  # every admission of a cycle has the cycle's time: its key is computed once
            key = self._admission_key = (now, admission_key(dt(now)))
        info.admission = key[1]  # names this run to its engine (the database keeps the same time)
        if self.preempted_by:
            self.preempted_by.pop(job_id, None)
        info.state, info.reason_code, info.reason = ADMITTED, None, placed
        info.placed_pool, info.started_at = pool_id, now
        info.devices = devices
        info.placed_nodes = nodes
        actions.launches.append((self.cluster_id, launch_of(info, devices, pool=d.pool)))
        queued = self.queued_of.get(job_id)
        if queued is not None and queued.submitted_at:
            actions.waits.append((self.name, self.inv.quota_names.get(info.quota_id, "-") or "-",
                                  now - queued.submitted_at))

    def _set_reason(self, info: JobInfo | None, code: str, message: str, now: float, writes: Writes) -> None:
        if info is None or info.state != QUEUED:
            return
        suffix = self.preempted_by.get(info.id)
        if suffix is not None:
            message += suffix
        if info.reason_code != code or info.reason != message:
            info.reason_code, info.reason = code, message
            writes.reason(info.id, now, code, message)

    def _reasons(self, waits: list[Wait], now: float, writes: Writes) -> None:
        core = self.core
        assert core is not None
        jobs = self.jobs
        for w in waits:
            self._set_reason(jobs.get(int(w.job_id)), w.code, w.message, now, writes)
            group = core.queue_group(w.job_id)
            if group is None:
                continue
            key = group[0]
            mark = self.group_marks.get(key)
            if mark is None or mark[0] != w.code or now - mark[1] >= REASON_REFRESH_S:
                self.group_marks[key] = (w.code, now)
                for member in core.group_members(key):
                    self._set_reason(jobs.get(int(member)), w.code, w.message, now, writes)
        for job_id in self.fresh:
            if job_id in self.held:
                held = self.held[job_id]
                self._set_reason(jobs.get(job_id), held.code, held.message, now, writes)
                continue
            group = core.queue_group(str(job_id))
            if group is not None and group[1] is not None:
                info = jobs.get(job_id)
                if info is not None and info.reason_code == PENDING_REASON:  # a new job: its first reason waits
                    self.unsaid.append((now + FIRST_REASON_DELAY_S, job_id))
                else:
                    self._set_reason(info, group[1].code, group[1].message, now, writes)
        self.fresh.clear()
        unsaid = self.unsaid
        while unsaid and unsaid[0][0] <= now:
            job_id = unsaid.popleft()[1]
            info = jobs.get(job_id)
            if info is None or info.state != QUEUED or info.reason_code != PENDING_REASON:
                continue  # admitted or gone, or given a reason meanwhile (as a blocked group's head, a hold)
            group = core.queue_group(str(job_id))
            if group is not None and group[1] is not None:
                self._set_reason(info, group[1].code, group[1].message, now, writes)
        if len(self.group_marks) > 50_000:  # groups come and go; forget old marks rather than track them
            self.group_marks.clear()

    def explain(self, job_id: int) -> tuple[str, str] | None:
        """The current reason of a queued job (None: not queued here, or not examined yet)."""
        info = self.jobs.get(job_id)
        if info is None or info.state != QUEUED:
            return None
        if self.blocked is not None:
            return self.blocked
        if job_id in self.held:
            return self.held[job_id].code, self.held[job_id].message
        wait = self.core.group_wait(str(job_id)) if self.core is not None else None
        if wait is None:
            return None  # not examined yet, or about to be: the stored reason stands
        # the group's head's reason, with today's numbers (the stored one has those of its last examination)
        return wait.code, wait.message + self.preempted_by.get(job_id, "")

    def _mark_blocked(self, now: float, writes: Writes) -> None:
        blocked = self.blocked
        if blocked is None:  # no core (a bad quota tree sets blocked_reason): nothing to say
            return
        code, message = blocked
        ids = list(self.jobs) if not self._blocked_marked else self.fresh
        for job_id in ids:
            self._set_reason(self.jobs.get(job_id), code, message, now, writes)
        self._blocked_marked = True
        self.fresh.clear()


DISPLACED = "displaced in the cycle that admitted it"  # ClusterRuntime.requeue's mark of such a job (_displaced)


def _displaced(decisions: list[Decision]) -> set[str]:
    """The jobs a cycle admitted and then preempted (core may admit a borrower and, later in the same pass, let a
    quota below its guarantee reclaim what it borrows). Such a job never left the queue: nothing is written or
    launched for it, and core gets it back at the next cycle as it would a requeued job. Written as an admission and
    a preemption, the preemption's guard found the job still queued and the cycle was rolled back, again and again
    while the queue stayed the same."""
    admitted: set[str] = set()
    displaced: set[str] = set()
    for d in decisions:
        if isinstance(d, Admit):
            admitted.add(d.job_id)
        elif isinstance(d, Preempt) and d.victim_id in admitted:
            displaced.add(d.victim_id)
    return displaced
