"""What one running app holds: settings, engine, session factory, the auth cache and the scheduler wake-up."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.orm import Session, sessionmaker

from allotment.settings import Settings


class AuthCache:
    """Resolved principals by token digest, so a request costs no database round trip once warm.

    Any committed change to identity data (users, groups, roles, credentials, sessions) clears it, because the
    services mark the session with `mark_identity_changed`; entries also expire after `ttl` seconds so that changes
    made by another process are seen soon.
    """

    def __init__(self, ttl: float = 10.0, max_entries: int = 10_000):
        self.ttl = ttl
        self.max_entries = max_entries
        self._data: dict[str, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> Any | None:
        hit = self._data.get(key)
        if hit is None or hit[0] < time.monotonic():
            return None
        return hit[1]

    def put(self, key: str, value: Any) -> None:
        with self._lock:
            if len(self._data) >= self.max_entries:
                self._data.clear()
            self._data[key] = (time.monotonic() + self.ttl, value)

    def discard(self, key: str) -> None:
        with self._lock:
            self._data.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


def mark_identity_changed(session: Session) -> None:
    session.info["identity_changed"] = True


@dataclass
class AppState:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    secret_key: str
    auth_cache: AuthCache = field(default_factory=AuthCache)
    scheduler_wakeup: threading.Event = field(default_factory=threading.Event)
    extras: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        cache = self.auth_cache

        @event.listens_for(self.sessions, "after_commit")
        def _clear_auth_cache(session: Session) -> None:
            if session.info.pop("identity_changed", False):
                cache.clear()

        @event.listens_for(self.sessions, "after_rollback")
        def _forget_mark(session: Session) -> None:
            session.info.pop("identity_changed", None)
