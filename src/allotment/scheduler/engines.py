"""The execution engine of each cluster, its inventory report, and what a launch carries.

cluster.backend "local" runs commands on this host (logs under data_dir/jobs); "simulated" runs nothing and ends each
job after its declared duration (labels.runtime_ms, else its time limit), with virtual nodes from the cluster's
nodes_file setting, else the file named by ALLOT_SIMULATED_NODES, or nodes registered through the API; "slurm" is
backends/slurm.py's engine and "ray" backends/ray.py's, built from the cluster's stored settings
(inventory/engine_settings.py). The Ray engine copies its jobs' output into <data_dir>/jobs (job-<id>.log, where the
job log API reads it) and keeps its run records in <data_dir>/engines/cluster-<id>, a directory of the cluster's own.
"""

from __future__ import annotations

import logging
import shlex
from dataclasses import fields, replace
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.orm import Session

from allotment.backends.base import Backend, Launch, NodeInfo
from allotment.backends.cgroups import Cgroups
from allotment.backends.local import LocalBackend
from allotment.backends.ray import RayBackend, RayConfig
from allotment.backends.remote import ANSWER_S
from allotment.backends.sandbox import Isolation
from allotment.backends.simulated import SimulatedBackend
from allotment.backends.slurm import SlurmBackend, SlurmConfig
from allotment.core import jobenv
from allotment.inventory.engine_settings import EngineConfig, engine_config, redact_credentials
from allotment.inventory.models import CLUSTER_READY, CLUSTER_UNREACHABLE
from allotment.inventory.nodes import DeviceReport, NodeReport, register_node
from allotment.inventory.sealing import unseal
from allotment.inventory.service import report_engine_status
from allotment.scheduler.load import JobInfo
from allotment.settings import Settings

log = logging.getLogger("allotment.scheduler")

AVAILABLE = ("local", "simulated", "slurm", "ray")


def make_backend(settings: Settings, kind: str, engine: EngineConfig | None = None,
                 cluster_id: int | None = None) -> Backend | None:
    """The engine of a cluster of backend `kind`, from its stored settings (`engine`, secrets opened); None when
    this server has no such engine (a slurm or ray cluster needs its settings). Raises when the settings cannot be
    used."""
    if kind == "local":
        return local_backend(settings)
    if kind == "simulated":
        nodes = (engine.get("nodes_file") if engine is not None else None) or settings.simulated_nodes
        return SimulatedBackend.from_file(nodes) if nodes is not None else SimulatedBackend()
    if kind == "slurm" and engine is not None:
        return SlurmBackend(slurm_config(engine, settings.engine_answer_s))
    if kind == "ray" and engine is not None and engine.get("address"):
        return RayBackend(ray_config(settings, engine, cluster_id))
    return None


def ray_config(settings: Settings, engine: EngineConfig, cluster_id: int | None) -> RayConfig:
    own = settings.data_dir / "engines" / (f"cluster-{cluster_id}" if cluster_id is not None else "ray")
    return RayConfig(address=engine.get("address"), resources=dict(engine.get("resources", {})),
                     log_dir=Path(engine.get("log_dir") or settings.data_dir / "jobs"),
                     state_dir=Path(engine.get("state_dir") or own), name_prefix=engine.get("name_prefix", "allot"),
                     answer_s=settings.engine_answer_s)


def local_backend(settings: Settings) -> LocalBackend:
    """The local engine with its isolation (backends/sandbox.py: raises IsolationUnavailable where this host offers
    none, and the cluster shows why) and, where the host allows, cgroup limits (backends/cgroups.py)."""
    isolation = Isolation.for_host(settings.data_dir, settings.local_work_dir, settings.local_job_user,
                                   settings.local_accounts, settings.local_job_uid_base, settings.local_job_uid_count,
                                   settings_file=Path("allot.toml"))
    isolation.tighten()
    cgroups, why_not = Cgroups.detect()
    if cgroups is None:
        log.info("local engine: no cgroup limits (%s): memory requests become RLIMIT_DATA, CPU is not limited",
                 why_not)
    return LocalBackend(settings.data_dir / "jobs", isolation=isolation, cgroups=cgroups)


def slurm_config(engine: EngineConfig, answer_s: float = ANSWER_S) -> SlurmConfig:
    optional_path = {name: Path(engine.get(name)) for name in ("state_dir", "work_dir") if engine.get(name)}
    return SlurmConfig(log_dir=Path(engine.get("log_dir")), rest_url=engine.get("rest_url"),
                       rest_user=engine.get("rest_user"), token=engine.get("token"),
                       slurm_conf=engine.get("slurm_conf"), bin_dir=engine.get("bin_dir", "/usr/bin"),
                       partitions=dict(engine.get("partitions", {})),
                       default_partition=engine.get("default_partition"),
                       name_prefix=engine.get("name_prefix", "allot"), accounts=dict(engine.get("accounts", {})),
                       answer_s=answer_s, **optional_path)


