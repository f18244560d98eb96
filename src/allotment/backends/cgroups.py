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

GPU access (cgroup v1 only): each run also gets a cgroup of the devices controller that denies every NVIDIA GPU
node (character major 195, minors 0-253) except the minors of the job's own GPUs, so a job that unsets
CUDA_VISIBLE_DEVICES still cannot open another GPU (EPERM). `nvidiactl` (195:255) and `nvidia-modeset` (195:254) stay
open, as do `nvidia-uvm` and `nvidia-caps` (majors of their own): CUDA needs them and they give access to no GPU.
Denying the other minors one by one, rather than denying all and allowing a list, keeps every other device as the
server's cgroup has it. A GPU's minor is NVML's (nvmlDeviceGetMinorNumber, backends/nvml.py), else its index: the
driver numbers /dev/nvidiaN in the order NVML enumerates on ordinary hosts. CUDA then enumerates only the devices it
can open, so the engine numbers CUDA_VISIBLE_DEVICES from 0, as Slurm does under ConstrainDevices.
On cgroup v2 there is no devices controller: the kernel checks device access with a BPF program attached to the
cgroup (BPF_PROG_TYPE_CGROUP_DEVICE), and no maintained Python library loads one without a compiler toolchain
(bcc) on the host, so on v2 a job's GPUs are bounded by CUDA_VISIBLE_DEVICES only (`enforces_gpus` is False).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("allotment.backends.local")

MOUNT = Path("/sys/fs/cgroup")
PERIOD_US = 100_000
PARENT = "allotment-jobs"
NVIDIA_MAJOR = 195
GPU_MINORS = range(254)  # 254: nvidia-modeset, 255: nvidiactl


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
    parents: dict[str, Path]  # "unified" on v2, else "memory" / "cpu" (and "devices" where it is mounted)

    @property
    def enforces_gpus(self) -> bool:
        """Whether a run's cgroup bounds which GPUs it can open (v1 with the devices controller)."""
        return "devices" in self.parents

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
        if (mount / "devices" / "devices.deny").exists():
            parent = mount / "devices" / own.get("devices", "/").lstrip("/") / PARENT
            parent.mkdir(exist_ok=True)
            parents["devices"] = parent
        else:
            log.info("local engine: no devices controller under %s: GPUs are bounded by CUDA_VISIBLE_DEVICES only",
                     mount)
        return cls(1, parents), ""

    # -- one run ---------------------------------------------------------------------------------------------------
    def create(self, name: str, cpu: float, memory_bytes: int, gpu_minors: tuple[int, ...] = ()) -> dict:
        """Make the run's cgroup(s) with these limits, and where the host allows, access to only these GPUs (device
        minors); what the wrapper needs (launch.json's `cgroup`: `gpus_enforced` when the GPUs are bounded)."""
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
        out = {"dirs": [str(d) for d in dirs], "oom_events": str(events)}
        if self.enforces_gpus:
            out["dirs"].append(str(self._devices(name, gpu_minors)))
            out["gpus_enforced"] = True
        return out

    def _devices(self, name: str, gpu_minors: tuple[int, ...]) -> Path:
        """The run's devices cgroup: every GPU node denied but its own (one rule per minor: v1 cannot carve an
        exception out of a wildcard rule)."""
        path = self.parents["devices"] / name
        path.mkdir(exist_ok=True)
        own = set(gpu_minors)
        with open(path / "devices.deny", "w") as f:
            for minor in GPU_MINORS:
                if minor not in own:
                    f.write(f"c {NVIDIA_MAJOR}:{minor} rwm")
                    f.flush()  # the kernel takes one rule per write
        return path

    def sweep(self, finished: Callable[[str], bool]) -> list[str]:
        """Remove the runs' cgroups that `finished(name)` says belong to a run of this engine that no wrapper holds
        any more (name: '<job>-<admission>'): those a wrapper killed outright (SIGKILL, the host's OOM killer) left
        behind. Others are left alone: another server on this host may make its runs' cgroups under the same parent.
        A cgroup that still holds processes is kept (rmdir refuses it); the engine stops them or adopts their run."""
        removed = []
        for parent in self.parents.values():
            try:
                children = sorted(c for c in parent.iterdir() if c.is_dir())
            except OSError:
                continue
            for child in children:
                if not finished(child.name):
                    continue
                try:
                    child.rmdir()
                except OSError:
                    continue
                removed.append(str(child))
        return removed
