"""The cycle's bulk writes (scheduler/bulk.py) store exactly what SQLAlchemy's own executemany stores, on SQLite and
PostgreSQL: timestamps, JSON (a list, and None), the statement's constants, and a guarded row that no longer
matches is not counted."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sched_helpers import Harness, one_team
from sqlalchemy import bindparam, select, update

from allotment.scheduler import bulk
from allotment.scheduler.metering import CLOSE
from allotment.scheduler.persist import ADMIT, FINISH, REASON, REQUEUE, START, dt
from allotment.workloads.models import Job


@pytest.fixture
def h(client, admin_headers) -> Harness:
    return one_team(client, admin_headers, gpus=2)


def _row(session, job_id: int) -> dict:
    job = session.get(Job, job_id)
    return {c: getattr(job, c) for c in ("state", "admitted_at", "updated_at", "devices", "placed_nodes", "reason",
                                         "reason_code", "placed_pool_id", "finished_at", "started_at", "exit_code")}


def test_bulk_writes_store_what_sqlalchemy_stores(h):
    ids = [h.submit("team", gpu=1) for _ in range(4)]
    at = 1_790_000_000.123456
    devices = [{"device_id": 1, "node": "gpu-01", "index": 0, "milli": 500}]

    def admit(job_id: int, nodes):
        return {"b_id": job_id, "b_at": dt(at), "b_pool": None, "b_devices": devices, "b_reason": "admitted to pool x",
                "b_nodes": nodes}

    state = h.client.app.state.allot
    with state.sessions() as session:
        conn = session.connection()
        assert conn.execute(ADMIT, [admit(ids[0], ["gpu-01"]), admit(ids[1], None)]).rowcount == 2
        assert bulk.executemany(conn, ADMIT, [admit(ids[2], ["gpu-01"]), admit(ids[3], None)]).rowcount == 2
        # the guard: admitted already, so a second admission matches nothing (one row, and several)
        assert bulk.executemany(conn, ADMIT, [admit(ids[2], None)]).rowcount == 0
        assert bulk.executemany(conn, ADMIT, [admit(ids[2], None), admit(ids[3], None)]).rowcount == 0
        finish = {"b_at": dt(at + 5), "b_state": "failed", "b_started": dt(at + 1), "b_exit": 3, "b_code": "failed",
                  "b_reason": "the job failed", "b_handle": None}
        conn.execute(FINISH, [{**finish, "b_id": ids[0]}])
        bulk.executemany(conn, FINISH, [{**finish, "b_id": ids[2]}])
        session.commit()
    with state.sessions() as session:
        by_sqlalchemy = [_row(session, i) for i in (ids[0], ids[1])]
        by_bulk = [_row(session, i) for i in (ids[2], ids[3])]
    assert by_bulk == by_sqlalchemy
    assert by_bulk[0]["state"] == "failed" and by_bulk[0]["devices"] == devices
    assert by_bulk[1]["admitted_at"] == datetime.fromtimestamp(at, UTC) and by_bulk[1]["placed_nodes"] is None
    assert by_bulk[0]["started_at"] == dt(at + 1) and by_bulk[0]["finished_at"] == dt(at + 5)


def test_a_row_written_twice_in_one_statement_keeps_the_last(h):
    """A cycle may word a queued job's reason twice; run as one set (PostgreSQL) or row by row, the last one stays."""
    job_id, other = h.submit("team", gpu=4), h.submit("team", gpu=4)
    state = h.client.app.state.allot
    rows = [{"b_id": job_id, "b_at": dt(1_790_000_000.0), "b_code": "quota", "b_reason": "first"},
            {"b_id": other, "b_at": dt(1_790_000_000.0), "b_code": "quota", "b_reason": "other"},
            {"b_id": job_id, "b_at": dt(1_790_000_001.0), "b_code": "quota", "b_reason": "second"}]
    with state.sessions() as session:
        bulk.executemany(session.connection(), REASON, rows)
        session.commit()
    assert (h.job(job_id)["reason"], h.job(other)["reason"]) == ("second", "other")


