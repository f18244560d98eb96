"""The scheduler loop in a process of its own: what `allot server` runs by default (settings.scheduler_mode).

Why a process: in one process the loop and the threads that answer requests share CPython's interpreter lock, so a
burst of submissions and the cycles that admit them take turns on one core, and each slows the other (the Kueue
large-scale scenario's submission lag was the sum of both). In a process of its own the loop computes while the API
ingests, on another core, and a long cycle never holds up a request.

What still has to cross between the two:
- wake-ups: the API's commits that touch jobs or clusters, and the routes' own `state.scheduler_wakeup.set()`, write
  one byte on a socket the loop process reads (`RemoteWakeup`, an Event whose set() also sends);
- requests and answers (`SchedulerProcess`, the object the API finds in `state.extras["scheduler"]`): a queued job's
  reason of now (explain), usage recalculation's rebuild, and the loop's Prometheus metrics for the API's /metrics;
- its life: the server tells it to stop (it ends its cycle and closes its engines, as the thread did); a server killed
  outright takes it along at once (nothing of a shutdown runs, as before); it ignores Ctrl-C (the server stops it in
  order), and the server starts it again if it dies (backing off up to a minute, logged).

The loop process builds its own state from the same settings (sent pickled on the private socket, secrets included,
never on a command line) and the same database; the database remains the only shared truth, as across a restart.
"""

from __future__ import annotations

import logging
import os
import pickle
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from allotment.api.state import AppState
from allotment.scheduler.wake_hook import install_wake_hook, remove_wake_hook

log = logging.getLogger("allotment.scheduler")

RESTART_PAUSE_S = (1.0, 60.0)  # first and longest pause before starting a loop process that died again
REBUILD_ANSWER_S = 600.0  # a rebuild asks every engine about its jobs; each engine call is bounded on its own
METRICS_ANSWER_S = 2.0
STOP_WAIT_S = 30.0


class RemoteWakeup(threading.Event):
    """state.scheduler_wakeup in the API process: setting it wakes the loop in the other process. A full socket buffer
    already holds a wake-up the loop has not read, so a send that would block is dropped."""

    def __init__(self) -> None:
        super().__init__()
        self.sock: socket.socket | None = None

    def set(self) -> None:
        sock = self.sock
        if sock is None:
            return
        try:
            sock.send(b"w")
        except (BlockingIOError, OSError):
            pass


class SchedulerProcess:
    """The API side: starts the loop process, keeps it running and asks it what the API needs (a Service)."""

    def __init__(self, state: AppState) -> None:
        self.state = state
        self.wakeup = RemoteWakeup()
        state.scheduler_wakeup = self.wakeup
        state.extras["scheduler"] = self
        self._rpc: Connection | None = None
        self._rpc_lock = threading.Lock()  # one request and its answer at a time
        self._seq = 0
        self._proc: subprocess.Popen | None = None
        self._ready = False  # the current loop process has run its first cycle
        self._stopping = threading.Event()
        self._hooks = install_wake_hook(state.sessions, self.wakeup)
        registry = state.extras.get("metrics_registry")
        if registry is not None:
            registry.register(_LoopMetrics(self))
        self._spawn()
        self._supervisor = threading.Thread(target=self._supervise, name="allot-scheduler-supervisor", daemon=True)
        self._supervisor.start()

    # -- what the API asks -------------------------------------------------------------------------------------------
    def explain(self, cluster_id: int, job_id: int, wait_s: float = 0.5) -> tuple[str, str] | None:
        """As Scheduler.explain, from the loop process; None when it does not answer in time."""
        return self._ask(("explain", cluster_id, job_id, wait_s), wait_s + 1.0, default=None)

    def rebuild(self, cluster_id: int | None = None) -> tuple[list[str], list]:
        """As Scheduler.rebuild, run in the loop process (it also marks the budget ledger for a full read)."""
        fallback = (["the scheduler process did not answer; it asks the engines again at its next cycle"], [])
        return self._ask(("rebuild", cluster_id), REBUILD_ANSWER_S, default=fallback)

    def ready(self, within_s: float = 0.0) -> bool:
        """Whether the loop process has run its first cycle, waiting up to `within_s` for it. Once it has, the answer
        is kept until the process is started again: /readyz never waits behind a long request such as a rebuild."""
        if self._ready:
            return True
        deadline = time.monotonic() + within_s
        while True:
            proc = self._proc
            if self._ask(("ping",), min(max(within_s, 0.2), 1.0), default=False):
                if proc is self._proc:
                    self._ready = True
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)

    def metrics_text(self) -> str:
        return self._ask(("metrics",), METRICS_ANSWER_S, default="")

    def _ask(self, request: tuple, wait_s: float, default: Any) -> Any:
        if not self._rpc_lock.acquire(timeout=wait_s):
            return default
        try:
            rpc = self._rpc
            if rpc is None:
                return default
            self._seq += 1
            seq = self._seq
            try:
                rpc.send((seq, *request))
                deadline = time.monotonic() + wait_s
                while True:  # answers to earlier requests that timed out arrive first: skip them
                    left = deadline - time.monotonic()
                    if left <= 0 or not rpc.poll(left):
                        return default
                    answer_seq, ok, value = rpc.recv()
                    if answer_seq == seq:
                        break
            except (EOFError, OSError):
                return default
            if not ok:
                log.warning("scheduler process: %s failed: %s", request[0], value)
                return default
            return value
        finally:
            self._rpc_lock.release()

    # -- its life ----------------------------------------------------------------------------------------------------
    def _spawn(self) -> None:
        self._ready = False
        wake_here, wake_there = socket.socketpair()
        rpc_here, rpc_there = socket.socketpair()
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "allotment.scheduler.process", str(wake_there.fileno()),
                 str(rpc_there.fileno()), str(os.getpid())],
                pass_fds=(wake_there.fileno(), rpc_there.fileno()), stdin=subprocess.DEVNULL)
        finally:
            wake_there.close()
            rpc_there.close()
        wake_here.setblocking(False)
        rpc = Connection(rpc_here.detach())
        rpc.send_bytes(pickle.dumps(self.state.settings))
        with self._rpc_lock:
            self._rpc = rpc
        old, self.wakeup.sock = self.wakeup.sock, wake_here
        if old is not None:
            old.close()
        self.wakeup.set()  # look at once: submissions may have come while no loop ran

    def _supervise(self) -> None:
        pause = RESTART_PAUSE_S[0]
        while not self._stopping.is_set():
            proc = self._proc
            assert proc is not None
            started = time.monotonic()
            code = proc.wait()
            server_stopping = self.state.extras.get("stopping")  # SIGTERM to the whole group reached it too
            if self._stopping.is_set() or (server_stopping is not None and server_stopping.is_set()):
                return
            if time.monotonic() - started > RESTART_PAUSE_S[1]:
                pause = RESTART_PAUSE_S[0]  # it ran a good while: this is a new failure, not a loop of them
            log.error("scheduler process exited with code %s; starting it again in %.0f s", code, pause)
            if self._stopping.wait(pause):
                return
            pause = min(pause * 2, RESTART_PAUSE_S[1])
            try:
                self._spawn()
            except Exception:
                log.exception("scheduler process: could not start it again")

    def stop(self) -> None:
        self._stopping.set()
        remove_wake_hook(self.state.sessions, self._hooks)
        with self._rpc_lock:
            rpc, self._rpc = self._rpc, None
        if rpc is not None:
            try:
                rpc.send((0, "stop"))  # the loop process ends its cycle, closes its engines and exits
            except OSError:
                pass
        proc = self._proc
        if proc is not None:
            try:
                proc.wait(timeout=STOP_WAIT_S)
            except subprocess.TimeoutExpired:
                log.error("scheduler process did not stop within %.0f s; killing it", STOP_WAIT_S)
                proc.kill()
                proc.wait()
        if rpc is not None:
            rpc.close()
        sock, self.wakeup.sock = self.wakeup.sock, None
        if sock is not None:
            sock.close()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None


