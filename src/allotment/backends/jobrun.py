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
nothing from the environment changes the interpreter; the command gets the wrapper's environment unchanged.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

GRACE_S = 5.0  # from SIGTERM to SIGKILL when a run is stopped
LOCK_TRIES = 100  # x 20 ms: a probe of the engine holds the lock for microseconds; a real holder holds it for good
TIME_LIMIT = "time_limit"
STOPPED = "stopped"


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


class Wrapper:
    def __init__(self, run_dir: Path) -> None:
        self.dir = run_dir
        self.child: subprocess.Popen | None = None
        self.stop_reason: str | None = None
        self.terminating = False  # SIGTERM sent to the command's group; the next SIGALRM sends SIGKILL

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
            self._signal_group(signal.SIGTERM)
            signal.setitimer(signal.ITIMER_REAL, GRACE_S)

    def _signal_group(self, sig: int) -> None:
        if self.child is not None:
            try:
                os.killpg(self.child.pid, sig)
            except (ProcessLookupError, PermissionError):
                pass

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
        if self.stop_reason is not None:  # stopped before the command started
            write_json(self.dir / "exit.json", {"code": None, "at": time.time(), "reason": self.stop_reason})
            return 0
        self.child = subprocess.Popen(["/bin/sh", "-c", spec["command"]], start_new_session=True)
        write_json(self.dir / "pid.json", {"pid": self.child.pid, "ticks": start_ticks(self.child.pid)})
        deadline = spec.get("deadline")
        if self.stop_reason is not None:  # the signal came while the command was being started
            self.stop_reason = None
            self._on_signal(signal.SIGTERM, None)
        elif deadline is not None:  # SIGALRM at the deadline: the time limit holds while no server runs
            signal.setitimer(signal.ITIMER_REAL, max(deadline - time.time(), 0.001))
        code = self.child.wait()  # a blocking waitpid: signals run their handler and the wait goes on
        signal.setitimer(signal.ITIMER_REAL, 0)
        self._signal_group(signal.SIGKILL)  # what the command left behind in its group ends with it
        write_json(self.dir / "exit.json", {"code": code, "at": time.time(), "reason": self.stop_reason})
        return 0


if __name__ == "__main__":
    sys.exit(Wrapper(Path(sys.argv[1])).run())
