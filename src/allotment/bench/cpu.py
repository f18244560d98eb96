"""CPU time each part of a benchmark run used while it ran: the client, the server, its scheduler loop, its database.

A wall time on a shared machine says little by itself: the same run took 7.2 s one evening and 9.5 s the next with
the host busier. What each process spent in the measured window says whether the run was short of CPU (the parts
together near the machine's cores times the window) and which part grew. Each part is a process and everything it
started: a process's own user and system time, plus the time of the children it waited for (PostgreSQL's backends
end and are reaped by the postmaster; their time is counted there), so processes that start or end during the window
count for what they spent in it. The window's ends are two snapshots; a part whose root process is gone by the second
counts nothing.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping

import psutil

# What a part is called in the report, and how its processes are told apart below the server's root process.
CLIENT, SERVER, SCHEDULER, DATABASE = "client", "server", "scheduler", "database"
SCHEDULER_PROCESS = "allotment.scheduler.process"  # the command line of the loop's process (scheduler/process.py)


def _own(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system + times.children_user + times.children_system


def _tree(process: psutil.Process) -> list[psutil.Process]:
    try:
        return [process, *process.children(recursive=True)]
    except psutil.Error:
        return []


def part_seconds(roots: Mapping[str, int], split: Mapping[str, tuple[str, str]] | None = None) -> dict[str, float]:
    """CPU seconds of each part: its root process and its descendants, less those of another part (this client
    starts the throwaway server: the server is a part of its own). `split`: part -> (name, text) makes the
    descendants whose command line contains `text`, and theirs, a part `name` of their own. Processes that end while
    they are read are skipped."""
    trees: dict[str, list[psutil.Process]] = {}
    for name, pid in roots.items():
        try:
            trees[name] = _tree(psutil.Process(pid))
        except psutil.Error:
            continue
    for name, (part, text) in (split or {}).items():
        for process in trees.get(name, [])[1:]:
            try:
                if text in " ".join(process.cmdline()):
                    trees[part] = _tree(process)
                    break
            except psutil.Error:
                continue
    # A process belongs to the part whose root is nearest above it: the smallest tree that holds it.
    owner: dict[int, str] = {}
    for name, tree in sorted(trees.items(), key=lambda item: -len(item[1])):
        for process in tree:
            owner[process.pid] = name
    out: dict[str, float] = {}
    for name, tree in trees.items():
        total = 0.0
        for process in tree:
            if owner.get(process.pid) != name:
                continue
            try:
                total += _own(process)
            except psutil.Error:
                continue
        out[name] = total
    return out


class CpuWindow:
    """Snapshots of the parts' CPU time; `report()` gives what each spent between `start()` and `stop()`.

    `parts`: name -> root process id. The server's part leaves out the scheduler loop's process (and what it
    starts), reported as its own part when the loop runs in a process."""

    def __init__(self, parts: Mapping[str, int]) -> None:
        self.parts = dict(parts)
        self._start: dict[str, float] = {}
        self._stop: dict[str, float] = {}
        self._began = self._ended = 0.0

    def _snapshot(self) -> dict[str, float]:
        return part_seconds(self.parts, {SERVER: (SCHEDULER, SCHEDULER_PROCESS)})

    def start(self) -> None:
        self._start, self._began = self._snapshot(), time.monotonic()

    def stop(self) -> None:
        self._stop, self._ended = self._snapshot(), time.monotonic()

    def report(self) -> dict:
        """{"window_s", "cores", "seconds": {part: CPU seconds in the window}, "share": their sum over cores x
        window}: a share near 1 means the run used every core the machine has."""
        window = max(self._ended - self._began, 1e-9)
        seconds = {name: round(max(self._stop[name] - self._start.get(name, 0.0), 0.0), 2) for name in self._stop}
        cores = os.cpu_count() or 1
        return {"window_s": round(window, 2), "cores": cores, "seconds": seconds,
                "share": round(sum(seconds.values()) / (cores * window), 3)}
