"""CPU and memory limits of local jobs: one cgroup per run, where the host lets the server make them.

The engine creates the run's cgroup(s) with the job's requests as limits: `cpu.max` (quota per 100 ms period: 0.5
core = 50 ms) and `memory.max` (with `memory.swap.max` 0, so the limit is not dodged by swapping) on cgroup v2; on a
v1 or hybrid host (this project's test machines) `cpu.cfs_quota_us` / `cpu.cfs_period_us` and
`memory.limit_in_bytes` (and `memory.memsw.limit_in_bytes`). The wrapper (jobrun.py) moves the command into them
just before exec, as root; after the command ends it reads the memory controller's `oom_kill` count (v2
`memory.events`, v1 `memory.oom_control`) to say "memory limit reached", kills what is left in the cgroup (a process
that left the job's process group with setsid) and removes it. A request of 0 (none) is no limit.

Runs' cgroups go under the server's own cgroup (`<own>/allotment-jobs/<job>-<admission>`), so the server's own
limits (a container's, a systemd unit's) still bound its jobs. On cgroup v2 that needs the server's cgroup to
delegate the cpu and memory controllers (the kernel refuses controllers below a cgroup that has processes: a systemd
unit with Delegate=yes, or a server in the root cgroup); where it cannot, or the server is not root, there are no
cgroups, and memory falls back to RLIMIT_DATA: it counts the private writable memory a process maps (heap and
anonymous mmap), not the huge address-space reservations of CUDA (PROT_NONE), which make RLIMIT_AS useless for GPU
jobs. It is per process, not per job. CPU then is not limited: no rlimit bounds a rate (RLIMIT_CPU ends a process
after so many CPU-seconds).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("allotment.backends.local")

MOUNT = Path("/sys/fs/cgroup")
PERIOD_US = 100_000
PARENT = "allotment-jobs"


def _own_paths(proc_cgroup: str) -> dict[str, str]:
    """controller -> the process's cgroup path ("" is the v2 unified hierarchy), from /proc/self/cgroup."""
    paths = {}
    for line in proc_cgroup.splitlines():
        _, controllers, path = line.split(":", 2)
        for controller in controllers.split(",") if controllers else [""]:
            paths[controller] = path
    return paths


def _write(path: Path, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


@dataclass
class Cgroups:
    """Where runs' cgroups are made: one parent (v2) or one per controller (v1: memory, cpu)."""

    version: int
    parents: dict[str, Path]  # "unified" on v2, else "memory" / "cpu"

    @classmethod
    def detect(cls, mount: Path = MOUNT, proc_cgroup: str | None = None) -> tuple[Cgroups | None, str]:
        """(cgroups, "") when runs can get limits here, else (None, why not)."""
        if os.geteuid() != 0:
            return None, "the server does not run as root"
        try:
            own = _own_paths(proc_cgroup if proc_cgroup is not None else Path("/proc/self/cgroup").read_text())
        except (OSError, ValueError) as exc:
            return None, f"cannot read this process's cgroups: {exc}"
        try:
            if (mount / "cgroup.controllers").exists():
                return cls._v2(mount / own.get("", "/").lstrip("/"))
            return cls._v1(mount, own)
        except OSError as exc:
            return None, f"cannot create cgroups: {exc}"

    @classmethod
    def _v2(cls, own: Path) -> tuple[Cgroups | None, str]:
        wanted = {"cpu", "memory"}
        if not wanted <= set((own / "cgroup.controllers").read_text().split()):
            return None, f"cgroup v2: {own} does not offer the cpu and memory controllers"
        parent = own / PARENT
        parent.mkdir(exist_ok=True)
        try:
            _write(own / "cgroup.subtree_control", "+cpu +memory")
            _write(parent / "cgroup.subtree_control", "+cpu +memory")
        except OSError as exc:  # EBUSY: the server's cgroup holds processes and delegates nothing
            return None, f"cgroup v2: cannot delegate cpu and memory below {own} ({exc.strerror})"
        return cls(2, {"unified": parent}), ""

    @classmethod
    def _v1(cls, mount: Path, own: dict[str, str]) -> tuple[Cgroups | None, str]:
        parents = {}
        for controller in ("memory", "cpu"):
            hierarchy = next((mount / name for name in (controller, "cpu,cpuacct")
                              if (mount / name / "cgroup.procs").exists()
                              and (controller == "memory" or (mount / name / "cpu.cfs_quota_us").exists())), None)
            if hierarchy is None:
                return None, f"cgroup v1: no {controller} controller mounted under {mount}"
            parent = hierarchy / own.get(controller, "/").lstrip("/") / PARENT
            parent.mkdir(exist_ok=True)
            parents[controller] = parent
        return cls(1, parents), ""

    # -- one run ---------------------------------------------------------------------------------------------------
    def create(self, name: str, cpu: float, memory_bytes: int) -> dict:
        """Make the run's cgroup(s) with these limits; what the wrapper needs (launch.json's `cgroup`)."""
        quota = max(int(cpu * PERIOD_US), 1000) if cpu > 0 else None
        dirs = []
        if self.version == 2:
            path = self.parents["unified"] / name
            path.mkdir(exist_ok=True)
            _write(path / "cpu.max", f"{quota if quota else 'max'} {PERIOD_US}")
            if memory_bytes > 0:
                _write(path / "memory.max", str(memory_bytes))
                if (path / "memory.swap.max").exists():
                    _write(path / "memory.swap.max", "0")
            dirs.append(path)
            events = path / "memory.events"
        else:
            cpu_dir, mem_dir = self.parents["cpu"] / name, self.parents["memory"] / name
            for path in (cpu_dir, mem_dir):
                path.mkdir(exist_ok=True)
            _write(cpu_dir / "cpu.cfs_period_us", str(PERIOD_US))
            _write(cpu_dir / "cpu.cfs_quota_us", str(quota if quota else -1))
            if memory_bytes > 0:
                _write(mem_dir / "memory.limit_in_bytes", str(memory_bytes))
                if (mem_dir / "memory.memsw.limit_in_bytes").exists():
                    try:
                        _write(mem_dir / "memory.memsw.limit_in_bytes", str(memory_bytes))
                    except OSError:  # swap accounting off: the memory limit alone
                        pass
            dirs += [mem_dir, cpu_dir]
            events = mem_dir / "memory.oom_control"
        return {"dirs": [str(d) for d in dirs], "oom_events": str(events)}
