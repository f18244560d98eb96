"""The one Protocol every execution engine implements (local host, simulated, Slurm, Ray)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class DeviceInfo:
    index: int
    model: str
    memory_mib: int = 0
    health: str = "healthy"
    utilisation: float = 0.0


@dataclass(frozen=True)
class NodeInfo:
    name: str
    cpu: float
    memory_mib: int
    devices: tuple[DeviceInfo, ...] = ()
    status: str = "ready"


@dataclass(frozen=True)
class Launch:
    """What the scheduler hands to a backend for one admitted job."""

    job_id: int
    command: str
    node: str | None = None
    # (device index, fraction of the device in milli-GPU: 1000 = whole)
    devices: tuple[tuple[int, int], ...] = ()
    cpu: float = 0.0
    memory_mib: int = 0
    time_limit_s: float | None = None
    # Simulated execution only: how long the job "runs".
    duration_s: float | None = None
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class JobEvent:
    """Something a backend observed about a job: 'started', 'succeeded', 'failed' (with exit code and message)."""

    job_id: int
    kind: str
    at: float
    exit_code: int | None = None
    message: str | None = None


class Backend(Protocol):
    name: str

    def inventory(self) -> list[NodeInfo]:
        """The nodes and devices the engine offers now."""

    def launch(self, launch: Launch, now: float) -> str:
        """Start the job; return the engine's handle for it. Must be idempotent per job_id."""

    def cancel(self, job_id: int, now: float) -> None:
        """Stop the job if it runs (preemption or cancellation). Unknown ids are ignored."""

    def poll(self, now: float) -> list[JobEvent]:
        """Events since the last poll."""

    def next_event_at(self) -> float | None:
        """When the next event is due, when the engine knows (the simulated one does); None otherwise."""

    def close(self) -> None:
        """Stop everything it started."""


@runtime_checkable
class ReportsIdleness(Protocol):
    """Optional part of an engine: how long a job has been idle, for the idle timeout of resource policies.

    A running job is idle when its processes have used no CPU time (and, where the engine can tell, its GPUs showed
    no utilisation) for the whole period. Engines without this method are never asked (their jobs count as busy);
    `reports_idleness = False` says the same for an engine that has the method but cannot tell.
    """

    reports_idleness: bool

    def idle_since(self, job_id: int, now: float) -> float | None:
        """Since when (epoch seconds) the job has been idle without a break (`now` - it = its idle seconds); None
        when it is busy or the engine does not know the job. It may sample the job's processes now."""


def reports_idleness(backend: Any) -> bool:
    """Whether the loop should ask the engine about idle jobs (engines written before the method are not asked)."""
    return isinstance(backend, ReportsIdleness) and bool(getattr(backend, "reports_idleness", False))
