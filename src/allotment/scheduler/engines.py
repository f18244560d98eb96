"""The execution engine of each cluster, its inventory report, and what a launch carries.

cluster.backend "local" runs commands on this host (logs under data_dir/jobs); "simulated" runs nothing and ends each
job after its declared duration (labels.runtime_ms, else its time limit), with virtual nodes from the file named by
ALLOT_SIMULATED_NODES or nodes registered through the API. Other engines (slurm, ray) are not available in this
server: their clusters' jobs wait with a reason saying so.
"""

from __future__ import annotations

import logging
import shlex

from sqlalchemy.orm import Session

from allotment.backends.base import Backend, Launch, NodeInfo
from allotment.backends.local import LocalBackend
from allotment.backends.simulated import SimulatedBackend
from allotment.inventory.nodes import DeviceReport, NodeReport, register_node
from allotment.scheduler.load import JobInfo
from allotment.settings import Settings

log = logging.getLogger("allotment.scheduler")

AVAILABLE = ("local", "simulated")


def make_backend(settings: Settings, kind: str) -> Backend | None:
    if kind == "local":
        return LocalBackend(settings.data_dir / "jobs")
    if kind == "simulated":
        if settings.simulated_nodes is not None:
            return SimulatedBackend.from_file(settings.simulated_nodes)
        return SimulatedBackend()
    return None


def report_of(node: NodeInfo) -> NodeReport:
    return NodeReport(
        name=node.name, cpu=_number(node.cpu), memory=f"{int(node.memory_mib)}Mi", status=node.status,
        devices=[DeviceReport(index=d.index, model=d.model, memory=f"{int(d.memory_mib)}Mi", health=d.health,
                              utilisation=max(0.0, min(100.0, float(d.utilisation))))
                 for d in node.devices])


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.3f}".rstrip("0")


def register_inventory(session: Session, cluster_id: int, backend: Backend) -> int:
    """Create or refresh the nodes and devices the engine reports (new devices land in the default pool)."""
    nodes = backend.inventory()
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


def launch_of(info: JobInfo, devices: list[dict], remaining_s: float | None = None) -> Launch:
    """The launch of an admitted job on its placement. `remaining_s` resumes a simulated job after a restart."""
    duration = duration_of(info)
    if remaining_s is not None and duration is not None:
        duration = max(min(duration, remaining_s), 0.0)
    return Launch(
        job_id=info.id,
        command=shlex.join(info.command),
        node=devices[0]["node"] if devices else None,
        devices=tuple((int(d["index"]), int(d["milli"])) for d in devices),
        cpu=info.cpu / 1000.0,
        memory_mib=info.memory // (1024 * 1024),
        time_limit_s=float(info.time_limit_s) if info.time_limit_s else None,
        duration_s=duration,
        admission=info.admission or "",
    )
