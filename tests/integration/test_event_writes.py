"""The events' rows (requeues, starts, ends) are written by a thread while core decides, in the cycle's one
transaction (scheduler/persist.EventWrites; on SQLite as one statement per kind, bulk.executemany_as_one). A cycle
that fails after they were sent leaves nothing of them behind."""

from __future__ import annotations

import threading

import pytest
from sched_helpers import Harness, one_team
from sqlalchemy import event, func, select

from allotment.accounting.models import UsageRecord
from allotment.db import transaction
from allotment.scheduler.runtime import ClusterRuntime


@pytest.fixture
def h(client, admin_headers) -> Harness:
    return one_team(client, admin_headers, gpus=4)


def _statements(engine) -> list[tuple[str, str]]:
    """(thread name, SQL) of every statement the engine runs from now on."""
    seen: list[tuple[str, str]] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append((threading.current_thread().name, statement))

    def commit(conn):
        seen.append((threading.current_thread().name, "COMMIT"))

    event.listen(engine, "before_cursor_execute", record)
    event.listen(engine, "commit", commit)
    return seen


def test_starts_and_ends_are_written_while_core_decides_in_the_cycles_transaction(h, client):
    engine = client.app.state.allot.engine
    first = [h.submit("team", gpu=2, runtime_s=5) for _ in range(2)]
    h.cycle()  # admitted
    later = [h.submit("team", gpu=2, runtime_s=5) for _ in range(2)]
    seen = _statements(engine)
    decided_in: list[str] = []
    original = ClusterRuntime.decide

    def decide(self, *args, **kwargs):
        decided_in.append(threading.current_thread().name)
        return original(self, *args, **kwargs)

    ClusterRuntime.decide = decide
    try:
        h.cycle(0.1)  # the engine reports both started; nothing frees: the later two wait
        del seen[:]
        h.cycle(5.0)  # both ended; the later two are admitted in the same cycle
        seen = list(seen)
    finally:
        ClusterRuntime.decide = original
    assert h.states(first) == ["succeeded", "succeeded"]
    assert h.states(later) == ["admitted", "admitted"]
    writers = {thread for thread, sql in seen if sql.lstrip().upper().startswith("UPDATE JOBS")
               and "finished_at" in sql and "admitted_at" not in sql}
    loop_thread = decided_in[0]
    assert writers and all(t.startswith("allot-scheduler-writes") for t in writers)
    assert loop_thread not in writers
    # the ends and the admissions commit together, once, after every write of the cycle
    commits = [i for i, (_, sql) in enumerate(seen) if sql == "COMMIT"]
    writes = [i for i, (_, sql) in enumerate(seen) if sql.lstrip().upper().startswith(("UPDATE", "INSERT"))]
    assert len(commits) == 1 and writes and max(writes) < commits[0]
    assert seen[commits[0]][0] == loop_thread


def test_a_cycle_failing_after_its_event_rows_were_sent_writes_none_of_them(h, client, monkeypatch):
    job = h.submit("team", gpu=4, runtime_s=5)
    waiting = h.submit("team", gpu=4, runtime_s=5)
    h.cycle()
    h.cycle(0.1)
    assert h.states([job, waiting]) == ["running", "queued"]

    def fail(self, *args, **kwargs):
        raise KeyboardInterrupt("the loop is stopped in the middle of deciding")  # not a cluster's own failure

    with monkeypatch.context() as m:
        m.setattr(ClusterRuntime, "decide", fail)
        with pytest.raises(KeyboardInterrupt):
            h.cycle(5.0)  # the job's end was read and sent before core decided
    assert h.states([job, waiting]) == ["running", "queued"]  # rolled back with the cycle
    with transaction(client.app.state.allot.sessions) as s:
        assert s.scalar(select(func.count()).where(UsageRecord.job_id == job, UsageRecord.end_s.is_not(None))) == 0
    h.cycle()
    assert h.states([job, waiting]) == ["succeeded", "admitted"]  # the end is found again, nothing twice
    with transaction(client.app.state.allot.sessions) as s:
        ends = s.scalars(select(UsageRecord.end_s).where(UsageRecord.job_id == job)).all()
    assert len(ends) == 1 and ends[0] is not None
