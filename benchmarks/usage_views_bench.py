"""The usage views over a month of closed intervals: GET /usage/live (the jobs holding resources now) and the usage
report, GET /usage?by=user|quota|day (totals since the start of the month).

It builds a database through the app (SQLite, scheduler off): `--open` jobs submitted through the API and marked
running, each with an open interval, and `--closed` intervals closed since the start of this month (1-8 GPU jobs of
one user). It then times each request in process through the real app (`--repeat` times; the median and the
slowest). Compare trees by running it with each on PYTHONPATH.

    .venv/bin/python benchmarks/usage_views_bench.py [--closed 50000] [--open 20] [--repeat 9]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from inprocess_app import poster, signed_in, simulated_cluster  # beside this script
from sqlalchemy import insert, update

from allotment.accounting.models import UsageRecord
from allotment.workloads.models import RUNNING, Job

VIEWS = {"live": ("/api/v1/usage/live", {}), "report by user": ("/api/v1/usage", {"by": "user"}),
         "report by quota": ("/api/v1/usage", {"by": "quota"}), "report by day": ("/api/v1/usage", {"by": "day"})}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--closed", type=int, default=50_000)
    parser.add_argument("--open", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()
    rng = random.Random(7)
    now = time.time()
    month = datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0).timestamp()
    with (tempfile.TemporaryDirectory(prefix="allot-usage-views-") as tmp,
          signed_in(Path(tmp)) as (app, client, headers)):
        post = poster(client, headers)
        simulated_cluster(post, gpu_limit=1000)
        running = [post("/jobs", {"quota": "team", "command": ["train"], "gpu": 1})["id"] for _ in range(args.open)]
        with app.state.allot.engine.begin() as conn:
            conn.execute(update(Job).where(Job.id.in_(running)).values(state=RUNNING))
        rows = []
        for i in range(args.closed + args.open):
            start = rng.uniform(month, now - 60)
            end = None if i >= args.closed else min(start + rng.uniform(60, 7200), now - 1)
            rows.append({"job_id": running[i - args.closed] if end is None else 10**6 + i, "cluster_id": 1,
                         "owner_id": 1, "quota_id": 1, "pool_id": 1,
                         "device_model": "H100", "gpu_milli": rng.choice((1000, 2000, 8000)), "cpu_milli": 4000,
                         "memory_bytes": 32 << 30, "start_s": start, "end_s": end,
                         "outcome": None if end is None else "succeeded"})
        with app.state.allot.engine.begin() as conn:
            conn.execute(insert(UsageRecord.__table__), rows)
        times: dict[str, list[float]] = {name: [] for name in VIEWS}
        found = 0
        for _ in range(args.repeat):
            for name, (path, params) in VIEWS.items():
                began = time.perf_counter()
                r = client.get(path, params=params, headers=headers)
                times[name].append((time.perf_counter() - began) * 1000)
                r.raise_for_status()
                if name == "live":
                    found = r.json()["total"]
    if found != args.open:
        raise SystemExit(f"listed {found} live jobs of {args.open}")
    print(json.dumps({"closed": args.closed, "open": args.open, "live_jobs": found, "views": {
        name: {"median_ms": round(statistics.median(t), 1), "slowest_ms": round(max(t), 1)}
        for name, t in times.items()}}, indent=2))


if __name__ == "__main__":
    main()
