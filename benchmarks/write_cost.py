"""What the jobs table's writes cost the database, in figures that do not swing with the machine's load.

Runs `path_profile.py`'s in-process path (ingestion through the real app, then the scheduler's cycles in simulated
time) and reports, next to its CPU and statement times, what the database itself did:

- PostgreSQL (a throwaway server with pg_stat_statements loaded): per statement on `jobs` and on `usage_records`, its
  calls, rows, execution time, WAL records, full-page images and WAL bytes; for each table, rows inserted, updated
  and updated HOT (an update that writes no index entry), its heap and index sizes, and the WAL of the whole run.
- SQLite: path_profile.py's CPU and statement times only.

    python benchmarks/write_cost.py benchmarks/scenarios/kueue-large-scale.yaml --database postgresql [--jobs N]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import path_profile

from allotment.bench.postgres import ThrowawayPostgres

STATS: dict = {}


class MeasuredPostgres(ThrowawayPostgres):
    """The throwaway server with pg_stat_statements loaded; its counters are read just before it stops."""

    def _run(self, *args: str) -> str:
        if args[0] == "pg_ctl" and "start" in args:
            args = tuple(a + " -c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all"
                         if a.startswith("-k ") else a for a in args)
        return super()._run(*args)

    def __enter__(self):
        super().__enter__()
        with self._connect() as conn:
            conn.execute("CREATE EXTENSION pg_stat_statements")
        return self

    def _connect(self):
        import psycopg

        return psycopg.connect(host=str(self.dir), port=self.port, user="allot", dbname="allot_bench", autocommit=True)

    def __exit__(self, *exc) -> None:
        if self.dir is not None and (self.dir / "data" / "postmaster.pid").exists():
            try:
                with self._connect() as conn:
                    STATS.update(read_postgres(conn))
            except Exception as err:  # noqa: BLE001 - the figures are optional; the server must still stop
                STATS["error"] = repr(err)
        super().__exit__(*exc)


TABLES = ("jobs", "usage_records")  # the tables the loop writes for every job


def read_postgres(conn) -> dict:
    out: dict = {}
    for name in TABLES:
        table = conn.execute("SELECT n_tup_ins, n_tup_upd, n_tup_hot_upd, n_tup_del FROM pg_stat_user_tables "
                             "WHERE relname = %s", (name,)).fetchone()
        indexes = conn.execute("SELECT indexrelname, pg_relation_size(indexrelid) FROM pg_stat_user_indexes "
                               "WHERE relname = %s ORDER BY 1", (name,)).fetchall()
        heap = conn.execute("SELECT pg_relation_size(%s::regclass)", (name,)).fetchone()[0]
        width = conn.execute(f"SELECT avg(pg_column_size(t.*))::int, (SELECT reloptions FROM pg_class "
                             f"WHERE relname = '{name}') FROM {name} t").fetchone()
        statements = conn.execute(
            "SELECT left(regexp_replace(query, '\\s+', ' ', 'g'), 90), calls, rows, "
            "round(total_exec_time::numeric, 1), wal_records, wal_fpi, wal_bytes, shared_blks_dirtied "
            "FROM pg_stat_statements WHERE query ILIKE %s AND (query ILIKE 'update%%' OR query ILIKE 'insert%%' "
            "OR query ILIKE 'copy%%') ORDER BY total_exec_time DESC LIMIT 12", (f"%{name}%",)).fetchall()
        out[name] = {
            "rows": {"inserted": table[0], "updated": table[1], "updated_hot": table[2], "deleted": table[3]},
            "row_bytes": width[0], "options": width[1],
            "sizes_kib": {"heap": heap // 1024, **{index: size // 1024 for index, size in indexes}},
            "writes": [{"query": q, "calls": c, "rows": r, "exec_ms": float(t), "wal_records": wr, "wal_fpi": wf,
                        "wal_bytes": int(wb), "blocks_dirtied": bd} for q, c, r, t, wr, wf, wb, bd in statements],
        }
    # Every statement the server ran, nested ones too (foreign-key checks run one per row and key): the heaviest.
    out["statements_top"] = [
        {"query": q, "calls": c, "rows": r, "exec_ms": float(t)} for q, c, r, t in conn.execute(
            "SELECT left(regexp_replace(query, '\\s+', ' ', 'g'), 110), calls, rows, "
            "round(total_exec_time::numeric, 1) FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 15")]
    wal = conn.execute("SELECT wal_records, wal_fpi, wal_bytes FROM pg_stat_wal").fetchone()
    all_time = conn.execute("SELECT round(sum(total_exec_time)::numeric, 1), sum(wal_bytes) FROM pg_stat_statements"
                            ).fetchone()
    out["wal_whole_run"] = {"records": wal[0], "full_page_images": wal[1], "bytes": int(wal[2])}
    out["statements_total"] = {"exec_ms": float(all_time[0] or 0), "wal_bytes": int(all_time[1] or 0)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenario")
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="postgresql")
    parser.add_argument("--jobs", type=int)
    parser.add_argument("--ingest-only", action="store_true", help="submit every job and run no scheduler cycle")
    parser.add_argument("--port", type=int, default=55491, help="the throwaway PostgreSQL's port (unix socket)")
    parser.add_argument("--fillfactor", type=int, help="PostgreSQL: set the jobs table's fillfactor to this after the "
                                                         "migration (to compare values without a new schema)")
    args = parser.parse_args()
    if args.fillfactor:
        import allotment.migrate

        upgrade = allotment.migrate.upgrade

        def upgrade_then_set(url: str, *rest) -> None:
            upgrade(url, *rest)
            from sqlalchemy import create_engine, text

            with create_engine(url).begin() as conn:
                conn.execute(text(f"ALTER TABLE jobs SET (fillfactor = {int(args.fillfactor)})"))

        allotment.migrate.upgrade = upgrade_then_set
    path_profile.ThrowawayPostgres = lambda: MeasuredPostgres(port=args.port)  # type: ignore[assignment]
    result = path_profile.run(args.scenario, args.database, 0.05, None, args.jobs, args.ingest_only, False, True)
    out = {"database": result["database"], "jobs": result["jobs"],
           "ingest": {k: result["ingest"][k] for k in ("cpu_us_per_job", "database_cpu_us_per_job", "sql")
                      if k in result["ingest"]},
           "loop": {k: result["loop"][k] for k in ("cpu_us_per_job", "database_cpu_us_per_job", "sql")
                    if k in result["loop"]}}
    out.update(STATS)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
