"""Usage reports: what jobs held, rolled up by user, group, workspace, quota (and each ancestor), pool, device model,
cluster, day or month over a window; live usage of running jobs; what one user or quota tree spent.

An interval counts for the part of it inside the window; an open one (the job still holds its resources) counts up to
`now`, so reports include running jobs as they go. Rollups stream the records of the window and keep one total per
key, so memory follows the number of keys, not of records. Who sees what: a platform admin every record, a cluster's
managers and admins that cluster's, every user their own (`visible_to`).
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from sqlalchemy import Float, and_, case, func, literal, or_, select
from sqlalchemy.orm import Session

from allotment.accounting import capacity
from allotment.accounting.models import UsageRecord
from allotment.core.permissions import ROLE_ORDER, Principal
from allotment.errors import FieldError, ValidationFailed
from allotment.identity.models import Group as GroupRow
from allotment.identity.models import GroupMember, User
from allotment.inventory.models import Cluster, Pool
from allotment.quotas.models import Quota, QuotaBinding
from allotment.workloads.holding import holding_job_ids
from allotment.workspaces.models import Workspace

DIMENSIONS = ("user", "group", "workspace", "quota", "pool", "model", "cluster", "day", "month")
R = UsageRecord
GIB = float(1 << 30)


@dataclass
class Totals:
    gpu_s: float = 0.0
    cpu_s: float = 0.0
    memory_gib_s: float = 0.0
    intervals: int = 0
    running: int = 0

    def add(self, other: Totals) -> None:
        self.gpu_s += other.gpu_s
        self.cpu_s += other.cpu_s
        self.memory_gib_s += other.memory_gib_s
        self.intervals += other.intervals
        self.running += other.running

    def as_dict(self) -> dict:
        return {"gpu_hours": round(self.gpu_s / 3600, 6), "cpu_hours": round(self.cpu_s / 3600, 6),
                "memory_gib_hours": round(self.memory_gib_s / 3600, 6), "intervals": self.intervals,
                "running": self.running}


@dataclass
class Window:
    start: float
    end: float
    cluster_id: int | None = None
    owner_id: int | None = None
    visible_clusters: frozenset[int] | None = None  # None: every cluster
    own_id: int | None = None  # also the caller's own records, on clusters not in visible_clusters
    extra: dict = field(default_factory=dict)


def visible_to(principal: Principal) -> tuple[frozenset[int] | None, int]:
    """(clusters whose every record the principal sees, None for all; the principal's own id)."""
    if principal.is_platform_admin:
        return None, principal.id
    managed = frozenset(cid for cid, role in principal.cluster_roles.items()
                        if ROLE_ORDER.get(role, 0) >= ROLE_ORDER["manager"])
    return managed, principal.id


def _conditions(w: Window, now: float) -> list:
    return [R.start_s < w.end, or_(R.end_s.is_(None), R.end_s > w.start), *_scope(w)]


def _scope(w: Window) -> list:
    """The records the window's caller may see and asked for: its cluster, its user, what it is allowed to see."""
    conds = []
    if w.cluster_id is not None:
        conds.append(R.cluster_id == w.cluster_id)
    if w.owner_id is not None:
        conds.append(R.owner_id == w.owner_id)
    if w.visible_clusters is not None:
        mine = R.owner_id == w.own_id if w.own_id is not None else literal(False)
        conds.append(or_(R.cluster_id.in_(w.visible_clusters), mine) if w.visible_clusters else mine)
    return conds


COLUMNS = (R.id, R.job_id, R.cluster_id, R.owner_id, R.quota_id, R.pool_id, R.device_model, R.gpu_milli,
           R.cpu_milli, R.memory_bytes, R.start_s, R.end_s, R.outcome)


def records(session: Session, w: Window, now: float, batch: int = 5000) -> Iterator:
    """The records of the window, oldest first, read in batches (streamed: bounded memory however many there are)."""
    stmt = select(*COLUMNS).where(*_conditions(w, now)).order_by(R.start_s, R.id)
    # Core rows on the session's connection: the ORM's row loading costs more than the query here.
    result = session.connection().execution_options(stream_results=True, yield_per=batch).execute(stmt)
    yield from result


class Names:
    """Id -> name of users, groups, quotas (with parents), pools, clusters, workspaces; read once per report."""

    def __init__(self, session: Session) -> None:
        self.users = dict(session.execute(select(User.id, User.username)).all())
        self.clusters = dict(session.execute(select(Cluster.id, Cluster.name)).all())
        self.pools = {pid: f"{self.clusters.get(cid, cid)}/{name}"
                      for pid, cid, name in session.execute(select(Pool.id, Pool.cluster_id, Pool.name)).all()}
        self.quota_rows = {qid: (name, parent) for qid, name, parent in
                           session.execute(select(Quota.id, Quota.name, Quota.parent_id)).all()}
        self._groups: dict[int, list[str]] | None = None
        self._workspaces: dict[int, list[str]] | None = None
        self._session = session
        self._paths: dict[int | None, list[str]] = {}

    def user(self, uid: int) -> str:
        return self.users.get(uid, f"user #{uid} (removed)")

    def cluster(self, cid: int) -> str:
        return self.clusters.get(cid, f"cluster #{cid} (removed)")

    def pool(self, pid: int | None) -> str:
        return "-" if pid is None else self.pools.get(pid, f"pool #{pid} (removed)")

    def quota_path(self, qid: int | None) -> list[str]:
        """The quota and each of its ancestors (a job's usage counts on all of them)."""
        path = self._paths.get(qid)
        if path is None:
            path, seen, node = [], set(), qid
            while node is not None and node not in seen:
                seen.add(node)
                row = self.quota_rows.get(node)
                if row is None:
                    path.append(f"quota #{node} (removed)")
                    break
                path.append(row[0])
                node = row[1]
            self._paths[qid] = path = path or ["-"]
        return path

    def quota_ancestry(self, qid: int | None) -> list[int]:
        ids, node, seen = [], qid, set()
        while node is not None and node not in seen and node in self.quota_rows:
            seen.add(node)
            ids.append(node)
            node = self.quota_rows[node][1]
        return ids

    def groups_of(self, uid: int) -> list[str]:
        if self._groups is None:
            self._groups = defaultdict(list)
            for user_id, name in self._session.execute(
                    select(GroupMember.user_id, GroupRow.name).join(GroupRow, GroupRow.id == GroupMember.group_id)):
                self._groups[user_id].append(name)
        return self._groups.get(uid) or ["-"]

    def workspaces_of(self, qid: int | None) -> list[str]:
        """Workspaces bound to the quota or one of its ancestors."""
        if self._workspaces is None:
            self._workspaces = defaultdict(list)
            for quota_id, name in self._session.execute(
                    select(QuotaBinding.quota_id, Workspace.name)
                    .join(Workspace, Workspace.id == QuotaBinding.workspace_id)):
                self._workspaces[quota_id].append(name)
        names = sorted({n for q in self.quota_ancestry(qid) for n in self._workspaces.get(q, ())})
        return names or ["-"]


def _days(start: float, stop: float, fmt: str, month: bool) -> Iterator[tuple[str, float, float]]:
    """(label, piece start, piece end) of [start, stop) cut at UTC day or month boundaries."""
    at = start
    while at < stop:
        t = datetime.fromtimestamp(at, UTC)
        if month:
            first = t.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
            nxt = first.replace(year=first.year + (first.month == 12), month=first.month % 12 + 1)
        else:
            nxt = t.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
        end = min(nxt.timestamp(), stop)
        yield t.strftime(fmt), at, end
        at = end


def _keys(by: str, row, names: Names) -> Iterable[str]:
    if by == "user":
        return (names.user(row.owner_id),)
    if by == "group":
        return names.groups_of(row.owner_id)
    if by == "workspace":
        return names.workspaces_of(row.quota_id)
    if by == "quota":
        return names.quota_path(row.quota_id)
    if by == "pool":
        return (names.pool(row.pool_id),)
    if by == "model":
        return (row.device_model or "-",)
    return (names.cluster(row.cluster_id),)


# The record column each dimension's keys come from (_keys: a user's groups from the user; a quota's ancestors and
# workspaces from the quota).
_KEY_COLUMN = {"user": R.owner_id, "group": R.owner_id, "workspace": R.quota_id, "quota": R.quota_id,
               "pool": R.pool_id, "model": R.device_model, "cluster": R.cluster_id}


def _by_column(session: Session, by: str, w: Window, now: float) -> Iterator[tuple[Iterable[str], Totals]]:
    """Totals per value of the dimension's column, summed by the database: one row per user, quota, pool, ...
    instead of one per record (0.7 s of Python at 50,000 records; benchmarks/usage_views_bench.py)."""
    column, seconds = _KEY_COLUMN[by], _held_seconds(w.start, now, w.end)
    stmt = (select(column, func.sum(R.gpu_milli * seconds), func.sum(R.cpu_milli * seconds),
                   func.sum(R.memory_bytes * seconds), func.count(), func.sum(case((R.end_s.is_(None), 1), else_=0)))
            .where(*_conditions(w, now)).group_by(column))
    names = Names(session)
    for value, gpu, cpu, memory, count, running in session.execute(stmt):
        keys = _keys(by, SimpleNamespace(**{column.key: value}), names)
        yield keys, Totals(gpu_s=(gpu or 0.0) / 1000.0, cpu_s=(cpu or 0.0) / 1000.0,
                           memory_gib_s=(memory or 0.0) / GIB, intervals=int(count), running=int(running or 0))


def rollup(session: Session, by: str, w: Window, now: float) -> list[dict]:
    """Totals per key of `by`, largest GPU use first (top consumers)."""
    if by not in DIMENSIONS:
        raise ValidationFailed(f"by must be one of {', '.join(DIMENSIONS)}",
                               [FieldError("by", f"unknown dimension {by!r}")])
    totals: dict[str, Totals] = defaultdict(Totals)
    if by in ("day", "month"):  # a record's seconds are cut at the days' (months') boundaries, here
        for row in records(session, w, now):
            stop = now if row.end_s is None else row.end_s
            for key, a, b in _days(max(row.start_s, w.start), min(stop, w.end),
                                   "%Y-%m" if by == "month" else "%Y-%m-%d", by == "month"):
                totals[key].add(Totals(row.gpu_milli / 1000.0 * (b - a), row.cpu_milli / 1000.0 * (b - a),
                                       row.memory_bytes / GIB * (b - a), 1, int(row.end_s is None)))
    else:
        for keys, part in _by_column(session, by, w, now):
            for key in keys:
                totals[key].add(part)
    ordered = sorted(totals.items(), key=(lambda kv: kv[0]) if by in ("day", "month") else
                     (lambda kv: (-kv[1].gpu_s, -kv[1].cpu_s, kv[0])))
    return [{"key": key, **t.as_dict()} for key, t in ordered]


def live(session: Session, w: Window, now: float) -> list[dict]:
    """The open intervals: jobs holding resources now, with what they used so far, oldest first. They are found
    from the jobs that hold resources (the index of active jobs), each job's intervals by the interval constraint's
    index: no index names an interval's end (closing one stays a HOT update). Read through the window instead, by
    start, every interval closed this month was read and dropped: 0.17 s of the request at 50,000 of them
    (benchmarks/usage_views_bench.py). There are few open ones, so they are ordered here."""
    names = Names(session)
    out = []
    found = session.execute(select(*COLUMNS).where(R.job_id.in_(holding_job_ids()), R.end_s.is_(None),
                                                    *_scope(w))).all()
    for row in sorted(found, key=lambda r: (r.start_s, r.id)):
        seconds = max(now - row.start_s, 0.0)
        out.append({"job_id": row.job_id, "user": names.user(row.owner_id), "cluster": names.cluster(row.cluster_id),
                    "quota": names.quota_path(row.quota_id)[0], "pool": names.pool(row.pool_id),
                    "device_model": row.device_model, "since": datetime.fromtimestamp(row.start_s, UTC),
                    "gpu": row.gpu_milli / 1000.0, "cpu": row.cpu_milli / 1000.0,
                    "gpu_hours": round(row.gpu_milli / 1000.0 * seconds / 3600, 6),
                    "cpu_hours": round(row.cpu_milli / 1000.0 * seconds / 3600, 6)})
    return out


def _held_seconds(lo: float, now: float, hi: float | None = None):
    """SQL: seconds of each record from `lo` on, up to `hi` when given (open records run to now; a closed one to its
    recorded end)."""
    lo_, now_ = literal(lo, Float()), literal(now, Float())
    stop = case((R.end_s.is_(None), now_), else_=R.end_s)
    if hi is not None:
        hi_ = literal(hi, Float())
        stop = case((stop > hi_, hi_), else_=stop)
    start = case((R.start_s < lo_, lo_), else_=R.start_s)
    return case((stop > start, stop - start), else_=literal(0.0, Float()))


def spent(session: Session, since: float, now: float, *, cluster_id: int | None = None, owner_id: int | None = None,
          quota_ids: Iterable[int] | None = None) -> tuple[float, float]:
    """(GPU-seconds, CPU core-seconds) used since `since`, running jobs up to `now`; one aggregate query."""
    seconds = _held_seconds(since, now)
    conds = [or_(R.end_s.is_(None), R.end_s > since)]
    if cluster_id is not None:
        conds.append(R.cluster_id == cluster_id)
    if owner_id is not None:
        conds.append(R.owner_id == owner_id)
    if quota_ids is not None:
        conds.append(R.quota_id.in_(list(quota_ids)))
    gpu, cpu = session.execute(select(func.sum(R.gpu_milli * seconds), func.sum(R.cpu_milli * seconds))
                               .where(and_(*conds))).one()
    return (gpu or 0.0) / 1000.0, (cpu or 0.0) / 1000.0


CSV_COLUMNS = ["job_id", "user", "cluster", "quota", "pool", "device_model", "gpu", "cpu", "memory_gib", "start",
               "end", "outcome", "gpu_hours", "cpu_hours", "memory_gib_hours"]


def _iso(epoch: float | None) -> str:
    return "" if epoch is None else datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


def csv_lines(session: Session, w: Window, now: float, per_chunk: int = 500) -> Iterator[str]:
    """The window's records as CSV (header first), a chunk of lines at a time; hours are those inside the window.
    Memory stays bounded: records are read in batches and written out as they come."""
    names = Names(session)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    lo, hi = w.start, w.end
    for count, (_, job_id, cluster_id, owner_id, quota_id, pool_id, model, gpu, cpu, memory, start, end,
                outcome) in enumerate(records(session, w, now), 1):
        seconds = max(min(now if end is None else end, hi) - max(start, lo), 0.0) / 3600
        writer.writerow((job_id, names.user(owner_id), names.cluster(cluster_id), names.quota_path(quota_id)[0],
                         names.pool(pool_id), model or "", gpu / 1000, cpu / 1000, round(memory / GIB, 3),
                         _iso(start), _iso(end), outcome or "running", round(gpu / 1000 * seconds, 6),
                         round(cpu / 1000 * seconds, 6), round(memory / GIB * seconds, 6)))
        if count % per_chunk == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def pool_capacity(session: Session, w: Window, now: float) -> list[dict]:
    """Per pool and UTC day: GPU-hours allocated to jobs against the pool's GPU-hours of capacity that day (its
    device count over the day, from the capacity history: accounting/capacity.py), and the share allocated."""
    names = Names(session)
    stop = min(w.end, now)
    pools_seen = {pool_id: (cid, steps) for pool_id, (cid, steps) in capacity.history(session, stop).items()
                  if (w.cluster_id is None or cid == w.cluster_id)
                  and (w.visible_clusters is None or cid in w.visible_clusters)}
    allocated: dict[tuple[int, str], float] = defaultdict(float)
    spans: dict[str, tuple[float, float]] = {}
    for label, a, b in _days(w.start, stop, "%Y-%m-%d", False):
        spans[label] = (a, b)
    for row in records(session, w, now):
        if row.pool_id is None or not row.gpu_milli:
            continue
        end = now if row.end_s is None else row.end_s
        for label, a, b in _days(max(row.start_s, w.start), min(end, w.end), "%Y-%m-%d", False):
            allocated[(row.pool_id, label)] += row.gpu_milli / 1000.0 * (b - a)
    offered = {p for p, (_, steps) in pools_seen.items() if capacity.device_seconds(steps, w.start, stop) > 0}
    pools = sorted({p for p, _ in allocated} | offered, key=names.pool)
    out = []
    for pool_id in pools:
        steps = pools_seen.get(pool_id, (None, []))[1]
        for label, (a, b) in spans.items():
            total = capacity.device_seconds(steps, a, b)
            used = allocated.get((pool_id, label), 0.0)
            out.append({"pool": names.pool(pool_id), "day": label, "allocated_gpu_hours": round(used / 3600, 6),
                        "capacity_gpu_hours": round(total / 3600, 6),
                        "allocated_share": round(used / total, 4) if total else None})
    return out
