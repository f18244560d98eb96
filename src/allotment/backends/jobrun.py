"""One run of a local job: its durable record and the small wrapper process that runs its command.

The local engine gives every run (a job id and its admission) a directory, `<jobs dir>/<job id>/<admission>/`:

    launch.json   written by the engine before it starts the wrapper: command, deadline (epoch s), devices
    lock          held (flock) by the wrapper for its whole life: "the run is alive" = "the lock is held"
    started.json  written by the wrapper, inside the lock, BEFORE it starts the command: the command never runs twice
    pid.json      the command's pid (= its process group, a session of its own) and start time, once it runs
    exit.json     written when the command ended: exit code (negative: killed by that signal), when, and why
                  when the wrapper stopped it (time limit, a stop request)
    stop.json     optional, written by the engine before it stops a run for a reason worth keeping (shutdown)

Because the lock is taken and `started.json` checked inside it, starting a second wrapper for the same run is always
safe: it sees the run already started (or the lock held) and exits without doing anything. So the engine may launch
again whatever it is not sure about, and a crash of the server anywhere leaves a record that says what happened:
no record or no `started.json`: never ran; lock held: runs; `exit.json`: ended with that code, even while the
server was down.

The wrapper enforces the time limit itself (so it holds while the server is down), stops the command's whole
process group on SIGTERM (the engine's cancel) with a grace period, and after the command ends kills what is left
of its group, so a job's processes end with it. It runs as `python -I -S jobrun.py DIR`: standard library only,
nothing from the environment changes the interpreter; the command gets the wrapper's environment unchanged (the
engine gives the wrapper the job's clean environment, backends/sandbox.py).

Confinement (launch.json's `confine` and `cgroup`, decided by the engine, backends/sandbox.py and cgroups.py): the
wrapper stays as the server's user (root where jobs get accounts of their own), so it can always take the lock and
write the records; only the command's process, between fork and exec, joins the run's cgroups, gets its rlimits
and drops to the job's uid, gid and groups (or is started under bubblewrap), in its working directory with umask
077. After the command ends, the wrapper notes whether the memory controller killed it, ends what is left in its
cgroup, removes it, and hands a dynamic uid's working directory back to root.
"""

from __future__ import annotations

import fcntl
import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

GRACE_S = 5.0  # from SIGTERM to SIGKILL when a run is stopped
LOCK_TRIES = 100  # x 20 ms: a probe of the engine holds the lock for microseconds; a real holder holds it for good
TIME_LIMIT = "time_limit"
STOPPED = "stopped"
MEMORY_LIMIT = "memory_limit"
START_FAILED = "start_failed"


