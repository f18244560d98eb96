"""Background services started with the server (the scheduler loop, backends, the job log retention sweep). Each
has stop()."""

from __future__ import annotations

import importlib.util
from typing import Protocol

from allotment.api.state import AppState


class Service(Protocol):
    def stop(self) -> None: ...


def start_services(state: AppState) -> list[Service]:
    services: list[Service] = []
    if state.settings.scheduler_enabled and importlib.util.find_spec("allotment.scheduler.loop") is not None:
        from allotment.scheduler.loop import start_scheduler

        services.append(start_scheduler(state))
    if state.settings.job_log_retention_days:
        from allotment.workloads.logs import LogRetention

        services.append(LogRetention(state.sessions, state.settings))
    return services