def test_bulk_close_ends_only_the_open_interval(h):
    """Closing by job id leaves the job's closed intervals alone."""
    job_id = h.submit("team", gpu=1, runtime_s=1.0)
    h.settle(3, advance=0.5)
    state = h.client.app.state.allot
    from allotment.accounting.models import UsageRecord

    with state.sessions() as session:
        closed = session.scalars(select(UsageRecord).where(UsageRecord.job_id == job_id)).all()
        assert [r.end_s is not None for r in closed] == [True]
        ended = closed[0].end_s
        session.add(UsageRecord(job_id=job_id, cluster_id=closed[0].cluster_id, owner_id=closed[0].owner_id,
                                gpu_milli=1000, cpu_milli=0, memory_bytes=0, start_s=ended + 10))
        session.commit()
    with state.sessions() as session:
        result = bulk.executemany(session.connection(), CLOSE,
                                  [{"u_job": job_id, "u_end": ended + 20, "u_outcome": "cancelled"}])
        session.commit()
        assert result.rowcount == 1
    with state.sessions() as session:
        rows = sorted((r.start_s, r.end_s, r.outcome) for r in
                      session.scalars(select(UsageRecord).where(UsageRecord.job_id == job_id)))
    assert rows[0][1] == ended and rows[1] == (ended + 10, ended + 20, "cancelled")


def test_closing_an_interval_looks_up_the_jobs_open_record_by_its_index(h, backend):
    """With thousands of open intervals and no statistics yet (as after a fresh start), the close must find the job's
    records through the job-id index (the interval constraint's, job_id first), not read the table or every open
    record's entry of an index on end_s (PostgreSQL's planner once combined both: 1 ms a close)."""
    import re

    from sqlalchemy import text

    from allotment.db import transaction

    state = h.client.app.state.allot
    with transaction(state.sessions) as s:
        s.execute(text("INSERT INTO usage_records (job_id, cluster_id, owner_id, gpu_milli, cpu_milli, memory_bytes, "
                       "start_s) VALUES (:j, 1, 1, 0, 1000, 0, :s)"),
                  [{"j": j, "s": 1000.0 + j} for j in range(1, 3001)])
    with state.sessions() as s:
        conn = s.connection()
        sql = bulk.prepared(CLOSE, conn.dialect).sql
        if backend == "postgres":
            plan = conn.exec_driver_sql("EXPLAIN " + sql, {"u_end": 1.0, "u_outcome": "succeeded", "u_job": 7}).all()
        else:
            plan = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, (1.0, "succeeded", 7)).all()
        s.rollback()
    text_plan = "\n".join(str(row) for row in plan)
    # SQLite names the constraint's index sqlite_autoindex_usage_records_N
    assert re.search(r"(uq_usage_records_interval|sqlite_autoindex_usage_records_\d+).*job_id", text_plan, re.DOTALL), text_plan
    assert "Seq Scan" not in text_plan and "BitmapAnd" not in text_plan, text_plan


def test_no_usage_records_index_names_what_a_close_sets():
    """Closing an interval sets end_s and outcome: with no index naming them (keys or a partial index's condition),
    PostgreSQL keeps the closed version on the record's page without an index entry (HOT)."""
    import re

    from allotment.accounting.models import UsageRecord

    table = UsageRecord.__table__
    written = {str(k).split(".")[-1] for k in CLOSE._values}
    assert written == {"end_s", "outcome"}
    named = set()
    for index in table.indexes | {c for c in table.constraints if hasattr(c, "columns")}:
        named |= {c.name for c in index.columns}
        for key in ("sqlite_where", "postgresql_where"):
            where = getattr(index, "dialect_kwargs", {}).get(key)
            if where is not None:
                named |= {c.name for c in table.columns if re.search(rf"\b{c.name}\b", str(where))}
    assert "job_id" in named and written & named == set(), written & named


