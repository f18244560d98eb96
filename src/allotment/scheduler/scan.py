"""The loop's look at what was submitted or cancelled since its last look (a mixin of loop.Scheduler).

New submissions are the jobs above the id watermark (and, on PostgreSQL, ids below it that were missing at the last
look: see _track_gaps), read with one Core select of the columns a queued job needs (load.NEW_JOB_COLUMNS) and handed
to their cluster's runtime; cancellations are found through the index on `cancel_requested_at`, which only
cancellations write. The cost follows what changed, not the queue.
"""

from __future__ import annotations

import time
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from allotment.api.state import AppState
from allotment.scheduler import load, reads
from allotment.scheduler.metering import Usage
from allotment.scheduler.persist import Writes, dt
from allotment.scheduler.runtime import Actions, ClusterRuntime
from allotment.workloads.models import CANCELLED, HOLDING_STATES, Job

CANCEL_WINDOW_S = 60.0  # cancellations are looked up this far back (commit delays, clock skew between writers)
CANCEL_AHEAD_S = 86_400.0  # a cancellation stamped by a writer whose clock runs ahead still counts
MAX_ID = reads.MAX_ID
GAP_TTL_S = 30.0  # how long an id below the watermark may still appear (PostgreSQL commits out of id order)


class Scan:
    state: AppState
    runtimes: dict[int, ClusterRuntime]
    watermark: int | None
    _gaps: list[tuple[int, int, float]]
    _last_scan: float
    _guarded: Callable[..., Any]
    _cluster_failed: Callable[[int, str, float], None]

    def _scan(self, session: Session, now: float, writes: Writes, actions: Actions, usage: list[Usage]) -> None:
        """New submissions and cancellations since the last scan; cost follows what changed, not the queue."""
        wall = time.time()
        wm = self.watermark or 0
        conn = session.connection()  # plain Core: these run on every wake-up, the ORM layer costs more than the query
        # Both looks are ranges with two ends: without statistics (a table filled faster than autovacuum analyses it,
        # as in a benchmark or after a bulk import) PostgreSQL estimates a one-sided range at a third of the table and
        # reads all of it (10 ms per look at 50,000 jobs, twice per scan); a two-sided one at 0.5 %, through the index.
        # With statistics the ends change nothing. The upper ends are the id column's largest value and a day ahead.
        if self._gaps:
            newer = Job.id.between(wm + 1, MAX_ID) if conn.dialect.name == "postgresql" else Job.id > wm
            conditions = [newer] + [Job.id.between(lo, hi) for lo, hi, _ in self._gaps]
            rows = load.plain_rows(conn.execute(select(*load.NEW_JOB_COLUMNS).where(or_(*conditions))
                                                .order_by(Job.id)), load.NewJobRow)
        else:  # the usual look: one constant statement, read from the driver's cursor (reads.py)
            rows = reads.new_jobs(conn, wm)
        owners = load.usernames(conn, {row.owner_id for row in rows}) if rows else {}
        for row in rows:
            rt = self.runtimes.get(row.cluster_id)
            if rt is not None:
                try:
                    rt.add_new(row, owners.get(row.owner_id))
                except Exception:  # noqa: BLE001 - logged and counted by _cluster_failed; the reload reads the job
                    self._cluster_failed(row.cluster_id, "scan", now)
        self._track_gaps([r.id for r in rows], wm, wall)
        since = dt(min(self._last_scan or wall, wall) - CANCEL_WINDOW_S)
        cancelled = conn.execute(select(Job.id, Job.cluster_id, Job.state)
                                 .where(Job.cancel_requested_at.between(since, dt(wall + CANCEL_AHEAD_S)))).all()
        for job_id, cluster_id, state in cancelled:
            rt = self.runtimes.get(cluster_id)
            if rt is None:
                continue
            if state == CANCELLED:
                self._guarded(cluster_id, "scan", now, writes, actions, usage, rt.cancelled, job_id, actions)
            elif state in HOLDING_STATES:
                self._guarded(cluster_id, "scan", now, writes, actions, usage, rt.stop_requested, job_id, now,
                              writes, actions, usage)
        self._last_scan = wall

    def _track_gaps(self, ids: list[int], wm: int, wall: float) -> None:
        """On PostgreSQL a job with a lower id can commit after a higher one was read: keep looking at missing ids
        for a while. SQLite has one writer at a time and assigns ids in commit order, so it needs none of this."""
        above = [i for i in ids if i > wm]
        if above:
            self.watermark = above[-1]
        if self.state.settings.is_sqlite:
            return
        found = sorted(ids)
        gaps = []
        for lo, hi, expires in self._gaps:
            if expires < wall:
                continue
            start = lo
            for i in found[bisect_left(found, lo):bisect_right(found, hi)]:
                if start < i:
                    gaps.append((start, i - 1, expires))
                start = i + 1
            if start <= hi:
                gaps.append((start, hi, expires))
        prev = wm
        for i in above:
            if i > prev + 1:
                gaps.append((prev + 1, i - 1, wall + GAP_TTL_S))
            prev = i
        self._gaps = gaps[-1000:]