class _LoopMetrics:
    """The loop process's Prometheus metrics, collected through its socket when /metrics is read."""

    def __init__(self, owner: SchedulerProcess) -> None:
        self.owner = owner

    def describe(self) -> list:
        return []  # registering must not ask the loop process (it may not be running yet)

    def collect(self):
        text = self.owner.metrics_text()
        yield from text_string_to_metric_families(text) if text else ()


# -- the loop process ------------------------------------------------------------------------------------------------
def _die_with_parent() -> None:
    """A server killed outright (SIGKILL, the out-of-memory killer) takes its loop with it at once, as when the loop was
    its thread: what a crash leaves is then the same in both modes, and a server started again never finds the old
    loop still writing. Linux's PR_SET_PDEATHSIG; elsewhere the loop exits when its socket closes."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _serve(wake_fd: int, rpc_fd: int, server_pid: int) -> None:
    """The loop process. It stops in order when the server says "stop" or sends SIGTERM. A socket that closes without
    a "stop" means the server died where PR_SET_PDEATHSIG does not exist: it exits at once, as a crash would (its
    engines' runs go on; the next server's loop finds them again)."""
    _die_with_parent()
    if os.getppid() != server_pid:
        os._exit(1)  # the server died before we could ask to die with it

    from prometheus_client import CollectorRegistry, generate_latest

    from allotment.api.app import build_state
    from allotment.scheduler.gcpause import tune_for_server
    from allotment.scheduler.loop import start_scheduler

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the server stops us in order
    rpc = Connection(rpc_fd)
    try:
        settings = pickle.loads(rpc.recv_bytes())
    except (EOFError, OSError):
        os._exit(1)
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    state = build_state(settings)
    registry = CollectorRegistry()
    state.extras["metrics_registry"] = registry
    scheduler = start_scheduler(state)
    tune_for_server()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    wake = socket.socket(fileno=wake_fd)

    def read_wakeups() -> None:
        while not done.is_set():
            try:
                readable, _, _ = select.select([wake], [], [], 0.5)
                if readable and not wake.recv(4096):
                    break
            except OSError:
                break
            if readable:
                state.scheduler_wakeup.set()
        if not done.is_set():
            os._exit(1)  # the server is gone without a word: end as it did

    threading.Thread(target=read_wakeups, name="allot-scheduler-wakeups", daemon=True).start()
    try:
        while not done.is_set():
            if not rpc.poll(0.5):
                continue
            seq, kind, *args = rpc.recv()
            if kind == "stop":
                break
            try:
                if kind == "ping":
                    value: Any = scheduler.ready()
                elif kind == "explain":
                    value = scheduler.explain(*args)
                elif kind == "rebuild":
                    scheduler.budgets.ledger.stale = True  # recalculation rewrote the records: read them all again
                    value = scheduler.rebuild(*args)
                elif kind == "metrics":
                    value = generate_latest(registry).decode()
                else:
                    raise ValueError(f"unknown request {kind!r}")
            except Exception as exc:
                log.exception("scheduler process: %s failed", kind)
                rpc.send((seq, False, f"{type(exc).__name__}: {exc}"))
            else:
                rpc.send((seq, True, value))
    except (EOFError, OSError):
        os._exit(1)  # as above
    done.set()
    scheduler.stop()
    state.engine.dispose()


if __name__ == "__main__":
    _serve(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))
    logging.shutdown()
    os._exit(0)  # daemon threads (engines' watchers) must not hold the exit