def write_json(path: Path, data: dict) -> None:
    """Atomically: a reader sees the whole file or none (write a temporary file, rename). No fsync: this guards
    against the server's crash, which leaves the page cache intact; a crash of the host ends the jobs too."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as f:
        json.dump(data, f)
    os.replace(tmp, path)


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (/proc/PID/stat field 22): with the pid it names one
    process, whatever pid reuse happens later. None when it is gone (a zombie not reaped yet is gone too)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    try:
        fields = stat.rsplit(")", 1)[1].split()
        return None if fields[0] in ("Z", "X") else int(fields[19])
    except (IndexError, ValueError):
        return None


def lock_held(run_dir: Path) -> bool:
    """Whether a wrapper holds the run's lock (tried without waiting and released at once)."""
    try:
        fd = os.open(run_dir / "lock", os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def claim_unstarted(run_dir: Path) -> bool:
    """Make sure a run that never started never will: inside the lock, mark it started and ended without a command
    (a wrapper starting later sees it started and exits). False when a wrapper holds the lock or it already started."""
    fd = os.open(run_dir / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        if (run_dir / "started.json").exists():
            return False
        write_json(run_dir / "started.json", {"wrapper_pid": None, "at": time.time()})
        write_json(run_dir / "exit.json", {"code": None, "at": time.time(), "reason": STOPPED})
        return True
    finally:
        os.close(fd)


def group_alive(record: dict | None) -> bool:
    """Whether the command's process group (pid.json) still has its leader, the very process recorded."""
    if not record or "pid" not in record:
        return False
    ticks = start_ticks(int(record["pid"]))
    return ticks is not None and ticks == record.get("ticks")


def oom_kills(events: str | None) -> int:
    """The memory controller's oom_kill count (v2 memory.events, v1 memory.oom_control), 0 when unknown."""
    if not events:
        return 0
    try:
        for line in Path(events).read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
    except (OSError, ValueError):
        pass
    return 0


def end_cgroup(dirs: list[str]) -> None:
    """Kill whatever is left in the run's cgroups (processes that left its process group), then remove them."""
    for d in dirs:
        path = Path(d)
        if (path / "cgroup.kill").exists():
            try:
                (path / "cgroup.kill").write_text("1")
            except OSError:
                pass
    for _ in range(100):
        left = []
        for d in dirs:
            try:
                left += [int(p) for p in (Path(d) / "cgroup.procs").read_text().split()]
            except (OSError, ValueError):
                pass
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        if not left:
            break
        time.sleep(0.02)
    for d in dirs:
        for _ in range(50):
            try:
                os.rmdir(d)
                break
            except FileNotFoundError:
                break
            except OSError:  # EBUSY while the killed processes are being reaped
                time.sleep(0.02)


# Storage folders mounted into a job (account mode; under bubblewrap, bwrap's own --bind does it): the wrapper, as
# root, makes the mount points inside the job's working directory (refusing a symbolic link there, which a job's
# earlier run could have left to redirect a mount), and the command's process, between fork and exec, enters a mount
# namespace of its own, bind-mounts each folder (nosuid, nodev; read-only where the permission says so) and only
# then drops to the job's uid, which cannot undo a mount.
CLONE_NEWNS = 0x00020000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 32, 4096, 16384, 1 << 18


def prepare_mount_points(workdir: str, mounts: list[dict], uid: int | None, gid: int | None) -> None:
    base = Path(workdir)
    for mount in mounts:
        target = Path(mount["target"])
        current = base
        for part in target.relative_to(base).parts:
            current = current / part
            if current.is_symlink() or (current.exists() and not current.is_dir()):
                raise OSError(f"{current} is not a directory (a mount point must be one)")
            if not current.exists():
                current.mkdir(mode=0o700)
                if uid is not None:
                    os.chown(current, uid, gid if gid is not None else uid, follow_symlinks=False)


def mount_folders(mounts: list[dict]) -> None:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)

    def check(rc: int, what: str) -> None:
        if rc != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"{what}: {os.strerror(err)}")

    check(libc.unshare(CLONE_NEWNS), "unshare")
    check(libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "make / private")
    for mount in mounts:
        source, target = mount["source"].encode(), mount["target"].encode()
        check(libc.mount(source, target, None, MS_BIND, None), f"bind {mount['source']}")
        flags = MS_BIND | MS_REMOUNT | MS_NOSUID | MS_NODEV | (MS_RDONLY if mount.get("read_only") else 0)
        check(libc.mount(b"none", target, None, flags, None), f"remount {mount['target']}")


def retire_workdir(path: str) -> None:
    """Hand a finished run's working directory back to root: its uid may be given to another job later."""
    try:
        os.chown(path, 0, 0, follow_symlinks=False)
        os.chmod(path, 0o700, follow_symlinks=False)
    except (OSError, NotImplementedError) as exc:
        # The run is over and its result stands; say so in the job's log so an operator can tidy the directory (the
        # retention sweep removes it later either way).
        print(f"allot: could not hand {path} back to root: {exc}", file=sys.stderr, flush=True)


