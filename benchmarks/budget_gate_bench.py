"""Benchmark: what hour budgets add to admission, in the scheduler's budget gate (accounting/gate.py), with a budget
on every quota of Kueue's large-scale tree.

Run:  python benchmarks/budget_gate_bench.py            (1,010 quotas, 100,000 jobs; prints one JSON object)

The gate sits before core (scheduler/gates.py): core's own decisions per second (benchmarks/core_bench.py) do not
change. A check reads the cells the last refresh built for the job's quota chain and owner (what each budget has
used, kept current by each reservation) and compares what the job may use with each: constant work per budget on the
job's path, whatever the number of quotas, jobs or records. Here 10 cohorts x 100 leaf quotas each carry a monthly GPU budget and a weekly CPU budget, every user an
hour quota; each job is checked against its user's quota and the budgets of its quota and its cohort (safe mode,
time limits of 1 to 8 hours), then released. Reported: checks per second and microseconds per check, and the cost of
a refresh after 100,000 usage records (the full read, then a read of what changed since).
"""

from __future__ import annotations

import json
import os
import platform
import random
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, insert
from sqlalchemy.orm import sessionmaker

from allotment.accounting.gate import BudgetGate
from allotment.accounting.models import QuotaBudget, UsageRecord, UserQuota
from allotment.db import Base
from allotment.quotas.models import Quota
from allotment.scheduler.gates import GateJob

COHORTS, LEAVES, JOBS, USERS, RECORDS = 10, 100, 100_000, 200, 100_000


def build(path: Path):
    engine = create_engine(f"sqlite:///{path}")
    tables = [Quota.__table__, QuotaBudget.__table__, UserQuota.__table__, UsageRecord.__table__]
    Base.metadata.create_all(engine, tables=[t for t in Base.metadata.sorted_tables if t in tables
                                             or t.name in ("clusters", "users")])
    now = time.time()
    quota_rows, budget_rows, leaves = [], [], []
    qid = 0
    for c in range(COHORTS):
        qid += 1
        cohort = qid
        quota_rows.append({"id": cohort, "name": f"cohort-{c}", "cluster_id": 1, "parent_id": None})
        for i in range(LEAVES):
            qid += 1
            leaves.append(qid)
            quota_rows.append({"id": qid, "name": f"cq-{c}-{i}", "cluster_id": 1, "parent_id": cohort})
    for q in range(1, qid + 1):
        budget_rows.append({"quota_id": q, "resource": "gpu", "period": "monthly", "amount_s": 10**9,
                            "granted_at": now})
        budget_rows.append({"quota_id": q, "resource": "cpu", "period": "weekly", "amount_s": 10**9,
                            "granted_at": now})
    rng = random.Random(3)
    records = [{"job_id": i, "cluster_id": 1, "owner_id": 1 + i % USERS, "quota_id": rng.choice(leaves),
                "gpu_milli": 1000, "cpu_milli": 4000, "memory_bytes": 0, "start_s": now - 3600 - rng.random() * 3600,
                "end_s": None if i % 50 == 0 else now - rng.random() * 3600, "outcome": None}
               for i in range(RECORDS)]
    with engine.begin() as conn:
        conn.execute(insert(Quota.__table__), [{**r, "weight": 1.0, "child_preemption": False, "reclaim": "never",
                                                "within_quota_preemption": "never", "min_runtime_s": 0}
                                               for r in quota_rows])
        conn.execute(insert(QuotaBudget.__table__), budget_rows)
        # Users' hour quotas unlimited here: the budgets on the tree are what is measured (the built-in 100 GPU
        # hours would hold every job of these busy users, and a held job's reason costs more than a check).
        conn.execute(insert(UserQuota.__table__), [{"cluster_id": 1, "user_id": None, "gpu_s": None, "cpu_s": None,
                                                    "updated_at": datetime.now(UTC)}])
        conn.execute(insert(UsageRecord.__table__), records)
    return engine, leaves


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        engine, leaves = build(Path(tmp) / "gate.db")
        sessions = sessionmaker(engine)
        gate = BudgetGate(safe=True, refresh_s=0.0)
        with sessions() as s:
            began = time.perf_counter()
            gate.refresh(s)
            full_s = time.perf_counter() - began
            with engine.begin() as conn:  # a few more records, as between two reads
                conn.execute(insert(UsageRecord.__table__), [
                    {"job_id": RECORDS + i, "cluster_id": 1, "owner_id": 1, "quota_id": leaves[i], "gpu_milli": 1000,
                     "cpu_milli": 0, "memory_bytes": 0, "start_s": time.time() - 60, "end_s": time.time(),
                     "outcome": "succeeded"} for i in range(100)])
            began = time.perf_counter()
            gate.refresh(s)
            delta_s = time.perf_counter() - began
        rng = random.Random(5)
        jobs = [GateJob(1, i, 1 + i % USERS, rng.choice(leaves), rng.choice((500, 1000, 2000, 4000)),
                        rng.choice((1000, 4000)), 0, rng.choice((3600, 4 * 3600, 8 * 3600)))
                for i in range(JOBS)]
        began = time.perf_counter()
        held = 0
        for job in jobs:
            if gate.hold(job) is not None:
                held += 1
        hold_s = time.perf_counter() - began
        began = time.perf_counter()
        for job in jobs:
            gate.released(job)
        release_s = time.perf_counter() - began
    print(json.dumps({
        "quotas": COHORTS * (LEAVES + 1), "budgets": 2 * COHORTS * (LEAVES + 1), "jobs": JOBS, "held": held,
        "checks_per_s": round(JOBS / hold_s), "us_per_check": round(hold_s / JOBS * 1e6, 2),
        "us_per_release": round(release_s / JOBS * 1e6, 2), "records": RECORDS,
        "first_refresh_ms": round(full_s * 1000, 1), "next_refresh_ms": round(delta_s * 1000, 1),
        "python": platform.python_version(), "cpus": os.cpu_count(),
    }, indent=2))


if __name__ == "__main__":
    main()
