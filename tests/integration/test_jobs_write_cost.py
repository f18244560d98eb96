"""What a job's life costs the jobs table (workloads/models.py): the scheduler's updates before a job ends name no
indexed column, so PostgreSQL keeps them on the row's page without an index entry (HOT) and SQLite rewrites no index;
and the look-ups of active jobs that run at every submission, at start-up and in the console still go through an
index when the table holds a long history of finished jobs."""

from __future__ import annotations

import re

import pytest
from sched_helpers import Harness, finished_copies, one_team, statements_sent
from sqlalchemy import text

from allotment.scheduler import bulk, load, persist
from allotment.workloads.models import Job

HISTORY = 100_000


@pytest.fixture
def h(client, admin_headers) -> Harness:
    return one_team(client, admin_headers, gpus=8)


def _indexed_columns() -> set[str]:
    """Every column a jobs index names: its keys, and the columns of a partial index's condition."""
    names = set()
    for index in Job.__table__.indexes:
        names |= {c.name for c in index.columns}
        for key in ("sqlite_where", "postgresql_where"):
            where = index.dialect_kwargs.get(key)
            if where is not None:
                names |= {c.name for c in Job.__table__.columns if re.search(rf"\b{c.name}\b", str(where))}
    names |= {c.name for c in Job.__table__.primary_key.columns}
    return names


@pytest.mark.parametrize("statement", ["ADMIT", "START", "REASON", "PREEMPT"])
def test_the_updates_before_a_jobs_end_set_no_indexed_column(statement):
    written = {str(k).split(".")[-1] for k in getattr(persist, statement)._values}
    assert "updated_at" in written  # the column names were read
    assert written & _indexed_columns() == set(), written & _indexed_columns()


def test_the_end_of_a_job_sets_the_column_active_jobs_are_found_by():
    """Active jobs are found as `finished_at IS NULL`: the loop's finish must set it (workloads' cancel does too)."""
    assert "finished_at" in {str(k).split(".")[-1] for k in persist.FINISH._values}
    assert "finished_at" in _indexed_columns()


def test_postgresql_keeps_a_full_pages_admissions_and_starts_on_the_page(h, backend):
    """A batch fills pages up to the table's fillfactor and the next cycle admits all of it in one statement: the
    rows' new versions must find room on their own page (a HOT update, no index entry), although an admitted row is
    about 40 % longer (placement, devices, the reason); the start, a cycle later, finds the admission's old versions
    pruned. (With every page full, or an indexed state, hardly any update is HOT.)"""
    if backend != "postgres":
        pytest.skip("HOT updates are PostgreSQL's")
    ids = h.batch([{"quota": "team", "gpu": 1, "command": ["train", "--epochs", "3"], "labels": {"runtime_ms": 100000,
                                                                               "class": "small"}}
                   for _ in range(400)])
    state = h.client.app.state.allot
    devices = [{"device_id": 1, "node": "gpu-01", "index": 0, "milli": 1000}]
    admit = [{"b_id": i, "b_at": persist.dt(1_790_000_000.0), "b_pool": None, "b_devices": devices,
              "b_nodes": ["gpu-01"], "b_reason": "admitted to pool gpu-01 of cluster sim (priority default)"}
             for i in ids]
    start = [{"b_id": i, "b_at": persist.dt(1_790_000_001.0), "b_handle": f"sim-{i}"} for i in ids]
    updated, hot = _updates(state, persist.ADMIT, admit)
    assert updated == len(ids) and hot >= 0.66 * len(ids), (updated, hot)
    updated, hot = _updates(state, persist.START, start)
    assert updated == len(ids) and hot >= 0.8 * len(ids), (updated, hot)


def _updates(state, statement, rows) -> tuple[int, int]:
    """(rows updated, of them HOT) by one of the loop's statements, from the backend's counters (which include its
    earlier transactions' until they are reported: hence the difference)."""
    count = text("SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables WHERE relname = 'jobs'")
    with state.sessions() as session:
        conn = session.connection()
        before = conn.execute(count).one()
        bulk.executemany(conn, statement, rows)
        after = conn.execute(count).one()
        session.commit()
    return after[0] - before[0], after[1] - before[1]


