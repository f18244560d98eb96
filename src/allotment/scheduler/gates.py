"""Admission gates: limits that are not the quota tree's (a user's resource policy, a budget), applied by the
scheduler loop before a queued job is handed to core's SchedulerState. Core knows nothing of users or money; a gate
keeps a job out of core until it may be let in.

Contract of a gate (`Gate`):
- `hold(job) -> Wait | None`: None lets the job into core, and the gate RESERVES what the job counts against its
  limit until `released(job)`; a Wait (code + a sentence with the numbers) keeps it out. Because a job is reserved
  when it is let in, not when core admits it, the jobs in core never exceed a limit together, even when core admits
  several of them in the same cycle. A job let in stays reserved while it waits in core, runs, and after a
  preemption (it goes back to core's queue).
- `reserve(job)`: count a job that is in core already (admitted, running, or queued and let in before the cluster's
  state was rebuilt), whatever the limit says now: a running job is never stopped by a lowered limit.
- `released(job) -> bool`: the job left core for good (it ended or was cancelled); idempotent. True when held jobs
  may now pass (something was freed).
- `forget_cluster(cluster_id)`: the cluster's state is being rebuilt from the database: forget the reservations of
  its jobs (the rebuild reserves or holds each of its active jobs again).
- `refresh(session) -> bool`: read the gate's settings afresh (once per scan of the loop); True when a limit rose or
  a job's owner moved, so that held jobs may now pass.
Keys: a job is known by (cluster id, job id); a gate must accept `released` of a job it never saw.

`Gates` chains the gates (a job passes when every gate lets it; a gate that held it undoes the reservations the
earlier gates made) and tells the loop when held jobs are worth examining again (`reopened`). The cluster runtimes keep
the held jobs (runtime.py) and, when reopened, examine them again in submission order, before core's cycle.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

from sqlalchemy.orm import Session

from allotment.core.model import Wait


class GateJob(NamedTuple):
    """What a gate knows of a job: who owns it, where it runs and what it asks for (raw units: milli-GPU,
    millicores, bytes). A job is known by (cluster_id, job_id). A tuple: the loop makes one per active job."""

    cluster_id: int
    job_id: int
    owner_id: int | None
    quota_id: int | None
    gpu_milli: int
    cpu_milli: int
    memory_bytes: int
    time_limit_s: int | None = None  # how long it may run (hour budgets' safe mode); None: no limit

    @property
    def key(self) -> tuple[int, int]:
        return self.cluster_id, self.job_id


class Gate(Protocol):
    def refresh(self, session: Session) -> bool: ...

    def hold(self, job: GateJob) -> Wait | None: ...

    def reserve(self, job: GateJob) -> None: ...

    def released(self, job: GateJob) -> bool: ...

    def forget_cluster(self, cluster_id: int) -> None: ...


class Gates:
    """The loop's gates, shared by every cluster (a user's limit spans clusters)."""

    def __init__(self, gates: list[Gate] | None = None) -> None:
        self.gates: list[Gate] = list(gates or [])
        self.reopened = False  # something was freed or a limit rose: held jobs may pass now
        self.examining = False  # this cycle examines held jobs again (set by begin_cycle)

    def refresh(self, session: Session) -> None:
        for gate in self.gates:
            if gate.refresh(session):
                self.reopened = True

    def hold(self, job: GateJob) -> Wait | None:
        gates = self.gates
        for i, gate in enumerate(gates):
            wait = gate.hold(job)
            if wait is not None:
                for earlier in gates[:i]:
                    earlier.released(job)
                return wait
        return None

    def reserve(self, job: GateJob) -> None:
        for gate in self.gates:
            gate.reserve(job)

    def released(self, job: GateJob) -> None:
        for gate in self.gates:
            if gate.released(job):
                self.reopened = True

    def forget_cluster(self, cluster_id: int) -> None:
        for gate in self.gates:
            gate.forget_cluster(cluster_id)
        self.reopened = True

    def begin_cycle(self) -> None:
        """Called by the loop before the clusters decide: held jobs are examined again in this cycle when something
        was freed or a limit rose since the last one. What is freed during the cycle counts for the next one."""
        self.examining, self.reopened = self.reopened, False
