"""The local engine: runs each job's command as a process on this host.

GPU jobs see only their devices through CUDA_VISIBLE_DEVICES (fractions share a device) and, on cgroup v1 hosts, can
open no other GPU (the run's devices cgroup, backends/cgroups.py; on v2 only the variable bounds them). Inventory comes from
NVML (backends/nvml.py: model, memory, health, utilisation); a host without it offers its CPUs and memory only.
Each job runs confined (backends/sandbox.py: its own account or a bubblewrap sandbox, a clean environment, its
own working directory; backends/cgroups.py: its CPU and memory requests as limits).

Each run (a job id and its admission) has a durable record under the jobs directory and runs under a small wrapper
process (jobrun.py) that holds the run's lock, starts the command at most once, enforces the time limit and writes the
exit code. So the engine survives a crash of the server: launching again what the database says is admitted never
starts a second copy, and a new engine adopts the runs it finds alive (`reattach`), learns the exit code of those
that ended meanwhile, and stops those no holding job owns (`stop_orphans`). Logs stay at `<jobs dir>/job-<id>.log`.
Stopping the engine (`close`, the server shutting down) stops its runs.

Idleness (for the idle timeout of resource policies): a job is its command's process group (`/bin/sh -c COMMAND` in a
session of its own, the wrapper outside it). When asked, the engine samples the CPU time of every job's group (psutil; one scan of the host's processes
per sample, and one NVML query when a job holds GPUs) and keeps, per job, the last time that CPU time changed
or one of its GPUs showed utilisation. A job is idle since then (since its start when never seen busy). Time used
between two samples is dated at the later one, so a job is never found idle for longer than it was.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from allotment.backends import jobrun
from allotment.backends.base import ENDED, LOST, RUNS, UNKNOWN, JobEvent, Launch, NodeInfo, Reattached
from allotment.backends.cgroups import Cgroups
from allotment.backends.nvml import minor_numbers, read_gpus
from allotment.backends.sandbox import Isolation, folder_variable, job_environment

log = logging.getLogger("allotment.backends.local")

GRACE_S = jobrun.GRACE_S
ANNOUNCE_WAIT_S = 2.0  # a wrapper slower than this to start its command: 'started' is reported anyway
STOP_WAIT_S = GRACE_S + 3.0  # the wrapper escalates to SIGKILL after GRACE_S; past this the engine does it itself
WRAPPER = Path(jobrun.__file__)


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


SAFE_NAME = frozenset("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ._-")


@dataclass
class Run:
    """A run the engine tracks: started by it (`wrapper` is its child) or adopted after a restart."""

    job_id: int
    dir: Path
    deadline: float | None
    devices: tuple[int, ...] = ()
    wrapper: subprocess.Popen | None = None
    wrapper_pid: int | None = None
    pgid: int | None = None  # the command's process group, read from pid.json once the wrapper wrote it

    def group(self) -> int | None:
        if self.pgid is None:
            record = jobrun.read_json(self.dir / "pid.json")
            if record and "pid" in record:
                self.pgid = int(record["pid"])
        return self.pgid

    def wrapper_alive(self) -> bool:
        if self.wrapper is not None and self.wrapper.poll() is None:
            return True
        return jobrun.lock_held(self.dir)

    def alive(self) -> bool:
        return self.wrapper_alive() or jobrun.group_alive(jobrun.read_json(self.dir / "pid.json"))

    def signal_pid(self) -> int | None:
        """The wrapper's pid (whoever started it): the process to ask to stop the run."""
        if self.wrapper_pid is None:
            started = jobrun.read_json(self.dir / "started.json") or {}
            self.wrapper_pid = started.get("wrapper_pid")
        return self.wrapper_pid

    @property
    def handle(self) -> str:
        """The command's process group once it runs (what an operator kills), else the wrapper's pid."""
        pgid = self.group()
        if pgid is not None:
            return str(pgid)
        pid = self.signal_pid()
        return str(pid) if pid else ""


def ending(record: dict, stop: dict | None) -> tuple[str, int | None, str | None]:
    """(event kind, exit code, message) of a run from its exit.json (and stop.json: why the engine stopped it)."""
    code, reason = record.get("code"), record.get("reason")
    if reason == jobrun.TIME_LIMIT:
        return "failed", code, "time limit reached"
    if reason == jobrun.MEMORY_LIMIT:
        return "failed", code, "memory limit reached: killed by the kernel for using more memory than it requested"
    if reason == jobrun.START_FAILED:
        return "failed", None, f"its command could not be started: {record.get('error') or 'see its log'}"
    if reason is not None:
        why = (stop or {}).get("reason") or "stopped by the engine"
        return "failed", code, why if code is not None else f"{why} before its command started"
    if code == 0:
        return "succeeded", 0, None
    return "failed", code, f"exited with code {code}"


