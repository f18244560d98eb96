"""Metering: one usage record per interval a job holds resources, written with the job's state in the cycle's
transaction (a crash writes neither, a retry never doubles one), live usage, rollups by every dimension, who sees what,
and the recalculation that repairs records changed outside the scheduler."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from sched_helpers import API, Harness
from sqlalchemy import delete, select, update
from user_helpers import login, make_user

from allotment.accounting.models import PoolCapacityChange, UsageRecord
from allotment.backends.base import ENDED, LOST, Reattached
from allotment.db import transaction
from allotment.inventory.models import Cluster, Pool
from allotment.scheduler import metering
from allotment.scheduler.persist import Writes
from allotment.workloads.models import Job


@pytest.fixture
def h(client, admin_headers) -> Harness:
    h = Harness(client, admin_headers)
    h.node("gpu-01", gpus=4, model="H100")
    h.quota("org", [{"resource": "gpu", "guarantee": 4, "limit": 4}])
    h.quota("team", [{"resource": "gpu", "guarantee": 4, "limit": 4}], parent="org")
    return h


def records(h: Harness) -> list[UsageRecord]:
    with h.client.app.state.allot.sessions() as s:
        return list(s.scalars(select(UsageRecord).order_by(UsageRecord.id)))


def ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def test_each_interval_is_recorded_from_admission_to_end_with_fractions(h):
    whole = h.submit("team", gpu=1, cpu=2, memory="4Gi", runtime_s=60)
    half = h.submit("team", gpu=0.5, runtime_s=30)
    h.cycle()
    rows = records(h)
    assert [(r.job_id, r.gpu_milli, r.end_s) for r in rows] == [(whole, 1000, None), (half, 500, None)]
    assert rows[0].cpu_milli == 2000 and rows[0].memory_bytes == 4 << 30 and rows[0].device_model == "H100"
    h.cycle(0.5)  # started
    h.cycle(30.0)
    h.cycle(30.0)
    assert h.states([whole, half]) == ["succeeded", "succeeded"]
    by_job = {r.job_id: r for r in records(h)}
    assert len(by_job) == 2
    for job_id in (whole, half):
        job = h.job(job_id)
        r = by_job[job_id]
        assert r.start_s == pytest.approx(ts(job["admitted_at"]), abs=1e-5)
        assert r.end_s == pytest.approx(ts(job["finished_at"]), abs=1e-5)
        assert r.outcome == "succeeded"
    report = h.get("/usage", params={"by": "user", "from": "2000-01-01", "to": "2100-01-01"})
    held = sum(r.gpu_milli / 1000 * (r.end_s - r.start_s) for r in by_job.values())
    assert [i["key"] for i in report["items"]] == ["admin"]
    assert report["items"][0]["gpu_hours"] == pytest.approx(held / 3600, abs=1e-5)
    assert report["items"][0]["intervals"] == 2


def test_a_preempted_job_has_one_interval_per_admission(h):
    h.quota("low", [{"resource": "gpu", "guarantee": 0, "limit": 4}])
    h.quota("high", [{"resource": "gpu", "guarantee": 4, "limit": 4}], reclaim="any")
    victim = h.submit("low", gpu=4, runtime_s=1000)
    h.settle(2, 1.0)
    h.submit("high", gpu=4, runtime_s=10)
    h.settle(4, 1.0)
    h.settle(20, 2.0)
    h.settle(4, 200.0)  # past the requeue backoff (600 s) before a preempted job borrows again
    rows = [r for r in records(h) if r.job_id == victim]
    assert h.job(victim)["preemptions"] == 1
    assert [r.outcome for r in rows][:1] == ["preempted"]
    assert len(rows) == 2 and rows[1].start_s >= rows[0].end_s  # admitted again: a second interval


def test_a_crash_writes_no_record_and_the_retry_writes_each_once(h, monkeypatch):
    ids = [h.submit("team", gpu=1) for _ in range(3)]
    original = Writes.apply

    def crash(self, conn):
        original(self, conn)  # states and records written, then the process "dies" before the commit
        raise RuntimeError("power cut")

    with monkeypatch.context() as m:
        m.setattr(Writes, "apply", crash)
        with pytest.raises(RuntimeError):
            h.cycle()
    assert records(h) == []
    h.cycle()
    assert sorted(r.job_id for r in records(h)) == ids
    # A replayed admission (same job, same time) does not write a second record.
    w = Writes()
    r = records(h)[0]
    w.admit(r.job_id, r.start_s, r.pool_id, [], "again")
    with transaction(h.client.app.state.allot.sessions) as s:
        metering.write_intervals(s.connection(), w)
    assert len(records(h)) == 3


def test_live_usage_and_rollups_by_quota_ancestry_pool_model_and_day(h):
    job = h.submit("team", gpu=2, runtime_s=7200)
    h.cycle()
    h.cycle(0.5)
    live = h.get("/usage/live")["items"]
    assert [(i["job_id"], i["quota"], i["gpu"]) for i in live] == [(job, "team", 2.0)]
    by_quota = {i["key"]: i for i in h.get("/usage", params={"by": "quota", "from": "2000-01-01", "to": "2100-01-01"})["items"]}
    assert set(by_quota) == {"team", "org"}  # a job counts on its quota and every ancestor
    assert by_quota["team"]["gpu_hours"] == by_quota["org"]["gpu_hours"] > 0
    assert by_quota["team"]["running"] == 1
    assert [i["key"] for i in h.get("/usage", params={"by": "pool", "from": "2000-01-01", "to": "2100-01-01"})["items"]] == ["sim/default"]
    assert [i["key"] for i in h.get("/usage", params={"by": "model", "from": "2000-01-01", "to": "2100-01-01"})["items"]] == ["H100"]
    days = h.get("/usage", params={"by": "day", "from": "2000-01-01", "to": "2100-01-01"})["items"]
    assert days and all(len(d["key"]) == 10 for d in days)
    assert h.client.get(f"{API}/usage", params={"by": "colour"}, headers=h.headers).status_code == 422
    r = h.client.get(f"{API}/usage", params={"from": "2026-12-01", "to": "2026-11-01"}, headers=h.headers)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "to"


def test_users_see_their_own_usage_and_managers_their_clusters(h, client):
    make_user(client, h.headers, "ann")
    make_user(client, h.headers, "bob")
    for who in ("ann", "bob"):
        h.put(f"/clusters/sim/users/{who}", {"role": "user"})
        h.put(f"/quotas/team/bindings/users/{who}", status=204)
    ann, bob = login(client, "ann", "Passw0rd!"), login(client, "bob", "Passw0rd!")
    h.submit("team", gpu=1, headers=ann)
    h.submit("team", gpu=1, headers=bob)
    h.cycle()
    params = {"by": "user", "from": "2000-01-01", "to": "2100-01-01"}
    assert [i["key"] for i in h.get("/usage", params=params, headers=ann)["items"]] == ["ann"]
    assert sorted(i["key"] for i in h.get("/usage", params=params)["items"]) == ["ann", "bob"]
    h.put("/clusters/sim/users/bob", {"role": "manager"})
    bob = login(client, "bob", "Passw0rd!")
    assert sorted(i["key"] for i in h.get("/usage", params=params, headers=bob)["items"]) == ["ann", "bob"]


def test_recalculation_repairs_records_and_reports_each_correction(h):
    running = h.submit("team", gpu=1, runtime_s=1000)
    done = h.submit("team", gpu=1, runtime_s=10)
    h.settle(2, 0.5)
    h.cycle(20.0)
    assert h.states([running, done]) == ["running", "succeeded"]
    state = h.client.app.state.allot
    with transaction(state.sessions) as s:  # outside the scheduler: a lost record and one left open
        s.execute(delete(UsageRecord).where(UsageRecord.job_id == running))
        s.execute(update(UsageRecord).where(UsageRecord.job_id == done).values(end_s=None, outcome=None))
    out = h.post("/usage/recalculate")
    assert out["total"] == 2
    assert any(f"job {running}: added its missing usage interval" in c for c in out["corrections"])
    assert any(f"job {done}: closed its open usage interval" in c for c in out["corrections"])
    rows = {r.job_id: r for r in records(h)}
    with state.sessions() as s:
        finished = s.scalar(select(Job.finished_at).where(Job.id == done)).timestamp()
    assert rows[done].end_s == pytest.approx(finished) and rows[running].end_s is None
    assert h.post("/usage/recalculate")["total"] == 0  # nothing left to correct
    h.cycle()  # the loop builds the clusters again
    again = h.post("/clusters/sim/usage/recalculate")
    assert again["total"] == 0  # and the loop rebuilt the cluster, asking its engine (engines' truth):
    assert again["engines"][0].startswith("cluster sim: its state is rebuilt from the database")
    h.cycle()
    assert h.job(running)["state"] == "running" and "sim" in {rt.name for rt in h.scheduler.runtimes.values()}


def test_recalculation_returns_and_audits_what_the_engines_corrected(h, monkeypatch):
    """The engine's own record of a job disagrees with the records (it ended there while the database says it still
    runs): the recalculation corrects the job and its interval, and says so per interval, before and after."""
    ended = h.submit("team", gpu=2, runtime_s=1000)
    running = h.submit("team", gpu=1, runtime_s=1000)
    h.settle(2, 0.5)
    h.cycle(60.0)
    assert h.states([ended, running]) == ["running", "running"]
    start = {r.job_id: r.start_s for r in records(h)}[ended]
    engine = next(h.scheduler.backends[cid] for cid, rt in h.scheduler.runtimes.items() if rt.name == "sim")
    asked = engine.reattach

    def reattach(launch, now):  # the engine's accounting: the first job ended 30 s after its start
        if launch.job_id == ended:
            return Reattached(ENDED, exit_code=0, started_at=start, ended_at=start + 30.0)
        return asked(launch, now)

    monkeypatch.setattr(engine, "reattach", reattach)
    out = h.post("/clusters/sim/usage/recalculate")
    assert out["corrections"] == [] and out["total"] == 1
    [c] = out["engine_corrections"]
    assert (c["job"], c["cluster"], c["outcome"]) == (ended, "sim", "ended")
    assert ts(c["interval_start"]) == pytest.approx(start, abs=1)
    assert c["before"]["state"] == "running" and c["before"]["end"] is None and c["before"]["hours"] > 60 / 3600
    assert c["after"]["state"] == "succeeded" and ts(c["after"]["end"]) == pytest.approx(start + 30.0, abs=1)
    assert c["after"]["hours"] == pytest.approx(30 / 3600, rel=0.05)
    assert c["after"]["gpu_hours"] == pytest.approx(2 * 30 / 3600, rel=0.05)
    rows = {r.job_id: r for r in records(h)}  # the record follows the engine; the other job's stays open
    assert rows[ended].end_s == pytest.approx(start + 30.0) and rows[ended].outcome == "succeeded"
    assert rows[running].end_s is None and h.states([ended, running]) == ["succeeded", "running"]
    event = h.get("/audit", params={"action": "usage.recalculate"})["items"][0]
    key = next(k for k in event["changes"]["before"] if k.startswith(f"job {ended} interval from"))
    assert event["changes"]["before"][key].startswith("running, open")
    assert event["changes"]["after"][key].startswith("succeeded, closed at")
    assert event["changes"]["total"] == 1
    again = h.post("/usage/recalculate")  # the engine and the records agree now
    assert again["total"] == 0 and again["engine_corrections"] == []


def test_the_cli_lists_what_the_engines_corrected(h, monkeypatch, tmp_path):
    from cli_inprocess import cli_runner

    job = h.submit("team", gpu=1, runtime_s=1000)
    h.settle(2, 0.5)
    engine = next(h.scheduler.backends[cid] for cid, rt in h.scheduler.runtimes.items() if rt.name == "sim")
    asked = engine.reattach
    monkeypatch.setattr(engine, "reattach", lambda launch, now: Reattached(LOST, message="the node rebooted")
                        if launch.job_id == job else asked(launch, now))
    code, out = cli_runner(h.client, monkeypatch, tmp_path)(h.headers)("admin", "recalculate-usage", "sim")
    assert code == 0, out
    assert f"cluster sim: job {job}: its engine lost it; running, interval open" in out
    assert "-> failed, interval closed" in out and "1 correction(s)" in out


def test_usage_csv_export_streams_every_record(h):
    ids = [h.submit("team", gpu=1, runtime_s=5) for _ in range(3)]
    h.settle(3, 3.0)
    r = h.client.get(f"{API}/exports/usage.csv", params={"from": "2000-01-01", "to": "2100-01-01", "filename": "nov usage.csv"},
                     headers=h.headers)
    assert r.status_code == 200 and 'filename="nov usage.csv"' in r.headers["content-disposition"]
    lines = r.text.strip().splitlines()
    assert lines[0].startswith("job_id,user,cluster,quota,pool,device_model,gpu")
    assert sorted(int(line.split(",")[0]) for line in lines[1:]) == ids
    bad = h.client.get(f"{API}/exports/usage.csv", params={"filename": "../x"}, headers=h.headers)
    assert bad.status_code == 422


def test_resource_policy_and_job_exports_stream_with_the_callers_file_name(h, client):
    ids = [h.submit("team", gpu=1, runtime_s=5) for _ in range(2)]
    h.cycle()
    long_name = "q" * 251 + ".csv"  # Backend.AI allows file names up to 255 characters
    r = client.get(f"{API}/exports/jobs.csv", params={"filename": long_name}, headers=h.headers)
    assert r.status_code == 200 and f'filename="{long_name}"' in r.headers["content-disposition"]
    lines = r.text.strip().splitlines()
    assert lines[0].startswith("id,name,owner,cluster,quota,state")
    assert [int(line.split(",")[0]) for line in lines[1:]] == ids
    assert client.get(f"{API}/exports/jobs.csv", params={"filename": "q" * 256}, headers=h.headers).status_code == 422
    r = client.get(f"{API}/exports/jobs.csv", params={"filename": "Übersicht.csv"}, headers=h.headers)
    assert r.status_code == 200 and "filename*=UTF-8''%C3%9Cbersicht.csv" in r.headers["content-disposition"]
    r = client.get(f"{API}/exports/resource-policies.csv", headers=h.headers)
    assert r.status_code == 200 and r.text.startswith("name,description,max_cpu,")
    assert 'filename="resource-policies.csv"' in r.headers["content-disposition"]
    assert any(line.startswith("default,") for line in r.text.splitlines())


def test_metrics_per_quota_and_pool_and_time_to_admission(h, client):
    h.put("/quotas/org/budgets/gpu", {"period": "monthly", "amount": "100h"})
    for _ in range(5):
        h.submit("team", gpu=1)  # 4 fit, one waits
    h.cycle()
    text = client.get("/metrics").text
    assert 'allot_quota_guarantee{cluster="sim",pool="*",quota="team",resource="gpu"} 4000.0' in text
    assert 'allot_quota_limit{cluster="sim",pool="*",quota="org",resource="gpu"} 4000.0' in text
    assert 'allot_quota_in_use{cluster="sim",pool="default",quota="team",resource="gpu"} 4000.0' in text
    assert 'allot_quota_queued_jobs{cluster="sim",quota="team"} 1.0' in text
    assert 'allot_pool_in_use{cluster="sim",pool="default",resource="gpu"} 4000.0' in text
    assert 'allot_quota_budget_left_hours{cluster="sim",period="monthly",quota="org",resource="gpu"}' in text
    assert 'allot_time_to_admission_seconds_count{cluster="sim",quota="team"} 4.0' in text


def test_pool_allocation_against_capacity_per_day(h):
    job = h.submit("team", gpu=2, runtime_s=10)
    h.settle(3, 10.0)
    now = time.time()
    with transaction(h.client.app.state.allot.sessions) as s:  # half an hour on 2 GPUs that ended half an hour ago
        s.execute(update(UsageRecord).where(UsageRecord.job_id == job).values(start_s=now - 3600, end_s=now - 1800))
    r = h.client.get(f"{API}/usage/pools", params={"from": "2000-01-01"}, headers=h.headers)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "from"
    since = datetime.fromtimestamp(now - 86400, UTC).date().isoformat()
    items = h.get("/usage/pools", params={"from": since})["items"]
    mine = [i for i in items if i["pool"] == "sim/default"]
    assert sum(i["allocated_gpu_hours"] for i in mine) == pytest.approx(1.0, abs=1e-3)
    assert all(i["capacity_gpu_hours"] <= 4 * 24 for i in mine) and mine[-1]["capacity_gpu_hours"] > 0
    assert mine[-1]["allocated_share"] is not None


def test_pool_capacity_follows_the_inventory_changes_of_the_period(h):
    """Capacity is what the pool held at each moment (its history), not what it holds today: 4 GPUs for an hour,
    then 8 for an hour, is 12 GPU-hours, whatever the pool holds now."""
    h.node("gpu-02", gpus=4)
    with h.client.app.state.allot.sessions() as s:
        pool = s.scalar(select(Pool.id).join(Cluster, Cluster.id == Pool.cluster_id)
                        .where(Cluster.name == "sim", Pool.name == "default"))
        rows = list(s.scalars(select(PoolCapacityChange).where(PoolCapacityChange.pool_id == pool)
                              .order_by(PoolCapacityChange.id)))
    assert [r.devices for r in rows][-2:] == [4, 8]  # one row per change, written by the inventory service
    now = time.time()
    with transaction(h.client.app.state.allot.sessions) as s:  # the two changes an hour apart, in the past
        s.execute(update(PoolCapacityChange).where(PoolCapacityChange.pool_id == pool, PoolCapacityChange.devices == 4)
                  .values(at_s=now - 7200))
        s.execute(update(PoolCapacityChange).where(PoolCapacityChange.pool_id == pool, PoolCapacityChange.devices == 8)
                  .values(at_s=now - 3600))
        s.execute(update(PoolCapacityChange).where(PoolCapacityChange.pool_id == pool, PoolCapacityChange.devices == 0)
                  .values(at_s=now - 9000))
    since = datetime.fromtimestamp(now - 3 * 86400, UTC).date().isoformat()
    items = [i for i in h.get("/usage/pools", params={"from": since})["items"] if i["pool"] == "sim/default"]
    assert sum(i["capacity_gpu_hours"] for i in items) == pytest.approx(12.0, abs=0.05)
    page = h.client.get("/ui/usage", params={"start": since}, headers=h.headers)  # the console's usage page too
    assert page.status_code == 200 and 'data-testid="pool-utilisation"' in page.text
    row = page.text.split("<td>sim/default</td>")[1].split("</tr>")[0]
    assert float(row.split("<td>")[2].split("</td>")[0]) == pytest.approx(12.0, abs=0.05)
    assert '"pool_share"' in page.text and 'id="usage-pools"' in page.text
    assert h.client.delete(f"{API}/clusters/sim/nodes/gpu-02", headers=h.headers).status_code == 204  # 4 again
    with h.client.app.state.allot.sessions() as s:
        last = s.scalars(select(PoolCapacityChange.devices).where(PoolCapacityChange.pool_id == pool)
                         .order_by(PoolCapacityChange.id.desc())).first()
    assert last == 4


def test_the_recalculation_starts_the_history_of_a_pool_that_has_none(h):
    """A pool whose inventory never changed since history was kept: the recalculation (also run at start-up) writes
    what it holds from its creation, so that its next change does not erase what it held before."""
    with transaction(h.client.app.state.allot.sessions) as s:
        s.execute(delete(PoolCapacityChange))
    out = h.post("/usage/recalculate")
    assert "pool default: its capacity history starts at its creation with 4 device(s)" in out["corrections"]
    h.node("gpu-02", gpus=2)
    with h.client.app.state.allot.sessions() as s:
        pool = s.scalar(select(Pool).join(Cluster, Cluster.id == Pool.cluster_id)
                        .where(Cluster.name == "sim", Pool.name == "default"))
        rows = list(s.scalars(select(PoolCapacityChange).where(PoolCapacityChange.pool_id == pool.id)
                              .order_by(PoolCapacityChange.id)))
    assert [r.devices for r in rows] == [4, 6]
    assert rows[0].at_s == pytest.approx(pool.created_at.replace(tzinfo=UTC).timestamp(), abs=1)


def test_a_restart_continues_open_intervals_and_closes_those_of_jobs_that_ended(h):
    from allotment.scheduler.loop import Scheduler

    running = h.submit("team", gpu=1, runtime_s=100)
    ended = h.submit("team", gpu=1, runtime_s=100)
    h.settle(2, 0.5)
    state = h.client.app.state.allot
    finished = h.now + 1
    with transaction(state.sessions) as s:  # the job ended, but the process died before its record was closed
        s.execute(update(Job).where(Job.id == ended).values(state="succeeded", finished_at=datetime.fromtimestamp(
            finished, UTC)))
    metering.repair_at_start(state.sessions)  # what start_scheduler runs before the loop's first cycle
    h.scheduler = Scheduler(state)  # the server restarts
    h.settle(2, 0.5)
    h.cycle(100.0)
    rows = {r.job_id: r for r in records(h)}
    assert len(records(h)) == 2  # nothing counted twice
    assert rows[ended].end_s == pytest.approx(finished) and rows[ended].outcome == "succeeded"
    assert h.job(running)["state"] == "succeeded"
    assert rows[running].end_s == pytest.approx(ts(h.job(running)["finished_at"]), abs=1e-5)


def test_live_usage_reads_only_the_open_intervals_from_the_database(h):
    """The closed intervals of the window stay in the database: a long month of them is not read to find the few
    jobs running now."""
    from sched_helpers import statements_sent

    # Short steps: live usage counts up to the wall clock's now, and the cycles' clock must not run ahead of it.
    done = [h.submit("team", gpu=1, runtime_s=0.1) for _ in range(3)]
    h.cycle()
    h.cycle(0.2)  # the three end: their intervals close
    running = h.submit("team", gpu=1, runtime_s=7200)
    h.cycle(0.05)
    state = h.client.app.state.allot
    live: list = []
    sent = statements_sent(state.engine, r"\bFROM usage_records\b",
                           lambda: live.extend(h.get("/usage/live")["items"]))
    assert [i["job_id"] for i in live] == [running] and len(records(h)) == len(done) + 1
    with state.engine.connect() as conn:  # what the database answers to the statement the report sent
        rows = [row for statement, parameters in sent for row in conn.exec_driver_sql(statement, parameters)]
    assert [row.job_id for row in rows] == [running]
