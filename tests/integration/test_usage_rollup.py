"""The usage report's totals per user, group, workspace, quota, pool, model and cluster are summed by the database
(accounting/service.py, rollup): they must be what summing each record's seconds inside the window gives, for records
that start before the window, end after it, are still open, or lie outside it."""

from __future__ import annotations

import random
import time
from collections import defaultdict

import pytest
from sched_helpers import API, Harness, statements_sent
from sqlalchemy import insert, select

from allotment.accounting import service
from allotment.accounting.models import UsageRecord
from allotment.identity.models import User
from allotment.inventory.models import Cluster, Pool
from allotment.quotas.models import Quota

GIB = 1 << 30


@pytest.fixture
def h(client, admin_headers) -> Harness:
    h = Harness(client, admin_headers)
    h.node("gpu-01", gpus=8, model="H100")
    h.quota("org", [{"resource": "gpu", "guarantee": 8, "limit": 8}])
    for team in ("red", "blue"):
        h.quota(team, [{"resource": "gpu", "guarantee": 4, "limit": 8}], parent="org")
    return h


def seconds_inside(start: float, end: float | None, lo: float, hi: float, now: float) -> float:
    stop = now if end is None else end
    return max(min(stop, hi) - max(start, lo), 0.0)


def test_the_databases_totals_are_each_records_seconds_summed(h):
    state = h.client.app.state.allot
    with state.sessions() as s:
        cluster = s.scalar(select(Cluster.id))
        pool = s.scalar(select(Pool.id).where(Pool.cluster_id == cluster))
        quotas = {name: qid for qid, name in s.execute(select(Quota.id, Quota.name))}
        admin = s.scalar(select(User.id).where(User.username == "admin"))
    now = time.time()
    lo, hi = now - 10 * 86400, now - 86400  # a window that ended a day ago: open records reach past it
    rng = random.Random(11)
    rows = []
    for i in range(400):
        start = rng.uniform(lo - 3 * 86400, now - 60)
        end = None if i % 9 == 0 else start + rng.uniform(1, 4 * 86400)
        rows.append({"job_id": 10_000 + i, "cluster_id": cluster, "owner_id": admin if i % 3 else 999,
                     "quota_id": quotas[("red", "blue", "org")[i % 3]], "pool_id": pool if i % 4 else None,
                     "device_model": ("H100", "A100", None)[i % 3], "gpu_milli": rng.choice((500, 1000, 8000)),
                     "cpu_milli": rng.choice((1000, 16000)), "memory_bytes": rng.choice((8, 64)) * GIB,
                     "start_s": start, "end_s": end, "outcome": None if end is None else "succeeded"})
    with state.engine.begin() as conn:
        conn.execute(insert(UsageRecord.__table__), rows)
    window = service.Window(lo, hi)
    inside = [r for r in rows if r["start_s"] < hi and (r["end_s"] is None or r["end_s"] > lo)]
    with state.sessions() as s:
        names = service.Names(s)
        for by in ("user", "group", "workspace", "quota", "pool", "model", "cluster"):
            want: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0, 0, 0])
            for r in inside:
                secs = seconds_inside(r["start_s"], r["end_s"], lo, hi, now)
                for key in service._keys(by, type("Row", (), {k: r[k] for k in r}), names):
                    t = want[key]
                    t[0] += r["gpu_milli"] / 1000 * secs
                    t[1] += r["cpu_milli"] / 1000 * secs
                    t[2] += r["memory_bytes"] / GIB * secs
                    t[3] += 1
                    t[4] += r["end_s"] is None
            got = {item["key"]: item for item in service.rollup(s, by, window, now)}
            assert set(got) == set(want), by
            for key, (gpu, cpu, memory, intervals, running) in want.items():
                item = got[key]
                assert item["gpu_hours"] == pytest.approx(gpu / 3600, abs=2e-6), (by, key)
                assert item["cpu_hours"] == pytest.approx(cpu / 3600, abs=2e-6), (by, key)
                assert item["memory_gib_hours"] == pytest.approx(memory / 3600, abs=2e-6), (by, key)
                assert (item["intervals"], item["running"]) == (intervals, running), (by, key)
    assert {k for k in want} and len(inside) < len(rows)  # the window cut some records out


def test_the_database_sends_one_row_per_key_not_one_per_record(h):
    for _ in range(6):
        h.submit("red", gpu=1)
    h.cycle()
    state = h.client.app.state.allot
    sent = statements_sent(state.engine, r"\bFROM usage_records\b",
                           lambda: h.client.get(f"{API}/usage", params={"by": "quota"}, headers=h.headers))
    with state.engine.connect() as conn:
        rows = [row for statement, parameters in sent for row in conn.exec_driver_sql(statement, parameters)]
    assert len(rows) == 1  # six records of quota red: one total
