"""The loop's watch over each cluster's engine while the server runs: its health, its inventory, outages, and a
continuous reconciliation of the control plane's view with the engine's (recovery.py does the same at start-up).

- Health: after each cycle's poll, every engine's status is recorded on its cluster (report_engine_status writes
  only a change): `unreachable` while the engine reports an outage (the Slurm and Ray engines keep `outage` =
  (since, error)), `degraded` while its inventory or its poll fails for another reason (the error and since when),
  else `ready`.
- Inventory: the engines of remote clusters (Slurm, Ray) are asked for their nodes every INVENTORY_S, and at every
  cycle while they are unreachable (their own back-off keeps that to one request every few seconds): the report
  doubles as the probe that notices an idle engine going down and coming back. A drained or down node's devices
  become unhealthy there, and load.py leaves unhealthy devices and nodes that are not ready out of placement.
- Outages: while an engine is unavailable (its calls raise SlurmUnavailable or RayUnavailable, or it reports an
  outage) the cluster admits nothing and its queued jobs wait with reason code `backend_unavailable` and the
  engine's error; running jobs keep their state (the engine did not say they ended). A launch that fails because
  the engine is unavailable leaves its job admitted: once the engine answers, it is asked about the run first
  (`reattach`: the submission may have reached the engine before the error) and launched only when the engine has
  no record of it, under the same admission, so the job never runs twice. A launch the engine refuses
  (SlurmLaunchError, RayLaunchError, any other error) still fails the job with the engine's message.
- Reconciliation: every RECONCILE_S, an engine that can say which jobs it tracks (`tracked_jobs`) is asked about
  the holding jobs it does not track (adopted, recorded as ended, or launched, as after a restart), and its runs
  that no holding job owns are stopped (`stop_orphans`). Both cost one listing of the engine's jobs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from allotment.backends.base import Backend, Launch, recovers
from allotment.backends.ray_client import RayUnavailable
from allotment.backends.slurm_client import SlurmUnavailable
from allotment.inventory.engine_settings import redact_credentials
from allotment.inventory.models import CLUSTER_DEGRADED, CLUSTER_READY, CLUSTER_UNREACHABLE
from allotment.inventory.service import report_engine_status
from allotment.scheduler.metering import Usage
from allotment.scheduler.persist import Writes, dt
from allotment.scheduler.recovery import Faults, recover, stop_orphans
from allotment.scheduler.runtime import Actions, ClusterRuntime
from allotment.workloads.models import ADMITTED, HOLDING_STATES

log = logging.getLogger("allotment.scheduler")

INVENTORY_S = 30.0  # remote engines report their nodes this often (and at every cycle while unreachable)
RECONCILE_S = 45.0  # holding jobs an engine does not track, and its orphan runs, are looked at this often
BUILD_RETRY_S = 60.0  # an engine that could not be built from its settings is tried again this often
REMOTE = frozenset({"slurm", "ray"})  # engines whose nodes change under the server (the others report at start)
UNAVAILABLE = (SlurmUnavailable, RayUnavailable)


def unavailable(backend: Backend | None, exc: BaseException | None = None) -> str | None:
    """The engine's error when it cannot serve anyone now (`exc` one of its unavailability errors, or, without
    `exc`, an outage it reports); None otherwise."""
    if exc is not None:
        if isinstance(exc, UNAVAILABLE):
            return redact_credentials(str(exc).strip() or type(exc).__name__)
        return None
    outage = getattr(backend, "outage", None)
    return redact_credentials(str(outage[1]) or "unreachable") if outage else None


def first_line(exc: BaseException) -> str:
    return redact_credentials((str(exc).strip().splitlines() or [type(exc).__name__])[0])


@dataclass
class EngineState:
    """What the loop keeps about one cluster's engine."""

    revision: int | None = None
    build_retry_at: float | None = None  # the engine could not be built: try again then
    build_error: str | None = None
    inventory_at: float = float("-inf")
    reconcile_at: float = 0.0  # set when the engine is built: its first reconciliation is the recovery
    error: tuple[float, str] | None = None  # (since, error) of a failing inventory or poll: degraded
    reported: tuple[str, str | None] | None = None  # the status last written
    relaunch: dict[int, Launch] = field(default_factory=dict)  # launches that met an outage, by job id


