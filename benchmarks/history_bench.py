"""The jobs list of a SQLite server with a long history, with and without the planner's statistics (db_statistics.py).

It builds one database through the real app: a simulated cluster, a quota and a job submitted through the API, then
`--history` finished copies of that job (one INSERT ... SELECT, as a long-running installation accumulates them) and
`--queued` jobs submitted after them. Two copies of the file are read: one as SQLite finds it, never analysed, and one
after db_statistics.refresh(). Each listing runs through workloads.service.list_jobs (the page and its total, as the
API and the console ask) on both copies in turn, `--repeat` times, and the median of each is reported with the
ratio. It also reports how long the refresh took.

    .venv/bin/python benchmarks/history_bench.py [--history 400000] [--queued 5] [--repeat 15] [--keep DIR]

--keep DIR leaves the database, never analysed, as DIR/allotment.db: a server started with ALLOT_DATA_DIR=DIR (admin,
password Bench-in-process-1!) then runs `allot bench scenario --url` over that history.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from inprocess_app import poster, signed_in, simulated_cluster  # beside this script
from sqlalchemy import text

from allotment import db_statistics
from allotment.db import make_engine, make_session_factory, transaction
from allotment.identity.authn import load_principal
from allotment.identity.models import User
from allotment.workloads.models import Job
from allotment.workloads.service import list_jobs

LISTINGS = {"queued": {"state": "queued"}, "queued,running": {"state": "queued,running"},
            "quota's jobs": {"quota": "team"}, "everything (first page)": {}}


def build(directory: Path, history: int, queued: int) -> Path:
    with signed_in(directory) as (app, client, headers):
        post = poster(client, headers)
        simulated_cluster(post)
        first = post("/jobs", {"quota": "team", "command": ["train"], "gpu": 1})["id"]
        state = app.state.allot
        columns = [c.name for c in Job.__table__.columns if c.name != "id"]
        copied = ", ".join({"seq": "jobs.seq + g", "state": "'succeeded'", "finished_at": "jobs.submitted_at"}
                           .get(c, f"jobs.{c}") for c in columns)
        series = (f"(WITH RECURSIVE n(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM n WHERE g < {history}) "
                  "SELECT g FROM n)")
        with transaction(state.sessions) as s:
            s.execute(text(f"INSERT INTO jobs ({', '.join(columns)}) SELECT {copied} FROM jobs, {series} "
                           "WHERE jobs.id = :id"), {"id": first})
        for _ in range(queued):
            post("/jobs", {"quota": "team", "command": ["train"], "gpu": 1})
    return directory / "allotment.db"


def medians_ms(engines: list, filters: dict, repeat: int) -> list[tuple[float, int]]:
    """The median time of the listing on each engine, the engines taking turns."""
    factories = [make_session_factory(engine) for engine in engines]
    times: list[list[float]] = [[] for _ in engines]
    totals = [0] * len(engines)
    for _ in range(repeat):
        for i, sessions in enumerate(factories):
            with sessions() as s:
                principal = load_principal(s, s.query(User).filter_by(username="admin").one())
                began = time.perf_counter()
                _rows, totals[i] = list_jobs(s, principal, **filters)
                times[i].append((time.perf_counter() - began) * 1000)
    return [(statistics.median(t), total) for t, total in zip(times, totals, strict=True)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--history", type=int, default=400_000)
    parser.add_argument("--queued", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--keep", type=Path, help="leave the database, never analysed, as KEEP/allotment.db")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="allot-history-") as tmp:
        built = build(Path(tmp) / "built", args.history, args.queued)
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            shutil.copy(built, args.keep / "allotment.db")
        copies = {}
        for name in ("without", "with"):
            (Path(tmp) / name).mkdir()
            path = Path(tmp) / name / "allotment.db"
            shutil.copy(built, path)
            copies[name] = make_engine(f"sqlite:///{path}")
        began = time.perf_counter()
        db_statistics.refresh(copies["with"])
        refresh_ms = (time.perf_counter() - began) * 1000
        report: dict = {"history": args.history, "queued": args.queued, "refresh_ms": round(refresh_ms, 1),
                        "listings": {}}
        for label, filters in LISTINGS.items():
            (without, total), (with_stats, total_with) = medians_ms([copies["without"], copies["with"]], filters,
                                                                    args.repeat)
            assert total == total_with, (label, total, total_with)
            report["listings"][label] = {"total": total, "without_ms": round(without, 2),
                                         "with_ms": round(with_stats, 2), "ratio": round(without / with_stats, 1)}
        for engine in copies.values():
            engine.dispose()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
