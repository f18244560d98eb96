"""Throttles for sign-in: per-source rate limits, the bound on concurrent argon2 work, and the audit of failed
credentials. In memory and per process (a restart forgets them, which only ever lets a client try again sooner),
each bounded in size so that a flood of sources cannot grow them without limit.

"Source" is the client address as uvicorn reports it (behind a reverse proxy, run uvicorn with the proxy's address
in forwarded_allow_ips so that this is the real client, not the proxy).
"""

from __future__ import annotations

import asyncio
import math
import os
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from allotment.api.state import AppState
from allotment.audit import service as audit
from allotment.db import utcnow
from allotment.errors import TooManyRequests

MAX_SOURCES = 10_000
# One audit entry per source and window sums up that source's failed credentials (a flood is one row, not thousands).
CREDENTIAL_AUDIT_WINDOW_S = 60.0
# Refused requests update their window's entry at most this often (they are many and each costs nothing else).
REFUSED_WRITE_INTERVAL_S = 1.0
MAX_NAMED_KEYS = 5


def source_key(source: str | None) -> str:
    return source or "unknown"


def default_password_checks() -> int:
    """One less than the CPU count (at least 1): a flood of sign-ins leaves a core to everything else."""
    return max(1, (os.cpu_count() or 1) - 1)


class RateLimiter:
    """A token bucket per key: `burst` attempts at once, refilled at `per_minute`. Least recently used keys are
    forgotten past `max_keys` (forgetting a key only resets its bucket to full)."""

    def __init__(self, burst: int, per_minute: float, max_keys: int = MAX_SOURCES,
                 clock: Callable[[], float] = time.monotonic):
        self.burst = burst
        self.per_second = per_minute / 60.0
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, list[float]] = OrderedDict()  # key -> [tokens, when counted]
        self._lock = threading.Lock()  # used from the event loop and from worker threads

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: str) -> float:
        """Take one attempt: 0.0 if granted, else the seconds until one is available (nothing is taken)."""
        with self._lock:
            now = self._clock()
            bucket = self._buckets.pop(key, None)
            tokens = self.burst if bucket is None else min(self.burst, bucket[0] + (now - bucket[1]) * self.per_second)
            wait = 0.0
            if tokens >= 1:
                tokens -= 1
            else:
                wait = (1 - tokens) / self.per_second
            self._buckets[key] = [tokens, now]
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
            return wait

    def give_back(self, key: str) -> None:
        """Return an attempt that turned out well (a successful sign-in is not held against its source)."""
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is not None:
                bucket[0] = min(self.burst, bucket[0] + 1)


def retry_after(wait_s: float) -> int:
    return max(1, math.ceil(wait_s))


class PasswordGate:
    """At most `concurrency` argon2 verifications at a time. A sign-in waits in the event loop (holding no worker
    thread) for at most `wait_s`, then is refused with 429 instead of queuing behind a flood."""

    def __init__(self, concurrency: int, wait_s: float):
        self.concurrency = concurrency
        self.wait_s = wait_s
        self._semaphore: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _current(self) -> asyncio.Semaphore:
        # A server runs one event loop; a test client may start another one later, which gets a fresh semaphore.
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._semaphore, self._loop = asyncio.Semaphore(self.concurrency), loop
        return self._semaphore

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        semaphore = self._current()
        if semaphore.locked():
            try:
                await asyncio.wait_for(semaphore.acquire(), self.wait_s)
            except TimeoutError:
                raise TooManyRequests("the server is busy checking other sign-ins; try again in a moment",
                                      "login_busy", 1) from None
        else:
            await semaphore.acquire()  # free: taken at once, without yielding to the loop
        try:
            yield
        finally:
            semaphore.release()


# --- failed credentials ---------------------------------------------------------------------------------------------

@dataclass
class _Window:
    """One source's failed credentials in one audit window, and the audit entry that sums them up."""

    started: float
    started_at: datetime
    failures: int = 0
    refused: int = 0
    access_keys: list[str] = field(default_factory=list)
    event_id: int | None = None
    written: float = 0.0

    def changes(self, last_at: datetime) -> dict[str, Any]:
        return {"before": None, "after": {
            "failures": self.failures, "refused": self.refused, "access_keys": list(self.access_keys),
            "first_at": self.started_at.isoformat(), "last_at": last_at.isoformat(),
            "window_s": int(CREDENTIAL_AUDIT_WINDOW_S)}}


