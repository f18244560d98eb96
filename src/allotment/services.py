"""Background services started with the server (the scheduler loop, backends, the job log retention sweep and that of
the local engine's working directories and run records). Each has stop()."""

from __future__ import annotations

import importlib.util
import signal
import threading
from typing import Protocol

from allotment import db_statistics
from allotment.api.state import AppState


class Service(Protocol):
    def stop(self) -> None: ...


def notice_stop_signals(state: AppState) -> threading.Event:
    """state.extras["stopping"], set as soon as the server is told to stop (SIGTERM, SIGINT).

    uvicorn lets open responses finish before it shuts the app down, and a log follower's stream stays open until
    its job ends: followers watch this event and end their streams at once (the CLI can follow again from where it
    stopped). Signals can be handled only in the main thread, where uvicorn runs the app; its own handler, installed
    before the app starts, still runs after this one."""
    stopping = state.extras.setdefault("stopping", threading.Event())
    if threading.current_thread() is not threading.main_thread():
        return stopping
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous = signal.getsignal(sig)
        if not callable(previous):  # the default or ignored: no server of ours is listening for it
            continue

        def chained(signum, frame, previous=previous) -> None:
            stopping.set()
            previous(signum, frame)

        signal.signal(sig, chained)
    return stopping


def start_services(state: AppState) -> list[Service]:
    services: list[Service] = []
    notice_stop_signals(state)
    if db_statistics.on_file(state.engine.url):  # first: the scheduler's process opens its connections after it
        services.append(db_statistics.StatisticsRefresh(state.engine))
    if state.settings.scheduler_enabled and importlib.util.find_spec("allotment.scheduler.loop") is not None:
        if state.settings.scheduler_mode == "process":
            from allotment.scheduler.process import SchedulerProcess

            services.append(SchedulerProcess(state))
        else:
            from allotment.scheduler.loop import start_scheduler

            services.append(start_scheduler(state))
    if state.settings.job_log_retention_days:
        from allotment.workloads.logs import LogRetention

        services.append(LogRetention(state.sessions, state.settings))
        if importlib.util.find_spec("allotment.backends.local_retention") is not None:
            from allotment.backends.local_retention import LocalRetention

            services.append(LocalRetention(state.sessions, state.settings))
    return services
