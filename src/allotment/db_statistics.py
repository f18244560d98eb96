"""The query planner's statistics on SQLite: gathered at start-up and every hour.

SQLite plans every statement from the statistics ANALYZE writes (sqlite_stat1), and nothing writes them unless asked.
Without them it guesses that an index narrows a search by a fixed factor, whatever the index holds. The index of
active jobs (workloads/models.py) holds the queue, not the history: listing 6 queued jobs below 400,000 finished ones
walked the whole table, newest first, to fill the page (53 ms, against 0.8 ms through the index with statistics;
benchmarks/README.md, "A long history on SQLite"). `PRAGMA optimize`, SQLite's own advice, does nothing on a
database never analysed (SQLite 3.40), and afterwards only for the tables its own connection's statements used. The
refresh runs ANALYZE itself, bounded by analysis_limit: it reads about that many entries of each index, whatever the
database's size.

A connection loads the statistics when it first reads the schema and keeps them: the refresh disposes of this
process's pooled connections, and every SQLite engine recycles its connections at the same interval
(db.make_engine), so that the scheduler's process plans with them too.

PostgreSQL needs none of this: its autovacuum analyses each table as it changes."""

from __future__ import annotations

import logging
import threading
import time

from sqlalchemy import URL, Engine, make_url

log = logging.getLogger(__name__)

# Entries of each index ANALYZE reads: enough to tell a selective index from one that is not, at a cost that does not
# grow with the database (a few milliseconds).
ANALYSIS_ROWS = 1000
REFRESH_S = 3600.0


def on_file(url: str | URL) -> bool:
    """A SQLite database in a file: one in memory lives only as long as its connection, which must not be reopened."""
    parsed = make_url(url)
    return parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:")


def refresh(engine: Engine) -> bool:
    """Gather the statistics and have this process's connections plan with them. False where the database keeps its
    own (PostgreSQL), or is SQLite in memory."""
    if not on_file(engine.url):
        return False
    began = time.perf_counter()
    with engine.connect() as conn:
        conn.exec_driver_sql(f"PRAGMA analysis_limit={ANALYSIS_ROWS}")
        conn.exec_driver_sql("ANALYZE")
        conn.commit()
    engine.dispose()  # checked-in connections close; those in use close when they are handed back
    log.info("planner statistics gathered in %.0f ms", (time.perf_counter() - began) * 1000)
    return True


class StatisticsRefresh:
    """refresh() now, before the scheduler's process opens its connections, and every interval_s after, in a thread
    of its own (stop() ends it)."""

    def __init__(self, engine: Engine, interval_s: float = REFRESH_S):
        self.engine = engine
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._refresh()
        self._thread = threading.Thread(target=self._run, name="allot-planner-statistics", daemon=True)
        self._thread.start()

    def _refresh(self) -> None:
        try:
            refresh(self.engine)
        except Exception:  # tried again at the next interval; the planner keeps the statistics it had
            log.exception("planner statistics: the refresh failed")

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._refresh()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