def test_postgresql_closes_intervals_on_their_page(h, backend):
    """The loop's close of a cycle's ended jobs (one set statement): each record's closed version stays on its page
    without an index entry (HOT), where with an index on end_s every close wrote an entry in every index."""
    if backend != "postgres":
        pytest.skip("HOT updates are PostgreSQL's")
    from sqlalchemy import text

    from allotment.db import transaction

    state = h.client.app.state.allot
    with transaction(state.sessions) as s:
        s.execute(text("INSERT INTO usage_records (job_id, cluster_id, owner_id, gpu_milli, cpu_milli, memory_bytes, "
                       "start_s) VALUES (:j, 1, 1, 0, 1000, 0, :s)"),
                  [{"j": j, "s": 1000.0 + j} for j in range(1, 2001)])
    count = text("SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables WHERE relname = 'usage_records'")
    closes = [{"u_job": j, "u_end": 5000.0 + j, "u_outcome": "succeeded"} for j in range(1, 2001, 2)]
    with state.sessions() as s:
        conn = s.connection()
        before = conn.execute(count).one()
        result = bulk.executemany(conn, CLOSE, closes)
        after = conn.execute(count).one()
        s.commit()
    updated, hot = after[0] - before[0], after[1] - before[1]
    assert result.rowcount == updated == len(closes)
    assert hot >= 0.9 * len(closes), (updated, hot)
    with state.sessions() as s:
        ends = dict(s.execute(text("SELECT job_id, end_s FROM usage_records WHERE job_id IN (1, 2, 1999)")).all())
    assert ends == {1: 5001.0, 2: None, 1999: 6999.0}


