"""The one Protocol every execution engine implements (local host, simulated, Slurm, Ray)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


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
