"""The PostgreSQL pool checks a connection with a round trip only after it sat idle (db._ping_after_idle): one the
server dropped meanwhile is replaced without the caller seeing an error, one handed back moments ago is handed out
again without a round trip."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from allotment import db


@pytest.fixture
def engine(settings, backend):
    if backend != "postgres":
        pytest.skip("the ping after idle is PostgreSQL's pool")
    engine = db.make_engine(settings.effective_database_url, pool_size=1)
    yield engine
    engine.dispose()


def _backend_pid(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT pg_backend_pid()")).scalar_one()


def _terminate(settings, pid: int) -> None:
    other = db.make_engine(settings.effective_database_url)
    try:
        with other.connect() as conn:
            assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar_one()
            conn.execute(text("SELECT pg_sleep(0.2)"))  # the backend is gone before the pool is asked again
    finally:
        other.dispose()


def _pings(engine, monkeypatch) -> list:
    pings: list = []
    ping = engine.dialect.do_ping
    monkeypatch.setattr(engine.dialect, "do_ping", lambda conn: pings.append(conn) or ping(conn))
    return pings


def test_a_connection_dropped_while_idle_is_replaced_unseen(engine, settings, monkeypatch):
    monkeypatch.setattr(db, "PING_AFTER_IDLE_S", 0.0)
    pings = _pings(engine, monkeypatch)
    first = _backend_pid(engine)
    _terminate(settings, first)
    assert _backend_pid(engine) != first  # no error: the ping found it dead and the pool connected again
    assert pings


def test_a_connection_handed_back_moments_ago_is_not_pinged(engine, settings, monkeypatch):
    pings = _pings(engine, monkeypatch)
    pids = {_backend_pid(engine) for _ in range(20)}
    assert len(pids) == 1 and pings == []
    monkeypatch.setattr(db, "PING_AFTER_IDLE_S", 0.0)  # as if it had sat idle
    assert _backend_pid(engine) in pids and len(pings) == 1