def cluster_backend(session: Session, settings: Settings, secret_key: str, cluster_id: int,
                    kind: str) -> Backend | None:
    """make_backend for one cluster, from its stored settings, reporting the cluster's status: `unreachable` with
    the reason when its engine cannot be built or this server has none, else what the engine says of itself."""
    engine = None
    try:
        engine = engine_config(session, cluster_id, secret_key)
        backend = make_backend(settings, kind, engine, cluster_id)
    except Exception as exc:  # noqa: BLE001 - bad settings must not stop the loop: the cluster shows why
        # The first line only: a parser's message may quote the file it read after it.
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        reason = engine.redact(reason) if engine is not None else redact_credentials(reason)
        log.warning("scheduler: cluster %s: its %s engine could not be started: %s", cluster_id, kind, reason)
        report_engine_status(session, cluster_id, CLUSTER_UNREACHABLE,
                             f"the {kind} engine could not be started from its settings: {reason}")
        return None
    if backend is None:
        report_engine_status(session, cluster_id, CLUSTER_UNREACHABLE,
                             f"the {kind} engine is not available in this server")
    else:
        report_engine_health(session, cluster_id, backend)
    return backend


def engine_health(backend: Backend) -> tuple[str, str | None, datetime | None]:
    """(status, the engine's error, since when) as the engine tells it: an engine that records an outage
    (`outage` = (since, error), as the Slurm engine does) is unreachable; otherwise it is ready."""
    outage = getattr(backend, "outage", None)
    if outage:
        return CLUSTER_UNREACHABLE, str(outage[1]), datetime.fromtimestamp(outage[0], UTC)
    return CLUSTER_READY, None, None


def report_engine_health(session: Session, cluster_id: int, backend: Backend) -> bool:
    """Record the engine's health on its cluster (changes the row only when it changed); call after each poll."""
    status, error, since = engine_health(backend)
    return report_engine_status(session, cluster_id, status, error, since)


def report_of(node: NodeInfo) -> NodeReport:
    return NodeReport(
        name=node.name, cpu=_number(node.cpu), memory=f"{int(node.memory_mib)}Mi", status=node.status,
        devices=[DeviceReport(index=d.index, model=d.model, memory=f"{int(d.memory_mib)}Mi", health=d.health,
                              utilisation=max(0.0, min(100.0, float(d.utilisation))))
                 for d in node.devices])


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.3f}".rstrip("0")


def register_inventory(session: Session, cluster_id: int, backend: Backend,
                       nodes: list[NodeInfo] | None = None) -> int:
    """Create or refresh the nodes and devices the engine reports (`nodes`: what it reported just now; new devices
    land in the default pool)."""
    nodes = backend.inventory() if nodes is None else nodes
    for node in nodes:
        register_node(session, cluster_id, report_of(node))
    return len(nodes)


def duration_of(info: JobInfo) -> float | None:
    """How long a simulated job runs: labels.runtime_ms, else its time limit (None: the engine's default)."""
    runtime_ms = info.labels.get("runtime_ms")
    if runtime_ms is not None:
        try:
            return max(float(runtime_ms), 0.0) / 1000.0
        except (TypeError, ValueError):
            log.warning("job %s: labels.runtime_ms %r is not a number", info.id, runtime_ms)
    return float(info.time_limit_s) if info.time_limit_s else None


def opened(launch: Launch, secret_key: str) -> Launch:
    """The launch with its storage targets' secret variables opened into its environment, for the engine only."""
    if not launch.sealed_env:
        return launch
    return replace(launch, env={**unseal(secret_key, launch.sealed_env), **launch.env}, sealed_env=None)


_COMMANDS: dict[tuple[str, ...], str] = {}  # argv -> its shell text: most jobs of a queue share a few commands


def command_text(argv: list[str]) -> str:
    key = tuple(argv)
    found = _COMMANDS.get(key)
    if found is None:
        if len(_COMMANDS) >= 10_000:
            _COMMANDS.clear()
        found = _COMMANDS[key] = shlex.join(argv)
    return found


LAUNCH_FIELDS = frozenset(f.name for f in fields(Launch))


def _launch(values: dict) -> Launch:
    """Launch(**values), every field given, without the frozen dataclass's __init__: it sets each of Launch's 17
    fields through object.__setattr__, about 5 us per admitted job (as much as the rest of launch_of). The instance
    is the same (fields in its __dict__, equal to the constructor's, still frozen); tests check that every field is
    given."""
    launch = object.__new__(Launch)
    launch.__dict__.update(values)
    return launch


def launch_of(info: JobInfo, devices: list[dict], remaining_s: float | None = None, pool: str | None = None) -> Launch:
    """The launch of an admitted job on its placement (`pool`: the name of the pool it was admitted to).
    `remaining_s` resumes a simulated job after a restart."""
    duration = duration_of(info)
    if remaining_s is not None and duration is not None:
        duration = max(min(duration, remaining_s), 0.0)
    nodes = tuple(info.placed_nodes) or tuple(dict.fromkeys(d["node"] for d in devices if d.get("node")))
    node = nodes[0] if nodes else None
    count = max(info.nodes, 1)  # a gang's amounts are its totals: each node gets its share
    return _launch({
        "job_id": info.id,
        "command": command_text(info.command),
        "node": node,
        "devices": tuple((int(d["index"]), int(d["milli"])) for d in devices if count == 1 or d.get("node") == node)
        if devices else (),
        "cpu": info.cpu / count / 1000.0,
        "memory_mib": info.memory // count // (1024 * 1024),
        "time_limit_s": float(info.time_limit_s) if info.time_limit_s else None,
        "duration_s": duration,
        "admission": info.admission or "",
        "env": jobenv.usable(info.env) if info.env else {},
        "sealed_env": info.sealed_env,
        "config_file": info.config_file,
        "mounts": tuple(info.mounts),
        "owner": info.owner,
        "pool": pool,
        "nodes": nodes,
    })
