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
    utilisation: float = 0.0  # percent, 0..100


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
    env: dict[str, str] = field(default_factory=dict)  # what the job declared (core/jobenv.py): nothing else
    # The storage targets' secret variables, still sealed: the loop opens them into `env` just before it hands the
    # launch to the engine (scheduler/loop.py), so launches kept for a retry never hold them in the clear.
    sealed_env: str | None = None
    # Which admission of the job this is (a job requeued after preemption is admitted again under a new one): with
    # job_id it names one run, so an engine can tell "this run already exists" (adopt it) from "run it again".
    admission: str = ""
    # The owner's username (the local engine may run the job as the OS account mapped to it).
    owner: str | None = None
    # The pool it was admitted to: engines map pools to their own names (Slurm partitions, Ray custom resources).
    pool: str | None = None
    # Every node it was placed on, `node` first. One for a one-node job; N for a gang job (nodes > 1), which gets
    # `devices`' shape, `cpu` and `memory_mib` on EACH node (`devices` are those of `node`; Slurm and Ray choose
    # the GPUs on the others).
    nodes: tuple[str, ...] = ()
    # The owner's effective configuration (configuration vaults) as JSON: the engine writes it to a file only the job
    # can read and names that file in ALLOT_CONFIG_FILE. None: a job stored before vaults existed.
    config_file: str | None = None
    # Storage folders to mount (storage/mounts.py, resolved at submission): ({folder_id, folder, host, kind, root,
    # target, read_only[, cluster_path]}, ...). The local engine bind-mounts them under the job's working directory.
    mounts: tuple[dict, ...] = ()


@dataclass(frozen=True)
class JobEvent:
    """Something a backend observed about a job: 'started', 'succeeded', 'failed' (with exit code and message)."""

    job_id: int
    kind: str
    at: float
    exit_code: int | None = None
    message: str | None = None
    handle: str | None = None  # with 'started': the engine's handle when it is known only now (the local pgid)


class Backend(Protocol):
    name: str

    def inventory(self) -> list[NodeInfo]:
        """The nodes and devices the engine offers now."""

    def launch(self, launch: Launch, now: float) -> str:
        """Start the job; return the engine's handle for it. Must be idempotent per (job_id, admission), across
        restarts of the server too where the engine runs real work (the local engine keeps durable records)."""

    def cancel(self, job_id: int, now: float) -> None:
        """Stop the job if it runs (preemption or cancellation). Unknown ids are ignored."""

    def poll(self, now: float) -> list[JobEvent]:
        """Events since the last poll."""

    def next_event_at(self) -> float | None:
        """When the next event is due, when the engine knows (the simulated one does); None otherwise."""

    def close(self) -> None:
        """Stop everything it started."""


# What an engine knows of a run after a restart of the server (Reattached.state).
RUNS = "running"  # it runs and the engine tracks it again (time limit, cancel, idleness, its end)
ENDED = "finished"  # it ended (exit_code and ended_at as recorded; message when the engine knows why)
LOST = "lost"  # it started but is gone, and how it ended is not known
UNKNOWN = "unknown"  # the engine has no record of it: it never started, so launching it is safe


@dataclass(frozen=True)
class Reattached:
    state: str
    exit_code: int | None = None
    started_at: float | None = None
    ended_at: float | None = None
    message: str | None = None
    handle: str | None = None  # the engine's handle of an adopted run


@runtime_checkable
class Recovers(Protocol):
    """Optional part of an engine: finding its runs again after the server restarted (it may have crashed anywhere,
    including between saving an admission and launching it, or while jobs ended).

    `reattach` is asked about every job the database says is admitted or running, with the launch the loop would
    make now (for a simulated job, its remaining duration), and must never start a second copy of a run. A job it
    reports RUNS is tracked from then on like a job it launched (no new 'started' event); ENDED and LOST are
    recorded by the loop; UNKNOWN means it never started: the loop launches an admitted job and marks a running one
    lost. `stop_orphans` then stops the runs no holding job owns (jobs cancelled, preempted or ended while their
    stop was not delivered), given every holding job's id and admission; it returns what it stopped, for the log.
    """

    def reattach(self, launch: Launch, now: float) -> Reattached:
        """What became of this run; adopt it when it still runs."""

    def stop_orphans(self, holding: dict[int, str], now: float) -> list[str]:
        """Stop the runs of this engine that are not in `holding` (job id -> admission)."""


def recovers(backend: Any) -> bool:
    return isinstance(backend, Recovers)


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