class Wrapper:
    def __init__(self, run_dir: Path) -> None:
        self.dir = run_dir
        self.child: subprocess.Popen | None = None
        self.stop_reason: str | None = None
        self.terminating = False  # SIGTERM sent to the command's group; the next SIGALRM sends SIGKILL
        self.grace_ends: float | None = None
        self.confine: dict = {}
        self.cgroup: dict = {}

    def _on_signal(self, signum: int, _frame) -> None:
        """SIGTERM/INT/HUP (the engine's stop) and SIGALRM (the deadline, then the end of the grace period)."""
        if self.terminating:
            if signum == signal.SIGALRM:
                self._signal_group(signal.SIGKILL)
            return
        if self.stop_reason is None:
            self.stop_reason = TIME_LIMIT if signum == signal.SIGALRM else STOPPED
        if self.child is not None:
            self.terminating = True
            self.grace_ends = time.monotonic() + GRACE_S
            self._signal_group(signal.SIGTERM)
            signal.setitimer(signal.ITIMER_REAL, GRACE_S)

    def _signal_group(self, sig: int) -> None:
        if self.child is not None:
            try:
                os.killpg(self.child.pid, sig)
            except (ProcessLookupError, PermissionError):
                pass

    def _enter(self) -> None:
        """In the command's process, after fork, before exec (as the wrapper's user): cgroups, rlimits, account."""
        pid = str(os.getpid())
        for d in self.cgroup.get("dirs") or ():
            with open(os.path.join(d, "cgroup.procs"), "w") as f:
                f.write(pid)
        if self.confine.get("mounts") and "uid" in self.confine:
            mount_folders(self.confine["mounts"])
        if self.confine.get("rlimit_data"):
            limit = int(self.confine["rlimit_data"])
            resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
        if "uid" in self.confine:
            os.setgroups([int(g) for g in self.confine.get("groups") or ()])
            os.setgid(int(self.confine["gid"]))
            os.setuid(int(self.confine["uid"]))

    def _start_command(self, command: str) -> subprocess.Popen | None:
        argv = [*(self.confine.get("argv") or ()), "/bin/sh", "-c", command]
        try:
            if self.confine.get("mounts") and "uid" in self.confine:
                prepare_mount_points(self.confine["workdir"], self.confine["mounts"], self.confine.get("uid"),
                                     self.confine.get("gid"))
            return subprocess.Popen(argv, start_new_session=True, cwd=self.confine.get("workdir"),
                                    umask=0o077 if self.confine else -1,
                                    # No threads here. Popen's user= would drop privileges before preexec_fn,
                                    # and joining the cgroup needs them: _enter does both, in order.
                                    preexec_fn=self._enter if self.confine or self.cgroup else None)  # noqa: PLW1509
        except (OSError, subprocess.SubprocessError) as exc:
            print(f"allot: the job's command could not be started: {exc}", file=sys.stderr, flush=True)
            write_json(self.dir / "exit.json", {"code": None, "at": time.time(), "reason": START_FAILED,
                                                "error": str(exc)[:500]})
            return None

    def _wait_for_group(self) -> None:
        """After a stop, the command's leader may end before its group (bubblewrap ends on SIGTERM while the
        command inside still has its grace period): wait for the group until the grace period is over."""
        while self.grace_ends is not None and time.monotonic() < self.grace_ends:
            try:
                os.killpg(self.child.pid, 0)
            except (ProcessLookupError, PermissionError):
                return
            time.sleep(0.05)

    def _take_lock(self) -> int | None:
        fd = os.open(self.dir / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        for _ in range(LOCK_TRIES):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
            except BlockingIOError:
                time.sleep(0.02)
        os.close(fd)
        return None  # another wrapper runs it

    def run(self) -> int:
        spec = read_json(self.dir / "launch.json")
        if spec is None:
            print(f"allot: no launch record in {self.dir}", file=sys.stderr)
            return 2
        # Handlers (not SIG_IGN), so the command starts with the default dispositions.
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGALRM):
            signal.signal(sig, self._on_signal)
        lock = self._take_lock()  # kept open (and locked) until this process exits
        if lock is None or (self.dir / "started.json").exists():
            return 0  # someone already ran (or runs) this command: never a second time
        write_json(self.dir / "started.json", {"wrapper_pid": os.getpid(), "at": time.time()})
        self.confine, self.cgroup = spec.get("confine") or {}, spec.get("cgroup") or {}
        if self.stop_reason is not None:  # stopped before the command started
            self._cleanup()
            write_json(self.dir / "exit.json", {"code": None, "at": time.time(), "reason": self.stop_reason})
            return 0
        self.child = self._start_command(spec["command"])
        if self.child is None:
            self._cleanup()
            return 0
        write_json(self.dir / "pid.json", {"pid": self.child.pid, "ticks": start_ticks(self.child.pid)})
        deadline = spec.get("deadline")
        if self.stop_reason is not None:  # the signal came while the command was being started
            self.stop_reason = None
            self._on_signal(signal.SIGTERM, None)
        elif deadline is not None:  # SIGALRM at the deadline: the time limit holds while no server runs
            signal.setitimer(signal.ITIMER_REAL, max(deadline - time.time(), 0.001))
        code = self.child.wait()  # a blocking waitpid: signals run their handler and the wait goes on
        self._wait_for_group()
        signal.setitimer(signal.ITIMER_REAL, 0)
        self._signal_group(signal.SIGKILL)  # what the command left behind in its group ends with it
        reason = self.stop_reason
        if reason is None and oom_kills(self.cgroup.get("oom_events")) > 0:
            reason = MEMORY_LIMIT
        self._cleanup()
        write_json(self.dir / "exit.json", {"code": code, "at": time.time(), "reason": reason})
        return 0

    def _cleanup(self) -> None:
        end_cgroup(self.cgroup.get("dirs") or [])
        if self.confine.get("retire_workdir") and self.confine.get("workdir"):
            retire_workdir(self.confine["workdir"])


if __name__ == "__main__":
    sys.exit(Wrapper(Path(sys.argv[1])).run())