def test_active_job_look_ups_use_an_index_over_a_long_history(h, backend):
    from allotment.identity.authn import load_principal
    from allotment.identity.models import User
    from allotment.inventory.service import active_jobs as cluster_active_jobs
    from allotment.policies.service import active_jobs as owner_active_jobs
    from allotment.policies.service import held
    from allotment.quotas.service import active_job_count
    from allotment.scheduler.recovery import holding_admissions
    from allotment.workloads.owner_jobs import holding_jobs
    from allotment.workloads.service import list_jobs

    first = h.submit("team", gpu=1)
    h.cycle()
    state = h.client.app.state.allot
    finished_copies(state, backend, first, HISTORY)
    with state.sessions() as s:
        job = s.get(Job, first)
        owner, quota, cluster = job.owner_id, job.quota_id, job.cluster_id
    looks = {"concurrency cap": lambda s: owner_active_jobs(s, owner), "held": lambda s: held(s, owner),
             "quota deletion": lambda s: active_job_count(s, quota),
             "scheduler start-up": lambda s: load.active_jobs(s, cluster),
             "cluster deletion": lambda s: cluster_active_jobs(s, cluster),
             "user deactivation": lambda s: holding_jobs(s, owner),
             "engine recovery": lambda s: holding_admissions(s),
             "jobs list of active states": lambda s: list_jobs(s, load_principal(s, s.get(User, owner)), state="queued,running")}
    explain = "EXPLAIN " if backend == "postgres" else "EXPLAIN QUERY PLAN "
    for name, look in looks.items():
        with state.sessions() as s:
            statements = statements_sent(state.engine, r"\bFROM jobs\b", lambda s=s, look=look: look(s))
            if name == "jobs list of active states":  # its total; the page itself walks the jobs newest first by
                statements[:] = [st for st in statements if "count(" in st[0].lower()]  # id, stopping at its end
            assert statements, name
            conn = s.connection()
            for statement, parameters in statements:
                plan = "\n".join(str(row) for row in conn.exec_driver_sql(explain + statement, parameters).all())
                # (a walk of the whole active-jobs index reads the active jobs only)
                assert "Seq Scan on jobs" not in plan and not re.search(
                    r"\bSCAN jobs\b(?! USING (COVERING )?INDEX ix_jobs_active_cluster_seq\b)", plan), \
                    (name, statement, plan)
                # the index is searched by the job being active, not only by its owner, quota or cluster (the
                # active-jobs index holds active jobs only)
                assert re.search(r"(Index Cond|USING INDEX ix_jobs_)[^\n]*\b(finished_at|state)\b", plan) \
                    or re.search(r"(Index Scan|Bitmap Index Scan|USING INDEX)[^\n]*\bix_jobs_active_cluster_seq\b",
                                 plan), (name, statement, plan)
            s.rollback()
    with state.sessions() as s:
        assert owner_active_jobs(s, owner) == 1 and active_job_count(s, quota) == 1
        assert [row.id for row in load.active_jobs(s, cluster)] == [first]


def test_the_active_jobs_index_holds_the_queue_not_the_history(h, backend):
    """A job's end writes no entry in the index of active jobs: after a long history it stays the size of the
    queue (PostgreSQL: its pages; SQLite: its entries)."""
    first = h.submit("team", gpu=1)
    h.cycle()
    state = h.client.app.state.allot
    finished_copies(state, backend, first, HISTORY)
    with state.sessions() as s:
        conn = s.connection()
        if backend == "postgres":
            conn.exec_driver_sql("ANALYZE jobs")
            active, everything = (conn.exec_driver_sql(f"SELECT pg_relation_size('{name}')").scalar()
                                  for name in ("ix_jobs_active_cluster_seq", "pk_jobs"))
            assert active * 20 < everything, (active, everything)
        else:  # the index's leaf entries (dbstat: cells of its pages)
            entries = conn.exec_driver_sql("SELECT sum(ncell) FROM dbstat WHERE name = 'ix_jobs_active_cluster_seq' "
                                           "AND pagetype = 'leaf'").scalar()
            pages = conn.exec_driver_sql("SELECT count(*) FROM dbstat WHERE name = 'ix_jobs_active_cluster_seq'").scalar()
            assert entries == 1 and pages == 1, (entries, pages)