class EngineWatch:
    def __init__(self, faults: Faults) -> None:
        self.faults = faults
        self.engines: dict[int, EngineState] = {}

    def state(self, cid: int) -> EngineState:
        found = self.engines.get(cid)
        if found is None:
            found = self.engines[cid] = EngineState()
        return found

    def forget(self, cid: int) -> None:
        self.engines.pop(cid, None)

    def built(self, cid: int, revision: int, now: float, error: str | None = None) -> None:
        """A new engine (or none, with the reason) for the cluster's settings of `revision`."""
        self.engines[cid] = EngineState(revision=revision, reconcile_at=now + RECONCILE_S,
                                        build_retry_at=now + BUILD_RETRY_S if error is not None else None,
                                        build_error=error)

    def needs_build(self, cid: int, revision: int, now: float) -> bool:
        found = self.engines.get(cid)
        return found is None or found.revision != revision or (
            found.build_retry_at is not None and found.build_retry_at <= now)

    # -- health ----------------------------------------------------------------------------------------------------
    def failed(self, cid: int, exc: BaseException, now: float) -> None:
        """The engine answered with an error that is not an outage: the cluster is degraded until it succeeds."""
        state = self.state(cid)
        state.error = ((state.error or (now, ""))[0], first_line(exc))

    def succeeded(self, cid: int) -> None:
        self.state(cid).error = None

    def report(self, session, cid: int, backend: Backend) -> None:
        """Write the engine's status on its cluster when it changed (cheap: compared in memory first)."""
        state = self.state(cid)
        outage = getattr(backend, "outage", None)
        if outage:
            status, error, since = CLUSTER_UNREACHABLE, unavailable(backend), outage[0]
        elif state.error is not None:
            status, error, since = CLUSTER_DEGRADED, state.error[1], state.error[0]
        else:
            status, error, since = CLUSTER_READY, None, None
        if state.reported == (status, error):
            return
        report_engine_status(session, cid, status, error, dt(since) if since is not None else None)
        state.reported = (status, error)

    def unreported(self) -> None:
        """The cycle that wrote the statuses was rolled back: write them again."""
        for state in self.engines.values():
            state.reported = None

    # -- launches that met an outage -------------------------------------------------------------------------------
    def launch_failed(self, cid: int, launch: Launch, error: str, rt: ClusterRuntime | None) -> None:
        self.state(cid).relaunch[launch.job_id] = launch
        log.warning("scheduler: job %s: its engine is unavailable (%s); it stays admitted and is launched once the "
                    "engine answers", launch.job_id, error)
        if rt is not None:
            rt.engine_down(error)

    def relaunch(self, rt: ClusterRuntime, backend: Backend, now: float, writes: Writes, actions: Actions,
                 usage: list[Usage]) -> None:
        """The engine answers again: ask it about each run whose launch met the outage, launch the ones it lacks."""
        state = self.state(rt.cluster_id)
        if not state.relaunch:
            return
        pending, state.relaunch = state.relaunch, {}
        for job_id, launch in pending.items():
            info = rt.jobs.get(job_id)
            if info is not None and info.state == ADMITTED and (info.admission or "") == launch.admission:
                rt.recover_admitted.append(job_id)
        try:
            recover(rt, backend, now, writes, actions, usage, self.faults, "its launch met an outage of the engine")
        except BaseException:
            state.relaunch.update({k: v for k, v in pending.items() if k in rt.recover_admitted})
            raise

    # -- reconciliation --------------------------------------------------------------------------------------------
    def reconcile_due(self, cid: int, backend: Backend, now: float) -> bool:
        state = self.state(cid)
        if not recovers(backend) or not hasattr(backend, "tracked_jobs") or now < state.reconcile_at:
            return False
        state.reconcile_at = now + RECONCILE_S
        return True

    def reconcile(self, rt: ClusterRuntime, backend: Backend, holding: dict[int, str], now: float, writes: Writes,
                  actions: Actions, usage: list[Usage]) -> None:
        """Ask the engine about the holding jobs it does not track; stop its runs no holding job owns."""
        tracked = set(backend.tracked_jobs())  # type: ignore[attr-defined]
        waiting = self.state(rt.cluster_id).relaunch
        for job_id, info in rt.jobs.items():
            if info.state in HOLDING_STATES and job_id not in tracked and job_id not in waiting:
                (rt.recover_admitted if info.state == ADMITTED else rt.recover_running).append(job_id)
        if rt.recover_admitted or rt.recover_running:
            log.info("scheduler: cluster %s: asking the engine about %d holding job(s) it does not track",
                     rt.name, len(rt.recover_admitted) + len(rt.recover_running))
            recover(rt, backend, now, writes, actions, usage, self.faults, "the engine lost track of the job while it held resources")
        stop_orphans(rt, backend, holding, now, self.faults)