class CredentialFailures:
    """Failed credential (access key + secret) authentications, per source: throttled with a RateLimiter and
    audited as one `auth.credential_failed` entry per source and window, updated as the count grows.

    Only access keys that exist are named (up to MAX_NAMED_KEYS): an unknown "access key" may be anything a client
    sent, a pasted secret included. Secrets are never recorded."""

    def __init__(self, state: AppState):
        s = state.settings
        self.state = state
        self.limiter = RateLimiter(s.credential_failures_burst, s.credential_failures_per_minute)
        self._windows: OrderedDict[str, _Window] = OrderedDict()
        self._lock = threading.Lock()  # serialises the window's bookkeeping and its audit writes

    def admit(self, source: str | None) -> None:
        """Before checking a credential that is not cached: refuse (429) a source that failed too often."""
        key = source_key(source)
        wait = self.limiter.take(key)
        if wait:
            self._note(key, refused=True)
            raise TooManyRequests(f"too many failed credentials from {key}; try again in {retry_after(wait)} s",
                                  "credential_rate_limited", retry_after(wait))

    def succeeded(self, source: str | None) -> None:
        self.limiter.give_back(source_key(source))

    def failed(self, source: str | None, known_access_key: str | None) -> None:
        self._note(source_key(source), refused=False, access_key=known_access_key)

    def _window(self, key: str, now: float) -> _Window:
        window = self._windows.pop(key, None)
        if window is None or now - window.started >= CREDENTIAL_AUDIT_WINDOW_S:
            window = _Window(started=now, started_at=utcnow())
        self._windows[key] = window
        while len(self._windows) > MAX_SOURCES:
            self._windows.popitem(last=False)
        return window

    def _note(self, key: str, refused: bool, access_key: str | None = None) -> None:
        with self._lock:
            now = time.monotonic()
            window = self._window(key, now)
            if refused:
                window.refused += 1
                if window.event_id is not None and now - window.written < REFUSED_WRITE_INTERVAL_S:
                    return
            else:
                window.failures += 1
                if access_key and access_key not in window.access_keys and len(window.access_keys) < MAX_NAMED_KEYS:
                    window.access_keys.append(access_key)
            self._write(key, window, now)

    def _write(self, key: str, window: _Window, now: float) -> None:
        changes = window.changes(utcnow())
        with self.state.sessions() as session:
            if window.event_id is None:
                event = audit.record(session, None, "auth.credential_failed", "source", key, changes=changes,
                                     source=key)
                window.event_id = event.id
            else:
                audit.revise(session, window.event_id, changes)
            session.commit()
        window.written = now


# --- per app ------------------------------------------------------------------------------------------------------

def _per_app(state: AppState, name: str, make: Callable[[], Any]) -> Any:
    found = state.extras.get(name)
    if found is None:
        found = state.extras.setdefault(name, make())  # setdefault: two threads racing keep the same one
    return found


def login_limiter(state: AppState) -> RateLimiter:
    s = state.settings
    return _per_app(state, "login_limiter", lambda: RateLimiter(s.login_failures_burst, s.login_failures_per_minute))


def password_gate(state: AppState) -> PasswordGate:
    s = state.settings
    return _per_app(state, "password_gate", lambda: PasswordGate(
        s.password_checks_concurrency or default_password_checks(), s.password_check_wait_s))


def credential_failures(state: AppState) -> CredentialFailures:
    return _per_app(state, "credential_failures", lambda: CredentialFailures(state))


def password_confirmations(state: AppState) -> RateLimiter:
    """Wrong current passwords given by signed-in users (to change a password), per account: the lockout's budget
    (`login_max_failures` per `login_lock_minutes`), refilled steadily. Throttled rather than locked: see
    service.confirm_password."""
    s = state.settings
    return _per_app(state, "password_confirmations", lambda: RateLimiter(
        max(1, s.login_max_failures), max(1, s.login_max_failures) / max(1, s.login_lock_minutes)))
