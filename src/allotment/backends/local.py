"""The local engine: runs each job's command as a process on this host.

GPU jobs see only their devices through CUDA_VISIBLE_DEVICES (fractions share a device). Inventory comes from
`nvidia-smi` when present; a host without GPUs offers its CPUs and memory only.

Idleness (for the idle timeout of resource policies): a job is its process group (`/bin/sh -c COMMAND` in a session of
its own). When asked, the engine samples the CPU time of every job's group (psutil; one scan of the host's processes
per sample, and one `nvidia-smi` query when a job holds GPUs) and keeps, per job, the last time that CPU time changed
or one of its GPUs showed utilisation. A job is idle since then (since its start when never seen busy). Time used
between two samples is dated at the later one, so a job is never found idle for longer than it was.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from allotment.backends.base import DeviceInfo, JobEvent, Launch, NodeInfo

GRACE_S = 5.0


def detect_gpus(timeout_s: float = 10) -> tuple[DeviceInfo, ...]:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return ()
    try:
        out = subprocess.run(
            [smi, "--query-gpu=index,name,memory.total,utilization.gpu", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=timeout_s, check=True).stdout
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


def group_cpu_seconds(pgids: set[int]) -> dict[int, float]:
    """CPU time (user + system, with that of reaped children) of the processes of each process group. A process
    that ends and is reaped by a member moves its time to that member; one reaped outside the group takes it away."""
    totals = dict.fromkeys(pgids, 0.0)
    if not pgids:
        return totals
    for proc in psutil.process_iter():
        try:
            pgid = os.getpgid(proc.pid)
            if pgid not in totals:
                continue
            t = proc.cpu_times()
        except (psutil.Error, OSError):  # gone meanwhile, or not ours to look at
            continue
        totals[pgid] += t.user + t.system + t.children_user + t.children_system
    return {pgid: round(total, 3) for pgid, total in totals.items()}


@dataclass
class Activity:
    """Idle bookkeeping of one job: its group's CPU time at the last sample and when it was last seen busy."""

    cpu_s: float
    busy_at: float
    devices: tuple[int, ...] = ()


def host_memory_mib() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1024 * 1024)
    except (ValueError, OSError):
        return 0


class LocalBackend:
    name = "local"
    reports_idleness = True
    GPU_QUERY_TIMEOUT_S = 5.0  # the sample runs inside a scheduler cycle: a hung nvidia-smi must not hold it long

    def __init__(self, log_dir: Path, node_name: str | None = None):
        self.log_dir = Path(log_dir)
        self.node_name = node_name or os.uname().nodename
        self._procs: dict[int, tuple[subprocess.Popen, float | None]] = {}
        self._pending: list[JobEvent] = []
        self._cancelled: set[int] = set()
        self._activity: dict[int, Activity] = {}
        self._sampled_at: float | None = None

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
        log = open(self.log_dir / f"job-{launch.job_id}.log", "ab")
        try:
            proc = subprocess.Popen(["/bin/sh", "-c", launch.command], stdout=log, stderr=subprocess.STDOUT,
                                    env=env, start_new_session=True)
        finally:
            log.close()
        deadline = now + launch.time_limit_s if launch.time_limit_s else None
        self._procs[launch.job_id] = (proc, deadline)
        self._activity[launch.job_id] = Activity(0.0, now, tuple(d for d, _ in launch.devices))
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
        self._activity.pop(job_id, None)
        if entry is not None:
            self._kill(entry[0])

    def poll(self, now: float) -> list[JobEvent]:
        events, self._pending = self._pending, []
        for job_id, (proc, deadline) in list(self._procs.items()):
            code = proc.poll()
            if code is None and deadline is not None and now >= deadline:
                self._kill(proc)
                del self._procs[job_id]
                self._activity.pop(job_id, None)
                events.append(JobEvent(job_id, "failed", now, exit_code=proc.returncode,
                                       message="time limit reached"))
                continue
            if code is not None:
                del self._procs[job_id]
                self._activity.pop(job_id, None)
                kind = "succeeded" if code == 0 else "failed"
                events.append(JobEvent(job_id, kind, now, exit_code=code,
                                       message=None if code == 0 else f"exited with code {code}"))
        return events

    def idle_since(self, job_id: int, now: float) -> float | None:
        """Since when the job's processes have used no CPU time and its GPUs no utilisation (None: not running here).
        All jobs are sampled once per `now`, so the loop asking about many jobs in one check scans the host once."""
        if job_id not in self._activity:
            return None
        if self._sampled_at != now:
            self._sample(now)
        activity = self._activity.get(job_id)
        return activity.busy_at if activity is not None else None

    def _sample(self, now: float) -> None:
        self._sampled_at = now
        pgids = {job_id: self._procs[job_id][0].pid for job_id in self._activity if job_id in self._procs}
        cpu = group_cpu_seconds(set(pgids.values()))
        busy_gpus: set[int] = set()
        if any(self._activity[job_id].devices for job_id in pgids):
            busy_gpus = {d.index for d in detect_gpus(self.GPU_QUERY_TIMEOUT_S) if d.utilisation > 0}
        for job_id, pgid in pgids.items():
            activity = self._activity[job_id]
            # Any change counts as work: a decrease means a member that had used CPU ended (reaped elsewhere).
            if cpu[pgid] != activity.cpu_s or busy_gpus.intersection(activity.devices):
                activity.busy_at = max(activity.busy_at, now)
            activity.cpu_s = cpu[pgid]

    def next_event_at(self) -> float | None:
        return 0.0 if self._pending else None

    def close(self) -> None:
        for job_id in list(self._procs):
            self.cancel(job_id, time.time())
        self._activity.clear()