CONFIG_FILE_NAME = "allotment-config.json"


def write_config_file(launch: Launch, run_dir: Path, confine: dict) -> dict[str, str]:
    """Write the owner's effective configuration (configuration vaults) where only the job reads it: its working
    directory (owned by its account, or bound into its sandbox), else the run's directory; the variable naming it.
    The working directory is the job's own, so whatever the job left at that name is removed first and the file is
    created afresh without following links (a link planted there must not make the server write elsewhere)."""
    if launch.config_file is None:
        return {}
    directory = Path(confine["workdir"]) if confine.get("workdir") else run_dir
    path = directory / CONFIG_FILE_NAME
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(launch.config_file)
    if confine.get("uid") is not None:
        os.chown(path, int(confine["uid"]), int(confine.get("gid", confine["uid"])))
    return {"ALLOT_CONFIG_FILE": str(path)}


class LocalBackend:
    name = "local"
    reports_idleness = True

    def __init__(self, log_dir: Path, node_name: str | None = None, isolation: Isolation | None = None,
                 cgroups: Cgroups | None = None):
        self.log_dir = Path(log_dir)  # the jobs directory: logs and run records
        self.node_name = node_name or os.uname().nodename
        # The server always passes one (local_backend); without it commands run as this process's user, with a
        # clean environment still (tests of the engine's mechanics, embedding).
        self.isolation = isolation
        self.cgroups = cgroups
        self._runs: dict[int, Run] = {}
        self._pending: list[JobEvent] = []
        # Runs launched whose 'started' is not reported yet: it waits (briefly) for the command's process group,
        # so that the job's handle is the group, not the wrapper.
        self._unannounced: dict[int, tuple[float, Run]] = {}
        self._activity: dict[int, Activity] = {}
        self._reap: list[subprocess.Popen] = []  # wrappers still to be waited for (no zombies)
        self._sampled_at: float | None = None
        self._minors: dict[int, int] | None = None  # GPU index -> device minor (NVML), once a GPU job is launched
        if cgroups is not None:
            self.sweep_cgroups()

    def sweep_cgroups(self) -> list[str]:
        """Remove the cgroups of this engine's runs that ended without their wrapper removing them (a wrapper killed
        outright, SIGKILL or the OOM killer). Run at start, before this engine launches anything."""
        removed = self.cgroups.sweep(self._run_over) if self.cgroups is not None else []
        if removed:
            log.info("local engine: removed %d cgroup(s) left behind by runs that ended", len(removed))
        return removed

    def _run_over(self, name: str) -> bool:
        """Whether the run a cgroup is named after ('<job>-<admission>') is this engine's and no wrapper holds it.
        A run never started keeps its cgroup: launching it again (reattach) uses the one its record names."""
        job, sep, admission = name.partition("-")
        if not sep or not job.isdigit():
            return False
        try:
            run_dir = self.run_dir(int(job), admission)
        except ValueError:
            return False
        return (run_dir / "started.json").exists() and not jobrun.lock_held(run_dir)

    def inventory(self) -> list[NodeInfo]:
        return [NodeInfo(name=self.node_name, cpu=float(os.cpu_count() or 1), memory_mib=host_memory_mib(),
                         devices=read_gpus())]

    def run_dir(self, job_id: int, admission: str) -> Path:
        admission = admission or "0"
        if not set(admission) <= SAFE_NAME or admission.startswith("."):
            raise ValueError(f"job {job_id}: admission {admission!r} cannot name a directory")
        return self.log_dir / str(int(job_id)) / admission

    # -- launching and adopting ------------------------------------------------------------------------------------
    def launch(self, launch: Launch, now: float) -> str:
        run = self._runs.get(launch.job_id)
        if run is not None:
            return run.handle
        run_dir = self.run_dir(launch.job_id, launch.admission)
        if (run_dir / "started.json").exists():  # launched again after a restart: this run exists, never start it twice
            found = self.reattach(launch, now)
            self._pending.append(JobEvent(launch.job_id, "started", found.started_at or now, handle=found.handle))
            if found.state in (ENDED, LOST):
                ok = found.exit_code == 0 and found.message is None and found.state == ENDED
                self._pending.append(JobEvent(launch.job_id, "succeeded" if ok else "failed",
                                              found.ended_at or now, found.exit_code, found.message))
            run = self._runs.get(launch.job_id)
            return run.handle if run is not None else ""
        run = self._start(launch, run_dir, now)
        self._unannounced[launch.job_id] = (now, run)
        return run.handle

    def _start(self, launch: Launch, run_dir: Path, now: float) -> Run:
        """Start a wrapper for the run (writing its launch record first, unless an earlier launch did)."""
        run_dir.mkdir(parents=True, exist_ok=True)
        spec = jobrun.read_json(run_dir / "launch.json")
        if spec is None:
            spec = {"job_id": launch.job_id, "admission": launch.admission, "command": launch.command,
                    "deadline": now + launch.time_limit_s if launch.time_limit_s else None,
                    "devices": [d for d, _ in launch.devices], "launched_at": now, **self._confine(launch)}
            jobrun.write_json(run_dir / "launch.json", spec)
        confine = spec.get("confine") or {}
        # The job's whole environment (never the server's); the wrapper passes it on to the command unchanged.
        env = job_environment(launch.env, launch.job_id, [int(d) for d in spec.get("devices") or ()],
                              confine.get("workdir"), confine.get("user"),
                              renumber_cuda=bool((spec.get("cgroup") or {}).get("gpus_enforced")))
        if confine.get("workdir"):  # each mounted folder's path (backends/sandbox.py)
            env.update({folder_variable(m["folder"]): str(Path(confine["workdir"]) / m["target"]) for m in launch.mounts})
        env.update(write_config_file(launch, run_dir, confine))
        with open(self.log_dir / f"job-{launch.job_id}.log", "ab") as log_file:
            wrapper = subprocess.Popen([sys.executable, "-I", "-S", str(WRAPPER), str(run_dir)], stdin=subprocess.DEVNULL,
                                       stdout=log_file, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        devices = tuple(int(d) for d in spec.get("devices") or ())
        run = Run(launch.job_id, run_dir, spec.get("deadline"), devices, wrapper, wrapper.pid)
        self._track(run, now)
        return run

    def _confine(self, launch: Launch) -> dict:
        """launch.json's `confine` (account or sandbox, working directory) and `cgroup` (limits) of a new run."""
        out: dict = {}
        if self.isolation is not None:
            out["confine"] = self.isolation.confinement(launch.job_id, launch.owner, self._mount_sources(launch))
        memory = int(launch.memory_mib) * 1024 * 1024
        cgroup = None
        # Every run gets one where GPU access is enforced: a job given no GPU must open none either.
        if self.cgroups is not None and (launch.cpu > 0 or memory > 0 or self.cgroups.enforces_gpus):
            try:
                cgroup = self.cgroups.create(f"{int(launch.job_id)}-{launch.admission or '0'}", launch.cpu, memory,
                                             self._gpu_minors(launch.devices))
            except OSError as exc:
                log.warning("job %s: no cgroup for its limits (%s); memory falls back to RLIMIT_DATA, GPUs to "
                            "CUDA_VISIBLE_DEVICES", launch.job_id, exc)
        if cgroup is not None:
            out["cgroup"] = cgroup
        elif memory > 0 and "confine" in out:
            out["confine"]["rlimit_data"] = memory
        return out

    def _mount_sources(self, launch: Launch) -> tuple[dict, ...]:
        """The job's folders with their directories on this server: a local host's root, else the default local
        host's `<data dir>/folders` (storage/hosts.py), then the folder's id."""
        out = []
        for mount in launch.mounts:
            root = Path(mount["root"]) if mount.get("root") else self.isolation.data_dir / "folders"
            out.append({"folder": mount.get("folder"), "source": str(root / str(int(mount["folder_id"]))),
                        "target": mount["target"], "read_only": bool(mount.get("read_only"))})
        return tuple(out)

    def _gpu_minors(self, devices: tuple[tuple[int, int], ...]) -> tuple[int, ...]:
        """The /dev/nvidiaN minors of the job's GPUs: NVML's, read once per engine, else the index."""
        if not devices:
            return ()
        if self._minors is None:
            self._minors = minor_numbers()
        return tuple(sorted({self._minors.get(int(index), int(index)) for index, _ in devices}))

    def _track(self, run: Run, now: float) -> None:
        self._runs[run.job_id] = run
        self._activity[run.job_id] = Activity(0.0, now, run.devices)

    def reattach(self, launch: Launch, now: float) -> Reattached:
        """After a restart: adopt the run when it still runs, else say how it ended (see jobrun.py)."""
        run = self._runs.get(launch.job_id)
        run_dir = self.run_dir(launch.job_id, launch.admission)
        if run is not None and run.dir == run_dir:
            return Reattached(RUNS, started_at=self._started_at(run_dir), handle=run.handle or None)
        spec = jobrun.read_json(run_dir / "launch.json")
        if spec is None:
            return Reattached(UNKNOWN)
        started_at = self._started_at(run_dir)
        ended = self._ended(run_dir, started_at)
        if ended is not None:
            return ended
        run = Run(launch.job_id, run_dir, spec.get("deadline"), tuple(int(d) for d in spec.get("devices") or ()))
        if run.alive():
            self._track(run, now)
            log.info("job %s: adopted its run (wrapper %s, process group %s)", launch.job_id, run.signal_pid(),
                     run.group())
            return Reattached(RUNS, started_at=started_at or spec.get("launched_at"), handle=run.handle or None)
        ended = self._ended(run_dir, started_at)  # it may have ended while we looked
        if ended is not None:
            return ended
        if started_at is None:
            # Launched but never started (the server stopped right after writing the record): start it now. A wrapper
            # of the old server that is only now starting and this one agree through the lock: one runs it.
            run = self._start(launch, run_dir, now)
            return Reattached(RUNS, started_at=now, handle=run.handle)
        return Reattached(LOST, started_at=started_at, ended_at=now,
                          message="its processes are gone and its exit status is unknown (it ended while the "
                                  "server was down, without a recorded exit code)")

    @staticmethod
    def _started_at(run_dir: Path) -> float | None:
        started = jobrun.read_json(run_dir / "started.json")
        return started.get("at") if started else None

    @staticmethod
    def _ended(run_dir: Path, started_at: float | None) -> Reattached | None:
        record = jobrun.read_json(run_dir / "exit.json")
        if record is None:
            return None
        kind, code, message = ending(record, jobrun.read_json(run_dir / "stop.json"))
        return Reattached(ENDED, exit_code=code, started_at=started_at, ended_at=record.get("at"),
                          message=message if kind == "failed" else None)

    def stop_orphans(self, holding: dict[int, str], now: float) -> list[str]:
        """Stop every live run under the jobs directory that no holding job owns (job id -> admission)."""
        stopped = []
        for spec_path in sorted(self.log_dir.glob("*/*/launch.json")):
            run_dir = spec_path.parent
            try:
                job_id = int(run_dir.parent.name)
            except ValueError:
                continue
            if job_id in holding and (holding[job_id] or "0") == run_dir.name:
                continue
            tracked = self._runs.get(job_id)
            if (tracked is not None and tracked.dir == run_dir) or (run_dir / "exit.json").exists():
                continue
            run = Run(job_id, run_dir, None)
            if run.alive():
                self._stop(run, "stopped as an orphan: no holding job owns this run any more")
                stopped.append(f"job {job_id} (admission {run_dir.name}, process group {run.group()})")
            elif not (run_dir / "started.json").exists():
                jobrun.claim_unstarted(run_dir)  # a wrapper starting only now must not run it
        return stopped

    # -- stopping --------------------------------------------------------------------------------------------------
    def _stop(self, run: Run, reason: str | None = None) -> None:
        """Ask the wrapper to stop the command (SIGTERM, then SIGKILL after the grace period); if it does not end in
        time, or the wrapper is gone, kill the command's group and the wrapper here."""
        if reason is not None:
            jobrun.write_json(run.dir / "stop.json", {"reason": reason})
        pid = run.signal_pid()
        if run.wrapper_alive() and pid is not None:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            if run.wrapper is not None:
                try:
                    run.wrapper.wait(STOP_WAIT_S)
                except subprocess.TimeoutExpired:
                    pass
            deadline = time.monotonic() + STOP_WAIT_S
            while run.wrapper_alive() and time.monotonic() < deadline:
                time.sleep(0.01)
        elif jobrun.group_alive(jobrun.read_json(run.dir / "pid.json")):
            self._kill_group(run.group(), signal.SIGTERM)
            deadline = time.monotonic() + GRACE_S
            while jobrun.group_alive(jobrun.read_json(run.dir / "pid.json")) and time.monotonic() < deadline:
                time.sleep(0.02)
        if run.alive():
            self._kill_group(run.group(), signal.SIGKILL)
            if pid is not None and run.wrapper_alive():
                self._kill_pid(pid)
        if run.wrapper is not None:
            try:
                run.wrapper.wait(1.0)
            except subprocess.TimeoutExpired:
                self._reap.append(run.wrapper)

    @staticmethod
    def _kill_group(pgid: int | None, sig: int) -> None:
        if pgid is not None:
            try:
                os.killpg(pgid, sig)
            except (ProcessLookupError, PermissionError):
                pass

    @staticmethod
    def _kill_pid(pid: int) -> None:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def cancel(self, job_id: int, now: float) -> None:
        run = self._runs.pop(job_id, None)
        self._activity.pop(job_id, None)
        if run is not None:
            self._stop(run)
            return
        # Not tracked (an engine new since a restart): stop whatever run of the job its records show alive.
        for spec_path in (self.log_dir / str(int(job_id))).glob("*/launch.json"):
            orphan = Run(job_id, spec_path.parent, None)
            if not (orphan.dir / "exit.json").exists() and orphan.alive():
                self._stop(orphan)

    # -- observing -------------------------------------------------------------------------------------------------
    def poll(self, now: float) -> list[JobEvent]:
        events, self._pending = self._pending, []
        self._reap = [w for w in self._reap if w.poll() is None]
        for job_id, (at, run) in list(self._unannounced.items()):
            if (run.group() is not None or self._runs.get(job_id) is not run or now - at >= ANNOUNCE_WAIT_S
                    or not run.alive() or (run.dir / "exit.json").exists()):
                del self._unannounced[job_id]
                events.append(JobEvent(job_id, "started", at, handle=run.handle or None))
        for job_id, run in list(self._runs.items()):
            event = self._check(run, now)
            if event is None and run.deadline is not None and now >= run.deadline + STOP_WAIT_S + 1.0:
                self._stop(run)  # the wrapper should have enforced it: this is the backstop
                event = JobEvent(job_id, "failed", now, None, "time limit reached")
            if event is not None:
                del self._runs[job_id]
                self._activity.pop(job_id, None)
                events.append(event)
        return events

    def _check(self, run: Run, now: float) -> JobEvent | None:
        """The run's end event, or None while it runs."""
        if run.wrapper is not None and run.wrapper.poll() is None:
            return None
        for attempt in (0, 1):
            record = jobrun.read_json(run.dir / "exit.json")
            if record is not None:
                kind, code, message = ending(record, jobrun.read_json(run.dir / "stop.json"))
                return JobEvent(run.job_id, kind, record.get("at") or now, code, message)
            if attempt == 0 and run.alive():
                return None  # another wrapper runs it (launched twice), or an adopted one
        if not (run.dir / "started.json").exists():
            return JobEvent(run.job_id, "failed", now, None, "the engine could not start it (see its log)")
        return JobEvent(run.job_id, "failed", now, None, "its processes are gone and its exit status is unknown")

    def idle_since(self, job_id: int, now: float) -> float | None:
        """Since when the job's processes have used no CPU time and its GPUs no utilisation (None: not running here).
        All jobs are sampled once per `now`, so the loop asking about many jobs in one check scans the host once.
        An adopted job counts from its adoption: it is never found idle for longer than it was."""
        if job_id not in self._activity:
            return None
        if self._sampled_at != now:
            self._sample(now)
        activity = self._activity.get(job_id)
        return activity.busy_at if activity is not None else None

    def _sample(self, now: float) -> None:
        self._sampled_at = now
        pgids = {}
        for job_id in self._activity:
            run = self._runs.get(job_id)
            pgid = run.group() if run is not None else None
            if pgid is not None:
                pgids[job_id] = pgid
        cpu = group_cpu_seconds(set(pgids.values()))
        busy_gpus: set[int] = set()
        if any(self._activity[job_id].devices for job_id in pgids):
            busy_gpus = {d.index for d in read_gpus() if d.utilisation > 0}
        for job_id, pgid in pgids.items():
            activity = self._activity[job_id]
            # Any change counts as work: a decrease means a member that had used CPU ended (reaped elsewhere).
            if cpu[pgid] != activity.cpu_s or busy_gpus.intersection(activity.devices):
                activity.busy_at = max(activity.busy_at, now)
            activity.cpu_s = cpu[pgid]

    def next_event_at(self) -> float | None:
        if self._pending:
            return 0.0
        return time.time() + 0.02 if self._unannounced else None

    def close(self) -> None:
        """Stop every run (the server shuts down or the cluster is gone); the record says why, for a later restart."""
        for job_id in list(self._runs):
            run = self._runs.pop(job_id)
            self._stop(run, "stopped because its engine shut down (the server stopped while it ran)")
        self._activity.clear()
        for wrapper in self._reap:
            try:
                wrapper.wait(1.0)
            except subprocess.TimeoutExpired:
                pass
        self._reap.clear()
