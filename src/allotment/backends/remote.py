"""What the remote engines (Slurm, Ray) share: telling an outage apart, never letting a hung engine hold up the
scheduler, and keeping their run records private."""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

# While an engine is down, calls fail at once for this long instead of each waiting on the engine's own timeouts: the
# scheduler calls engines from its loop, so a dead engine must cost little per cycle.
OUTAGE_BACKOFF_S = 3.0
# How long a caller waits for an engine's answer before the engine counts as unreachable. The engines' own timeouts
# (slurmrestd requests 10 s, Slurm's commands 30 s, Ray's requests 10 s) are longer: a hung engine would otherwise
# hold the scheduler loop, and every other cluster's admissions with it, for that long at every retry.
ANSWER_S = 5.0
# During an outage, a call after the back-off is a probe: the caller waits this long at most; a probe that answers
# later ends the outage by itself (from its worker thread), so the next call goes through normally.
PROBE_S = 0.25


class OutageGuard:
    """Calls to one remote engine, tracking its outage: `outage` is (since when, the engine's last error) while calls
    fail with `unavailable`, None once one succeeds; the outage is logged once when it starts and once when it ends.

    Calls run one at a time on a worker thread of the guard's own, and the caller waits at most `answer_s` (`probe_s`
    during an outage). A call that has not answered by then goes on in the background: the caller gets `unavailable`
    (the engine "did not answer within ..."), and every call while it still runs fails at once without reaching the
    engine. Its late outcome still counts: an answer ends the outage, an unavailability error refreshes it; its result
    is dropped. That is safe because the engines change their own state only after a call returns on the caller's
    thread, and what a late call did on the engine is found again the way a restart finds it (a launch that met an
    outage is reattached before it is launched again; a stop that met one is sent again)."""

    def __init__(self, engine: str, unavailable: type[Exception], log: logging.Logger,
                 backoff_s: float = OUTAGE_BACKOFF_S, answer_s: float = ANSWER_S, probe_s: float = PROBE_S) -> None:
        self.engine = engine
        self.unavailable = unavailable
        self.log = log
        self.backoff_s = backoff_s
        self.answer_s = answer_s
        self.probe_s = min(probe_s, answer_s)
        self.outage: tuple[float, str] | None = None
        self._retry_at = 0.0
        self._lock = threading.Lock()  # outage and _busy change on the caller's thread and on the worker's
        self._busy: float | None = None  # monotonic start of a call that has not answered in time, while it runs
        self._calls: queue.SimpleQueue[tuple[Callable[..., Any], tuple, Future] | None] = queue.SimpleQueue()
        self._worker: threading.Thread | None = None

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        with self._lock:
            now = time.monotonic()
            if self.outage is not None and now < self._retry_at:
                raise self.unavailable(self.outage[1])
            if self._busy is not None:
                error = f"{self.engine} has not answered for {now - self._busy:.0f} s"
                self._failed(error)
                raise self.unavailable(error)
            wait = self.answer_s if self.outage is None else self.probe_s
        future: Future = Future()
        self._start_worker()
        self._calls.put((fn, args, future))
        try:
            result = future.result(timeout=wait)
        except FutureTimeout:
            error = f"{self.engine} did not answer within {wait:g} s"
            with self._lock:
                self._busy = time.monotonic() - wait
                self._failed(error)
            future.add_done_callback(self._late)
            raise self.unavailable(error) from None
        except self.unavailable as exc:
            with self._lock:
                self._failed(str(exc))
            raise
        with self._lock:
            self._answered()
        return result

    def close(self) -> None:
        """Stop the worker thread (a call still hanging ends with its own timeout; the thread is a daemon)."""
        if self._worker is not None:
            self._calls.put(None)  # to that worker's own queue: a new one gets a new queue
            self._calls = queue.SimpleQueue()
            self._worker = None

    # -- inside the lock -------------------------------------------------------------------------------------------
    def _failed(self, error: str) -> None:
        self._retry_at = time.monotonic() + self.backoff_s
        if self.outage is None:
            self.log.warning("%s is unreachable: %s", self.engine, error)
        self.outage = (self.outage or (time.time(), ""))[0], error

    def _answered(self) -> None:
        if self.outage is not None:
            self.log.info("%s answers again (unreachable since %s)", self.engine, time.ctime(self.outage[0]))
            self.outage = None

    # -- the worker ------------------------------------------------------------------------------------------------
    def _late(self, future: Future) -> None:
        """The outcome of a call its caller stopped waiting for (runs on the worker thread)."""
        exc = future.exception()
        with self._lock:
            self._busy = None
            if isinstance(exc, self.unavailable):
                self._failed(str(exc))
            else:  # any answer, an error included, shows the engine is there again
                self._answered()

    def _start_worker(self) -> None:
        if self._worker is None or not self._worker.is_alive():
            self._worker = threading.Thread(target=self._serve, args=(self._calls,),
                                            name=f"allot-engine-{self.engine.lower()}", daemon=True)
            self._worker.start()

    @staticmethod
    def _serve(calls: queue.SimpleQueue) -> None:
        while True:
            item = calls.get()
            if item is None:
                return
            fn, args, future = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn(*args))
            except BaseException as exc:  # noqa: BLE001 - handed to the caller, who decides what it means
                future.set_exception(exc)


def private_state_dir(path: Path, engine: str, error: type[Exception]) -> None:
    """Create the engine's state directory and insist that only the server's user may write it: the log directory
    may be writable by the jobs' users, the run records must not be (a job could fake a run)."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    st = path.stat()
    if st.st_uid != os.getuid() or st.st_mode & 0o022:
        raise error(f"the {engine} engine's state directory {path} must belong to the server's user and be writable "
                    f"by it alone")
