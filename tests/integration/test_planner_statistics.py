"""SQLite plans from the statistics ANALYZE gathers, and nothing gathers them unless asked (db_statistics.py): without
them, the jobs list of a few queued jobs below a long history read the whole table, newest first, to fill its page."""

from __future__ import annotations

import re
import time

import pytest
from sched_helpers import Harness, finished_copies, one_team, statements_sent

from allotment import db_statistics
from allotment.db import make_engine
from allotment.workloads.models import Job

HISTORY = 20_000
ACTIVE_INDEX = "ix_jobs_active_cluster_seq"


@pytest.fixture
def backend() -> str:
    return "sqlite"  # PostgreSQL's autovacuum analyses its tables itself


@pytest.fixture
def h(client, admin_headers) -> Harness:
    return one_team(client, admin_headers, gpus=8)


POOLED = 3  # connections checked out at once: the pool's every connection, not only the one the refresh ran on


def fill_pool(engine) -> None:
    """POOLED connections that have read the schema (and any statistics then) and wait in the pool."""
    conns = [engine.connect() for _ in range(POOLED)]
    for conn in conns:
        conn.exec_driver_sql("SELECT count(*) FROM jobs").all()
    for conn in conns:
        conn.close()


def plans(state, look) -> list[str]:
    """The query plan of each statement on the jobs table that `look(session)` sends, on each of POOLED pooled
    connections."""
    with state.sessions() as s:
        statements = statements_sent(state.engine, r"\bFROM jobs\b", lambda: look(s))
    assert statements
    conns = [state.engine.connect() for _ in range(POOLED)]
    try:
        return ["\n".join(str(row) for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters))
                for conn in conns for statement, parameters in statements]
    finally:
        for conn in conns:
            conn.close()


def reads_the_active_index(plan: str) -> bool:
    return ACTIVE_INDEX in plan and not re.search(r"\bSCAN jobs\b(?! USING (COVERING )?INDEX)", plan)


def stats_of_jobs(engine) -> set[str]:
    with engine.connect() as conn:
        return {row[0] for row in conn.exec_driver_sql("SELECT idx FROM sqlite_stat1 WHERE tbl = 'jobs'")}


def test_the_jobs_list_reads_the_queue_through_its_index_below_a_long_history(h):
    from allotment.identity.authn import load_principal
    from allotment.identity.models import User
    from allotment.workloads.service import list_jobs

    state = h.client.app.state.allot
    first = h.submit("team", gpu=1)
    h.cycle()
    finished_copies(state, "sqlite", first, HISTORY)
    waiting = h.submit("team", gpu=8)  # the quota is full: it stays queued
    h.cycle()
    with state.sessions() as s:
        owner = s.get(Job, first).owner_id

    # Gathered while connections sit in the pool: they too plan with the statistics from now on.
    fill_pool(state.engine)
    assert db_statistics.refresh(state.engine)
    for wanted, ids in (("queued", [waiting]), ("queued,running", [waiting, first])):
        def look(s, wanted=wanted, ids=ids):
            rows, total = list_jobs(s, load_principal(s, s.get(User, owner)), state=wanted)
            assert ([job.id for job in rows], total) == (ids, len(ids))

        for plan in plans(state, look):  # the page and its total
            assert reads_the_active_index(plan), (wanted, plan)


def test_the_server_gathers_them_at_start_and_again_at_its_interval(h):
    state = h.client.app.state.allot
    with state.engine.connect() as conn:  # the start-up refresh ran: the table it writes exists
        assert conn.exec_driver_sql("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'").scalar() == 1
    assert ACTIVE_INDEX not in stats_of_jobs(state.engine)  # the jobs table was empty then
    first = h.submit("team", gpu=1)
    finished_copies(state, "sqlite", first, 2_000)
    refresh = db_statistics.StatisticsRefresh(state.engine, interval_s=0.2)
    try:
        assert ACTIVE_INDEX in stats_of_jobs(state.engine)  # at once, as at a server's start
        with state.engine.begin() as conn:
            conn.exec_driver_sql("DELETE FROM sqlite_stat1")
        deadline = time.monotonic() + 10
        while ACTIVE_INDEX not in stats_of_jobs(state.engine) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ACTIVE_INDEX in stats_of_jobs(state.engine)  # and again after its interval
    finally:
        refresh.stop()


def test_another_process_connections_plan_with_them_once_reopened(h, monkeypatch):
    """The scheduler's process has its own pool, which the refresh in the API's process cannot dispose of: its
    connections are reopened at the refresh's interval, and a reopened connection loads the statistics."""
    monkeypatch.setattr(db_statistics, "REFRESH_S", 0.3)
    state = h.client.app.state.allot
    first = h.submit("team", gpu=1)
    h.cycle()
    finished_copies(state, "sqlite", first, HISTORY)
    other = make_engine(str(state.engine.url))  # as the scheduler's process makes its own
    try:
        query = "EXPLAIN QUERY PLAN SELECT * FROM jobs WHERE finished_at IS NULL AND state = 'queued' " \
                "ORDER BY id DESC LIMIT 50"
        with other.connect() as conn:  # opened before the refresh, and back in its pool
            conn.exec_driver_sql(query).all()
        assert db_statistics.refresh(state.engine)
        time.sleep(0.4)
        with other.connect() as conn:
            plan = "\n".join(str(row) for row in conn.exec_driver_sql(query))
        assert reads_the_active_index(plan), plan
    finally:
        other.dispose()


def test_a_database_in_memory_is_neither_analysed_nor_reopened():
    engine = make_engine("sqlite://")
    try:
        assert not db_statistics.refresh(engine)
        assert engine.pool._recycle == -1  # reopening it would lose the database
    finally:
        engine.dispose()