def test_the_scans_looks_read_new_and_cancelled_jobs_through_their_indexes(h, backend):
    """A jobs table filled faster than it is analysed (a benchmark, a bulk import) has no statistics: PostgreSQL then
    estimated `id > watermark` and `cancel_requested_at >= since` at a third of the table and read all of it at every
    scan (10 ms each at 50,000 jobs). Both looks are two-sided ranges (scan.py), which it reads through the index."""
    import re

    from sqlalchemy import event, text

    from allotment.db import transaction

    state = h.client.app.state.allot
    first = h.submit("team", gpu=1)
    h.cycle()
    columns = [c.name for c in Job.__table__.columns if c.name != "id"]
    copied = ", ".join("jobs.seq + g" if c == "seq" else f"jobs.{c}" for c in columns)
    with transaction(state.sessions) as s:
        series = ("generate_series(1, 20000) AS g" if backend == "postgres" else
                  "(WITH RECURSIVE n(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM n WHERE g < 20000) SELECT g FROM n)")
        s.execute(text(f"INSERT INTO jobs ({', '.join(columns)}) SELECT {copied} FROM jobs, {series} "
                       f"WHERE jobs.id = :id"), {"id": first})
    h.cycle()  # reads the 20,000 copies; the next scan's looks find nothing new
    looks: list[tuple[str, object]] = []

    def seen(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT") and re.search(r"\bFROM jobs\s+WHERE", statement):
            looks.append((statement, parameters))

    event.listen(state.engine, "before_cursor_execute", seen)
    try:
        h.cycle(0.1)
    finally:
        event.remove(state.engine, "before_cursor_execute", seen)
    assert len(looks) == 2, looks
    with state.sessions() as s:
        conn = s.connection()
        for statement, parameters in looks:
            explain = "EXPLAIN " if backend == "postgres" else "EXPLAIN QUERY PLAN "
            plan = "\n".join(str(row) for row in conn.exec_driver_sql(explain + statement, parameters).all())
            assert "Seq Scan on jobs" not in plan and "SCAN jobs" not in plan, (statement, plan)
        s.rollback()


def test_rows_alike_in_a_parameter_store_the_same_as_rows_that_differ(h, backend):
    """PostgreSQL's set form sends a parameter that every row shares once (the cycle's time, an empty device list)
    and the others as arrays, JSON as text: what is stored must not depend on which form a value went in."""
    from sqlalchemy import event

    from allotment.scheduler.persist import START

    ids = [h.submit("team", gpu=1) for _ in range(6)]
    at = 1_790_000_000.5
    devices = [{"device_id": 1, "node": "gpu-01", "index": 0, "milli": 500}]
    state = h.client.app.state.allot
    sent: list[dict] = []

    def seen(conn, cursor, statement, parameters, context, executemany):
        if statement.startswith("UPDATE jobs") and isinstance(parameters, dict):
            sent.append(parameters)

    def admit(job_id, nodes, devs, reason="admitted to pool x"):
        return {"b_id": job_id, "b_at": dt(at), "b_pool": None, "b_devices": devs, "b_reason": reason,
                "b_nodes": nodes}

    def finish(job_id, when, state_, code, handle, started):
        return {"b_id": job_id, "b_at": dt(when), "b_state": state_, "b_started": dt(started), "b_exit": None,
                "b_code": code, "b_reason": None if code is None else "the job failed", "b_handle": handle}

    event.listen(state.engine, "before_cursor_execute", seen)
    try:
        with state.sessions() as session:
            conn = session.connection()
            # ids 0-2 by SQLAlchemy's own executemany, 3-5 in bulk: alike and differing values in both
            conn.execute(ADMIT, [admit(ids[0], ["gpu-01"], devices), admit(ids[1], None, []),
                                 admit(ids[2], ["gpu-01"], [], "admitted to pool y")])
            bulk.executemany(conn, ADMIT, [admit(ids[3], ["gpu-01"], devices), admit(ids[4], None, []),
                                           admit(ids[5], ["gpu-01"], [], "admitted to pool y")])
            conn.execute(START, [{"b_id": i, "b_at": dt(at + 1), "b_handle": None} for i in ids[:3]])
            bulk.executemany(conn, START, [{"b_id": i, "b_at": dt(at + 1), "b_handle": None} for i in ids[3:]])
            # instants that differ, to the microsecond (PostgreSQL: sent as microseconds since the epoch)
            ends = [(at + 5.000001, 1_700_000_000.999999), (at + 6.123457, 1_600_000_000.000001)]
            conn.execute(FINISH, [finish(ids[0], ends[0][0], "succeeded", None, "h0", ends[0][1]),
                                  finish(ids[1], ends[1][0], "failed", "failed", None, ends[1][1])])
            bulk.executemany(conn, FINISH, [finish(ids[3], ends[0][0], "succeeded", None, "h0", ends[0][1]),
                                            finish(ids[4], ends[1][0], "failed", "failed", None, ends[1][1])])
            session.commit()
    finally:
        event.remove(state.engine, "before_cursor_execute", seen)
    with state.sessions() as session:
        by_sqlalchemy = [_row(session, i) for i in ids[:3]]
        by_bulk = [_row(session, i) for i in ids[3:]]
    assert by_bulk == by_sqlalchemy
    assert [r["state"] for r in by_bulk] == ["succeeded", "failed", "running"]
    assert by_bulk[1]["finished_at"] == dt(at + 6.123457)
    assert by_bulk[0]["devices"] == devices and by_bulk[1]["devices"] == [] and by_bulk[1]["placed_nodes"] is None
    if backend == "postgres":  # the shared time went once, the differing device lists as one array of texts
        admits = [p for p in sent if "a_b_devices" in p]
        assert admits and "s_b_at" in admits[0] and "a_b_at" not in admits[0]
        assert all(isinstance(x, str) for x in admits[0]["a_b_devices"])


def test_budget_spending_looks_use_an_index_over_a_long_history(h, backend):
    """No index names end_s any more: what a user's or a quota's budget has spent (accounting.service.spent, read at
    every submission under a budget) must still be read through the owner's or the quota's index, not the table,
    when the table holds a long history of closed records."""
    from sqlalchemy import event, text

    from allotment.accounting import service
    from allotment.db import transaction

    state = h.client.app.state.allot
    series = ("generate_series(1, 50000) AS g" if backend == "postgres" else
              "(WITH RECURSIVE n(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM n WHERE g < 50000) SELECT g FROM n)")
    with transaction(state.sessions) as s:
        s.execute(text(f"INSERT INTO usage_records (job_id, cluster_id, owner_id, quota_id, gpu_milli, cpu_milli, "
                       f"memory_bytes, start_s, end_s, outcome) SELECT g, 1 + g % 3, 1 + g % 200, 1 + g % 100, 1000, "
                       f"0, 0, 1000.0 + g, 2000.0 + g, 'succeeded' FROM {series}"))
        if backend == "postgres":
            s.execute(text("ANALYZE usage_records"))
    statements: list[tuple[str, object]] = []

    def seen(conn, cursor, statement, parameters, context, executemany):
        if "FROM usage_records" in statement:
            statements.append((statement, parameters))

    explain = "EXPLAIN " if backend == "postgres" else "EXPLAIN QUERY PLAN "
    for name, look in {"user": lambda s: service.spent(s, 0.0, 60_000.0, cluster_id=2, owner_id=7),
                       "quota": lambda s: service.spent(s, 30_000.0, 60_000.0, quota_ids=[5, 6])}.items():
        statements.clear()
        with state.sessions() as s:
            event.listen(state.engine, "before_cursor_execute", seen)
            try:
                gpu, _cpu = look(s)
            finally:
                event.remove(state.engine, "before_cursor_execute", seen)
            assert gpu > 0 and statements, name
            conn = s.connection()
            for statement, parameters in statements:
                plan = "\n".join(str(row) for row in conn.exec_driver_sql(explain + statement, parameters).all())
                assert "Seq Scan on usage_records" not in plan and "SCAN usage_records" not in plan.replace(
                    "SCAN usage_records USING", ""), (name, plan)
            s.rollback()


def test_the_set_forms_arrays_go_in_binary_and_store_every_text_exactly(h, backend):
    """psycopg escapes a text-format array in Python, element by element (about 1.2 us an integer, 2.9 us a string;
    0.2 us in binary): the set form's arrays are sent in binary. Text that an array literal would have to quote
    (quotes, backslashes, braces, commas, the word NULL, an empty string) and missing values are stored as given."""
    from sqlalchemy import text

    ids = [h.submit("team", gpu=1) for _ in range(8)]
    state = h.client.app.state.allot
    reasons = ['say "hi"', "back\\slash", "{braces}, commas", "NULL", "", "ünïcødé ✓", None, "plain"]
    rows = [{"b_id": i, "b_at": dt(1_790_000_000.0 + n), "b_code": "quota" if n % 2 else None, "b_reason": r}
            for n, (i, r) in enumerate(zip(ids, reasons, strict=True))]
    with state.sessions() as session:
        conn = session.connection()
        if backend == "postgres":
            sql, params = bulk.prepared(REASON, conn.dialect).set_parameters(rows)
            arrays = [name for name in params if name.startswith("a_")]
            assert arrays and all(f"%({name})b" in sql for name in arrays), sql
        result = bulk.executemany(conn, REASON, rows)
        session.commit()
    assert result.rowcount == len(rows)
    with state.sessions() as session:
        stored = dict(session.execute(text("SELECT id, reason FROM jobs WHERE id IN :ids").bindparams(
            bindparam("ids", expanding=True)), {"ids": ids}).all())
        codes = dict(session.execute(select(Job.id, Job.reason_code).where(Job.id.in_(ids))).all())
    assert [stored[i] for i in ids] == reasons
    assert [codes[i] for i in ids] == ["quota" if n % 2 else None for n in range(len(ids))]


def test_one_statement_stores_what_executemany_stores(h):
    """bulk.executemany_as_one (SQLite's JSON set form; executemany on PostgreSQL) writes what executemany writes:
    starts with and without an engine handle (the handle kept where none is given), ends with every column, None
    included, requeues with the statement's constants, guards respected; a repeated key keeps the last row."""
    ids = [h.submit("team", gpu=1) for _ in range(8)]
    at = 1_790_000_000.123456
    state = h.client.app.state.allot
    with state.sessions() as session:
        conn = session.connection()
        for i in ids:
            bulk.executemany(conn, ADMIT, [{"b_id": i, "b_at": dt(at), "b_pool": None, "b_devices": [],
                                            "b_reason": "admitted", "b_nodes": None}])
        session.commit()

    def rows_for(pair):
        a, b = pair
        starts = [{"b_id": a, "b_at": dt(at + 1), "b_handle": "h-1"}, {"b_id": b, "b_at": dt(at + 1), "b_handle": None}]
        ends = [{"b_id": a, "b_at": dt(at + 2), "b_state": "failed", "b_started": None, "b_exit": 3,
                 "b_code": "failed", "b_reason": "it's \"quoted\" — and ünïcode", "b_handle": None},
                {"b_id": b, "b_at": dt(at + 3), "b_state": "succeeded", "b_started": dt(at + 1), "b_exit": None,
                 "b_code": None, "b_reason": None, "b_handle": "h-2"}]
        return starts, ends

    with state.sessions() as session:
        conn = session.connection()
        for run, pair in ((bulk.executemany, ids[0:2]), (bulk.executemany_as_one, ids[2:4])):
            starts, ends = rows_for(pair)
            run(conn, START, starts)
            run(conn, FINISH, ends)
            run(conn, START, starts)  # guarded: ended jobs do not start again
        # requeues: the guard lets only preempted jobs through
        conn.execute(update(Job).where(Job.id.in_([ids[4], ids[6]])).values(state="preempted"))
        requeue = [{"b_at": dt(at + 9), "b_reason": "preempted by job 1"}]
        bulk.executemany(conn, REQUEUE, [{**requeue[0], "b_id": ids[4]}, {**requeue[0], "b_id": ids[5]}])
        bulk.executemany_as_one(conn, REQUEUE, [{**requeue[0], "b_id": ids[6]}, {**requeue[0], "b_id": ids[7]}])
        session.commit()
    with state.sessions() as session:
        by_rows = [_row(session, i) | {"handle": session.get(Job, i).backend_handle} for i in (ids[0], ids[1], ids[4],
                                                                                               ids[5])]
        by_set = [_row(session, i) | {"handle": session.get(Job, i).backend_handle} for i in (ids[2], ids[3], ids[6],
                                                                                              ids[7])]
    assert by_set == by_rows
    assert by_set[0]["state"] == "failed" and by_set[0]["reason"] == "it's \"quoted\" — and ünïcode"
    assert by_set[0]["handle"] == "h-1" and by_set[1]["handle"] == "h-2" and by_set[1]["exit_code"] is None
    assert by_set[0]["started_at"] == datetime.fromtimestamp(at + 1, UTC)
    assert [r["state"] for r in by_set[2:]] == ["queued", "admitted"]
    assert by_set[2]["reason"] == "preempted by job 1" and by_set[2]["devices"] is None

    queued = h.submit("team", gpu=4)
    with state.sessions() as session:
        bulk.executemany_as_one(session.connection(), REASON, [
            {"b_id": queued, "b_at": dt(at), "b_code": "quota", "b_reason": "first"},
            {"b_id": ids[7], "b_at": dt(at), "b_code": "quota", "b_reason": "not queued: unchanged"},
            {"b_id": queued, "b_at": dt(at + 1), "b_code": "quota", "b_reason": "second"}])
        session.commit()
    assert h.job(queued)["reason"] == "second" and h.job(ids[7])["reason"] == "admitted"


def test_the_loops_array_statements_are_planned_for_each_executions_rows(h, backend):
    """A statement over an array of rows (the set forms, the usage records' opening) must be planned with the rows
    it is given. psycopg prepares a statement run five times on a connection, and PostgreSQL then keeps one generic
    plan for it: an array it assumes to hold ten rows, the tables as large as when the plan was made. A loop started
    on an empty jobs table kept a plan that read the whole queue once for every row of a batch (600 ends in a cycle
    against 9,000 queued jobs: 0.5 s a statement, where the plan made for the rows takes milliseconds)."""
    if backend != "postgres":
        pytest.skip("psycopg's prepared statements and PostgreSQL's generic plans")
    from sqlalchemy import text

    from allotment.scheduler import metering

    ids = [h.submit("team", gpu=1) for _ in range(3)]
    state = h.client.app.state.allot
    with state.sessions() as session:
        conn = session.connection()
        for i in range(8):  # past psycopg's threshold of five
            bulk.executemany(conn, REASON, [{"b_id": j, "b_reason": f"waits {i}", "b_code": "quota",
                                             "b_at": dt(1_790_000_000 + i)} for j in ids])
            metering._open(conn, 1_790_000_000.0 + i, ids)
        kept = conn.execute(text("SELECT statement FROM pg_prepared_statements")).scalars().all()
        session.rollback()
    assert not [s for s in kept if "unnest" in s or "ANY" in s], kept
