"""The simulated engine: virtual nodes from a file; a job "runs" for its declared duration.

It lets scheduling be measured through the real path (HTTP, database, scheduler loop) without running anything.
Its clock is the caller's: `poll(now)` finishes every job whose end time has passed.
"""

from __future__ import annotations

import heapq
from pathlib import Path

import yaml

from allotment.backends.base import RUNS, DeviceInfo, JobEvent, Launch, NodeInfo, Reattached

DEFAULT_DURATION_S = 1.0


def nodes_from_spec(spec: dict) -> list[NodeInfo]:
    """{'nodes': [{'name': 'n1', 'cpu': 64, 'memory': '256Gi' | memory_mib, 'gpus': 8, 'gpu_model': 'H100',
    'count': 4}]} — `count` repeats a node (names get -0, -1, ...)."""
    nodes: list[NodeInfo] = []
    for i, entry in enumerate(spec.get("nodes") or []):
        count = int(entry.get("count", 1))
        memory = entry.get("memory_mib")
        if memory is None:
            text = str(entry.get("memory", "0")).strip()
            factor = {"Ti": 1024 * 1024, "Gi": 1024, "Mi": 1}
            unit = next((u for u in factor if text.endswith(u)), None)
            memory = int(float(text[:-2]) * factor[unit]) if unit else int(float(text or 0))
        gpus = int(entry.get("gpus", 0))
        model = str(entry.get("gpu_model", "simulated-gpu"))
        gpu_mem = int(entry.get("gpu_memory_mib", 81920))
        base = entry.get("name", f"sim{i}")
        for k in range(count):
            name = base if count == 1 else f"{base}-{k}"
            devices = tuple(DeviceInfo(index=d, model=model, memory_mib=gpu_mem) for d in range(gpus))
            nodes.append(NodeInfo(name=name, cpu=float(entry.get("cpu", 0)), memory_mib=int(memory), devices=devices))
    return nodes


class SimulatedBackend:
    name = "simulated"
    reports_idleness = False  # a simulated job is busy for its whole duration: the idle timeout never ends one

    def __init__(self, nodes: list[NodeInfo] | None = None):
        self._nodes = nodes or []
        self._ends: list[tuple[float, int]] = []  # heap of (end time, job id)
        self._running: dict[int, float] = {}
        self._pending: list[JobEvent] = []

    @classmethod
    def from_file(cls, path: str | Path) -> SimulatedBackend:
        return cls(nodes_from_spec(yaml.safe_load(Path(path).read_text()) or {}))

    def inventory(self) -> list[NodeInfo]:
        return list(self._nodes)

    def launch(self, launch: Launch, now: float) -> str:
        if launch.job_id not in self._running:
            duration = launch.duration_s if launch.duration_s is not None else DEFAULT_DURATION_S
            if launch.time_limit_s is not None:
                duration = min(duration, launch.time_limit_s)
            end = now + max(duration, 0.0)
            self._running[launch.job_id] = end
            heapq.heappush(self._ends, (end, launch.job_id))
            self._pending.append(JobEvent(launch.job_id, "started", now))
        return f"sim-{launch.job_id}"

    def reattach(self, launch: Launch, now: float) -> Reattached:
        """Nothing real runs, so nothing can run twice: a job this engine does not know (it lives in memory only, so
        after a restart it knows none) resumes for the launch's duration, which the loop sets to what is left of it.
        No 'started' event: the loop records the start itself."""
        if launch.job_id not in self._running:
            duration = launch.duration_s if launch.duration_s is not None else DEFAULT_DURATION_S
            end = now + max(duration, 0.0)
            self._running[launch.job_id] = end
            heapq.heappush(self._ends, (end, launch.job_id))
            return Reattached(RUNS, started_at=now, handle=f"sim-{launch.job_id}")
        return Reattached(RUNS, handle=f"sim-{launch.job_id}")

    def stop_orphans(self, holding: dict[int, str], now: float) -> list[str]:
        return []  # its runs live in memory: none survives the server

    def cancel(self, job_id: int, now: float) -> None:
        self._running.pop(job_id, None)  # its heap entry is skipped when it surfaces

    def idle_since(self, job_id: int, now: float) -> float | None:
        return None

    def poll(self, now: float) -> list[JobEvent]:
        events, self._pending = self._pending, []
        while self._ends and self._ends[0][0] <= now:
            end, job_id = heapq.heappop(self._ends)
            if self._running.get(job_id) == end:
                del self._running[job_id]
                events.append(JobEvent(job_id, "succeeded", end, exit_code=0))
        return events

    def next_event_at(self) -> float | None:
        while self._ends and self._running.get(self._ends[0][1]) != self._ends[0][0]:
            heapq.heappop(self._ends)
        if self._pending:
            return 0.0
        return self._ends[0][0] if self._ends else None

    def close(self) -> None:
        self._running.clear()
        self._ends.clear()
