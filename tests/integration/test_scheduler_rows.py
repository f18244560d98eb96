"""The loop keeps the rows it reads as named tuples (scheduler/load.py: JobRow, NewJobRow): each field must hold the
value of the column of the same name, for a full load (every column a holding job has) and for the scan of new
submissions (JSON columns as their text)."""

from __future__ import annotations

from sched_helpers import Harness
from sqlalchemy import select, update

from allotment.db import transaction
from allotment.identity.models import User
from allotment.inventory.service import find_cluster
from allotment.scheduler import load, reads
from allotment.workloads.models import Job


def test_named_rows_hold_each_column_by_its_name(client, admin_headers):
    h = Harness(client, admin_headers)
    h.node("n-1", gpus=2)
    h.pool("p", ["n-1"])
    h.quota("team", [{"resource": "gpu", "guarantee": 2, "limit": 2}])
    job_id = h.submit("team", gpu="1", cpu="3", memory="5Gi", time_limit="1h", env={"A": "1"},
                      labels={"runtime_ms": 5000, "team": "x"}, command=["train", "--lr", "0.1"])
    with transaction(client.app.state.allot.sessions) as s:  # every column a holding job has, set to something
        s.execute(update(Job).where(Job.id == job_id).values(
            devices=[{"device_id": 7, "node": "n-1", "index": 0, "milli": 1000}], placed_nodes=["n-1"],
            backend_handle="sim-x", preemptions=2))
    with transaction(client.app.state.allot.sessions) as s:
        cluster_id = find_cluster(s, h.cluster).id
        full = s.execute(select(*load.JOB_COLUMNS).where(Job.id == job_id)).one()
        new = s.execute(select(*load.NEW_JOB_COLUMNS).where(Job.id == job_id)).one()
        named = next(r for r in load.active_jobs(s, cluster_id) if r.id == job_id)
        scanned = load.plain_rows(s.execute(select(*load.NEW_JOB_COLUMNS).where(Job.id == job_id)), load.NewJobRow)
    assert isinstance(named, load.JobRow) and len(scanned) == 1 and isinstance(scanned[0], load.NewJobRow)
    assert {k: getattr(named, k) for k in full._fields} == full._asdict()
    assert {k: getattr(scanned[0], k) for k in new._fields} == new._asdict()
    assert named.gpu_milli == 1000 and named.cpu_milli == 3000 and named.preemptions == 2
    assert named.owner == "admin" and "owner" not in load.NewJobRow._fields  # looked up once per owner instead
    assert load.json_value(scanned[0].labels) == {"runtime_ms": 5000, "team": "x"}
    info = load.JobInfo(scanned[0], new=True, owner="admin")
    assert info.command == ["train", "--lr", "0.1"] and info.env == {"A": "1"} and info.time_limit_s == 3600
    assert info.owner == "admin"


def test_the_scan_gives_each_new_job_its_owners_username_as_it_is_now(client, admin_headers):
    h = Harness(client, admin_headers)
    h.node("n-1", gpus=2)
    h.pool("p", ["n-1"])
    h.quota("team", [{"resource": "gpu", "guarantee": 2, "limit": 2}])
    h.cycle()
    first = h.submit("team", gpu="1")
    with transaction(client.app.state.allot.sessions) as s:
        owner_id = s.scalar(select(Job.owner_id).where(Job.id == first))
        assert load.usernames(s.connection(), [owner_id, None, owner_id]) == {owner_id: "admin"}
        s.execute(update(User).where(User.id == owner_id).values(username="ada-renamed"))
    second = h.submit("team", gpu="1")
    h.cycle()
    with transaction(client.app.state.allot.sessions) as s:
        jobs = h.scheduler.runtimes[find_cluster(s, h.cluster).id].jobs
    assert jobs[first].owner == "ada-renamed" and jobs[second].owner == "ada-renamed"


def test_the_scans_read_from_the_cursor_gives_what_sqlalchemy_gives(client, admin_headers):
    """scheduler/reads.py: new submissions read on the driver's cursor, each typed column converted by SQLAlchemy's
    result processor once per distinct value, are the rows SQLAlchemy's own result gives, above the watermark only."""
    h = Harness(client, admin_headers)
    h.node("n-1", gpus=2)
    h.pool("p", ["n-1"])
    h.quota("team", [{"resource": "gpu", "guarantee": 2, "limit": 2}])
    first = h.submit("team", gpu="1")
    ids = h.batch([{"quota": "team", "gpu": "0.5", "command": ["x", str(i)], "labels": {"i": i}, "time_limit": "1h"}
                   for i in range(5)])
    with transaction(client.app.state.allot.sessions) as s:
        conn = s.connection()
        expected = [tuple(r) for r in conn.execute(select(*load.NEW_JOB_COLUMNS).where(Job.id > first)
                                                   .order_by(Job.id))]
        got = reads.new_jobs(conn, first)
        everything = reads.new_jobs(conn, 0)
    assert [r.id for r in got] == ids and all(isinstance(r, load.NewJobRow) for r in got)
    assert [tuple(r) for r in got] == expected
    assert got[0].submitted_at.tzinfo is not None and got[0].submitted_at == got[-1].submitted_at  # one batch
    assert [r.id for r in everything] == [first, *ids]
