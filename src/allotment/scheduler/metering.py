"""Metering hooks: what a job used, computed when it stops holding resources (finished, failed, cancelled or preempted).

Device-seconds are the GPU amount (a fraction counts as such) times the seconds between start and end; cpu likewise.
The loop calls every hook with a `Usage`; the accounting domain can subscribe later (Scheduler.metering_hooks). A
Prometheus counter keeps the running totals per cluster for /metrics.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter

log = logging.getLogger("allotment.scheduler")


@dataclass(frozen=True)
class Usage:
    job_id: int
    cluster: str
    quota_id: int | None
    pool_id: int | None
    outcome: str  # succeeded | failed | cancelled | preempted
    started_at: float
    ended_at: float
    gpu_milli: int
    cpu_milli: int

    @property
    def seconds(self) -> float:
        return max(self.ended_at - self.started_at, 0.0)

    @property
    def device_seconds(self) -> float:
        return self.gpu_milli / 1000.0 * self.seconds

    @property
    def cpu_seconds(self) -> float:
        return self.cpu_milli / 1000.0 * self.seconds


Hook = Callable[[Usage], None]


class Meter:
    def __init__(self, registry: CollectorRegistry | None) -> None:
        self.hooks: list[Hook] = []
        self._gpu = self._cpu = None
        if registry is not None:
            self._gpu = Counter("allot_gpu_seconds", "GPU device-seconds used by finished jobs", ["cluster"],
                                registry=registry)
            self._cpu = Counter("allot_cpu_seconds", "CPU core-seconds used by finished jobs", ["cluster"],
                                registry=registry)

    def record(self, usage: Usage) -> None:
        if self._gpu is not None and self._cpu is not None:
            self._gpu.labels(usage.cluster).inc(usage.device_seconds)
            self._cpu.labels(usage.cluster).inc(usage.cpu_seconds)
        for hook in self.hooks:
            try:
                hook(usage)
            except Exception:  # a metering consumer must never stop the scheduler
                log.exception("metering hook %r failed for job %s", hook, usage.job_id)
