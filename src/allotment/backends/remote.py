"""What the remote engines (Slurm, Ray) share: telling an outage apart and keeping their run records private."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

# While an engine is down, calls fail at once for this long instead of each waiting on the engine's own timeouts: the
# scheduler calls engines from its loop, so a dead engine must cost little per cycle.
OUTAGE_BACKOFF_S = 3.0


class OutageGuard:
    """Calls to one remote engine, tracking its outage: `outage` is (since when, the engine's last error) while calls
    fail with `unavailable`, None once one succeeds; the outage is logged once when it starts and once when it ends."""

    def __init__(self, engine: str, unavailable: type[Exception], log: logging.Logger,
                 backoff_s: float = OUTAGE_BACKOFF_S) -> None:
        self.engine = engine
        self.unavailable = unavailable
        self.log = log
        self.backoff_s = backoff_s
        self.outage: tuple[float, str] | None = None
        self._retry_at = 0.0

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        if self.outage is not None and time.monotonic() < self._retry_at:
            raise self.unavailable(self.outage[1])
        try:
            result = fn(*args)
        except self.unavailable as exc:
            self._retry_at = time.monotonic() + self.backoff_s
            if self.outage is None:
                self.log.warning("%s is unreachable: %s", self.engine, exc)
            self.outage = (self.outage or (time.time(), ""))[0], str(exc)
            raise
        if self.outage is not None:
            self.log.info("%s answers again (unreachable since %s)", self.engine, time.ctime(self.outage[0]))
            self.outage = None
        return result


def private_state_dir(path: Path, engine: str, error: type[Exception]) -> None:
    """Create the engine's state directory and insist that only the server's user may write it: the log directory
    may be writable by the jobs' users, the run records must not be (a job could fake a run)."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    st = path.stat()
    if st.st_uid != os.getuid() or st.st_mode & 0o022:
        raise error(f"the {engine} engine's state directory {path} must belong to the server's user and be writable "
                    f"by it alone")
