"""The local engine: runs each job's command as a process on this host.

GPU jobs see only their devices through CUDA_VISIBLE_DEVICES (fractions share a device). Inventory comes from
`nvidia-smi` when present; a host without GPUs offers its CPUs and memory only.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from allotment.backends.base import DeviceInfo, JobEvent, Launch, NodeInfo

GRACE_S = 5.0


def detect_gpus() -> tuple[DeviceInfo, ...]:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return ()
    try:
        out = subprocess.run(
            [smi, "--query-gpu=index,name,memory.total,utilization.gpu", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return ()
    devices = []
    for line in out.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) >= 3 and parts[0].isdigit():
            util = float(parts[3]) / 100 if len(parts) > 3 and parts[3].replace(".", "").isdigit() else 0.0
            devices.append(DeviceInfo(index=int(parts[0]), model=parts[1], memory_mib=int(float(parts[2])),
                                      utilisation=util))
    return tuple(devices)


def host_memory_mib() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1024 * 1024)
    except (ValueError, OSError):
        return 0


class LocalBackend:
    name = "local"

    def __init__(self, log_dir: Path, node_name: str | None = None):
        self.log_dir = Path(log_dir)
        self.node_name = node_name or os.uname().nodename
        self._procs: dict[int, tuple[subprocess.Popen, float | None]] = {}
        self._pending: list[JobEvent] = []
        self._cancelled: set[int] = set()

    def inventory(self) -> list[NodeInfo]:
        return [NodeInfo(name=self.node_name, cpu=float(os.cpu_count() or 1), memory_mib=host_memory_mib(),
                         devices=detect_gpus())]

    def launch(self, launch: Launch, now: float) -> str:
        if launch.job_id in self._procs:
            return str(self._procs[launch.job_id][0].pid)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **launch.env, "ALLOT_JOB_ID": str(launch.job_id)}
        if launch.devices:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(str(d) for d, _ in launch.devices)
        log = open(self.log_dir / f"job-{launch.job_id}.log", "ab")  # noqa: SIM115 - owned by the child
        try:
            proc = subprocess.Popen(["/bin/sh", "-c", launch.command], stdout=log, stderr=subprocess.STDOUT,
                                    env=env, start_new_session=True)
        finally:
            log.close()
        deadline = now + launch.time_limit_s if launch.time_limit_s else None
        self._procs[launch.job_id] = (proc, deadline)
        self._pending.append(JobEvent(launch.job_id, "started", now))
        return str(proc.pid)

    def _kill(self, proc: subprocess.Popen) -> None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(GRACE_S)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        except ProcessLookupError:
            pass

    def cancel(self, job_id: int, now: float) -> None:
        entry = self._procs.pop(job_id, None)
        if entry is not None:
            self._kill(entry[0])

    def poll(self, now: float) -> list[JobEvent]:
        events, self._pending = self._pending, []
        for job_id, (proc, deadline) in list(self._procs.items()):
            code = proc.poll()
            if code is None and deadline is not None and now >= deadline:
                self._kill(proc)
                del self._procs[job_id]
                events.append(JobEvent(job_id, "failed", now, exit_code=proc.returncode,
                                       message="time limit reached"))
                continue
            if code is not None:
                del self._procs[job_id]
                kind = "succeeded" if code == 0 else "failed"
                events.append(JobEvent(job_id, kind, now, exit_code=code,
                                       message=None if code == 0 else f"exited with code {code}"))
        return events

    def next_event_at(self) -> float | None:
        return 0.0 if self._pending else None

    def close(self) -> None:
        for job_id in list(self._procs):
            self.cancel(job_id, time.time())
