"""Writing one cycle: every state change the cycle decided, as a few bulk UPDATEs (executemany) in one transaction,
one statement per kind of change (bulk.py: parameters converted without SQLAlchemy's per-row work).

Each statement is guarded by the state the job must still be in (a queued job cancelled meanwhile is not admitted).
Admissions and preemptions must all apply: when one does not (someone changed the job since the loop read it), the
whole cycle is rolled back and the loop rebuilds its state from the database; nothing is admitted twice. So it is when
a pool the cycle admits into was deleted since the loop read it: the pools are locked as a foreign key would lock them,
once per cycle (workloads/references.py).
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Integer, String, Text, bindparam, func, or_, update
from sqlalchemy.engine import Connection

from allotment.db import UTCDateTime
from allotment.inventory.models import Pool
from allotment.scheduler import bulk, metering
from allotment.workloads import references
from allotment.workloads.models import ADMITTED, PREEMPTED, QUEUED, RUNNING, Job

T = Job.__table__
C = T.c


_last: tuple[float, datetime] = (float("nan"), datetime.min.replace(tzinfo=UTC))


def dt(epoch: float) -> datetime:
    """The UTC datetime of an epoch time; a cycle stamps all its changes alike, so the last one is kept."""
    global _last
    last = _last  # one tuple, replaced whole: consistent whichever thread reads it
    if last[0] == epoch:
        return last[1]
    value = datetime.fromtimestamp(epoch, UTC)
    _last = (epoch, value)
    return value


def _p(name: str, type_: Any) -> Any:
    return bindparam(name, type_=type_)


AT = _p("b_at", UTCDateTime())
_BY_ID = C.id == bindparam("b_id", type_=Integer())
# executemany cannot expand IN lists
_HOLDING = or_(C.state == ADMITTED, C.state == RUNNING)

ADMIT = update(T).where(_BY_ID, C.state == QUEUED).values(
    state=ADMITTED, admitted_at=AT, placed_pool_id=_p("b_pool", Integer()), devices=_p("b_devices", JSON()),
    placed_nodes=_p("b_nodes", JSON()),
    reason_code=None, reason=_p("b_reason", Text()), updated_at=AT)
PREEMPT = update(T).where(_BY_ID, _HOLDING).values(
    state=PREEMPTED, reason_code="preempted", reason=_p("b_reason", Text()), preemptions=C.preemptions + 1,
    updated_at=AT)
REQUEUE = update(T).where(_BY_ID, C.state == PREEMPTED).values(
    state=QUEUED, admitted_at=None, started_at=None, finished_at=None, placed_pool_id=None, devices=None,
    placed_nodes=None,
    backend_handle=None, exit_code=None, reason_code="preempted", reason=_p("b_reason", Text()), updated_at=AT)
REASON = update(T).where(_BY_ID, C.state == QUEUED).values(
    reason_code=_p("b_code", String()), reason=_p("b_reason", Text()), updated_at=AT)
START = update(T).where(_BY_ID, C.state == ADMITTED).values(
    state=RUNNING, started_at=AT, backend_handle=func.coalesce(_p("b_handle", String()), C.backend_handle),
    updated_at=AT)
FINISH = update(T).where(_BY_ID, _HOLDING).values(
    state=_p("b_state", String()), finished_at=AT, started_at=func.coalesce(C.started_at, _p("b_started", UTCDateTime())),
    exit_code=_p("b_exit", Integer()), reason_code=_p("b_code", String()), reason=_p("b_reason", Text()),
    backend_handle=func.coalesce(C.backend_handle, _p("b_handle", String())), updated_at=AT)


class Conflict(Exception):
    """The database changed under the cycle (a guarded admission or preemption did not apply)."""


@dataclass
class Writes:
    admits: list[dict] = field(default_factory=list)
    preempts: list[dict] = field(default_factory=list)
    requeues: list[dict] = field(default_factory=list)
    reasons: list[dict] = field(default_factory=list)
    starts: list[dict] = field(default_factory=list)
    finishes: list[dict] = field(default_factory=list)

    def __len__(self) -> int:
        return (len(self.admits) + len(self.preempts) + len(self.requeues) + len(self.reasons) + len(self.starts)
                + len(self.finishes))

    def mark(self) -> tuple[int, ...]:
        """Where the lists stand now, so that `undo` can drop what one cluster's failed step added."""
        return (len(self.admits), len(self.preempts), len(self.requeues), len(self.reasons), len(self.starts),
                len(self.finishes))

    def undo(self, mark: tuple[int, ...]) -> None:
        for rows, keep in zip((self.admits, self.preempts, self.requeues, self.reasons, self.starts, self.finishes),
                              mark):
            del rows[keep:]

    def admit(self, job_id: int, at: float, pool_id: int | None, devices: list[dict], reason: str,
              nodes: list[str] | None = None) -> None:
        """`nodes`: the node(s) core placed the job on (core.model.Admit.nodes), kept on the job."""
        self.admits.append({"b_id": job_id, "b_at": dt(at), "b_pool": pool_id, "b_devices": devices,
                            "b_reason": reason, "b_nodes": list(nodes) if nodes else None})

    def preempt(self, job_id: int, at: float, reason: str) -> None:
        self.preempts.append({"b_id": job_id, "b_at": dt(at), "b_reason": reason})

    def requeue(self, job_id: int, at: float, reason: str) -> None:
        self.requeues.append({"b_id": job_id, "b_at": dt(at), "b_reason": reason})

    def reason(self, job_id: int, at: float, code: str, message: str) -> None:
        self.reasons.append({"b_id": job_id, "b_at": dt(at), "b_code": code, "b_reason": message})

    def start(self, job_id: int, at: float, handle: str | None) -> None:
        self.starts.append({"b_id": job_id, "b_at": dt(at), "b_handle": handle})

    def finish(self, job_id: int, at: float, state: str, started: float | None, exit_code: int | None,
               code: str | None, reason: str | None, handle: str | None) -> None:
        self.finishes.append({"b_id": job_id, "b_at": dt(at), "b_state": state,
                              "b_started": dt(started) if started is not None else None, "b_exit": exit_code,
                              "b_code": code, "b_reason": reason, "b_handle": handle})

    def take_events(self) -> Writes:
        """The rows no decision of this cycle can change or depend on the order of: requeues, starts and ends (a
        decision comes after them, and an admission's guard needs a requeue first), moved to a Writes of their own;
        this one keeps collecting."""
        taken = Writes(requeues=self.requeues, starts=self.starts, finishes=self.finishes)
        self.requeues, self.starts, self.finishes = [], [], []
        return taken

    def apply_as_sets(self, conn: Connection) -> None:
        """The requeues, starts and ends, each kind as one statement (bulk.executemany_as_one); usage records are
        left to the caller (metering.write_intervals)."""
        for stmt, rows in ((REQUEUE, self.requeues), (START, self.starts), (FINISH, self.finishes)):
            if rows:
                bulk.executemany_as_one(conn, stmt, rows)

    def apply(self, conn: Connection) -> None:
        """Run every statement (the caller commits). Raises Conflict when an admission or preemption missed."""
        exact = conn.dialect.supports_sane_multi_rowcount
        for stmt, rows, must_match in ((REQUEUE, self.requeues, False), (START, self.starts, False),
                                       (FINISH, self.finishes, False), (PREEMPT, self.preempts, True),
                                       (ADMIT, self.admits, True), (REASON, self.reasons, False)):
            if not rows:
                continue
            if stmt is ADMIT:
                _hold_pools(conn, rows)
            result = bulk.executemany(conn, stmt, rows)
            if must_match and (exact or len(rows) == 1) and result.rowcount != len(rows):
                raise Conflict(f"{result.rowcount} of {len(rows)} guarded updates applied")
        metering.write_intervals(conn, self)  # usage records commit with the states they meter


def _hold_pools(conn: Connection, admits: list[dict]) -> None:
    """Lock the pools the admissions name against deletion until the cycle commits (PostgreSQL's KEY SHARE, what a
    foreign key's check takes); Conflict when one is gone."""
    wanted = {row["b_pool"] for row in admits if row["b_pool"] is not None}
    if not wanted:
        return
    found = references.locked(conn, Pool.id, wanted)
    if found != wanted:
        raise Conflict(f"pool(s) {', '.join(str(p) for p in sorted(wanted - found))} deleted since the cycle began")


class EventWrites:
    """The events' writes (requeues, starts, ends) go to the database while core decides. They are rows no decision
    of the cycle changes, and the loop only waited while the database ran them: on PostgreSQL about 35 us a job of
    the 60 it waited per job, in the server's process; on SQLite in the loop's own thread, where the interpreter
    lock is released while SQLite runs a statement. A thread sends them (on SQLite as one statement per kind,
    bulk.executemany_as_one: `executemany` takes the lock back after every row) and waits, the loop decides
    meanwhile, and the cycle's other statements follow once they are done, in the same transaction, before the one
    commit. The ends' usage records close with the rest on SQLite (one short statement per row) and in the thread on
    PostgreSQL (one statement)."""

    @staticmethod
    def send(conn: Connection, writes: Writes) -> Sent | None:
        """Start writing `writes`' event rows on `conn`, or None (none to write). The caller must not use `conn`
        until it has waited for them (`wait`, or `settle` on the way out of a failed cycle)."""
        if not (writes.requeues or writes.starts or writes.finishes):
            return None
        early = writes.take_events()
        if conn.dialect.name == "postgresql":
            return Sent(_writer().submit(early.apply, conn), None)
        return Sent(_writer().submit(early.apply_as_sets, conn), early)

    @staticmethod
    def wait(sent: Sent | None, conn: Connection) -> None:
        """Until the sent rows are written (their error, if any, is raised here), then what is left of them."""
        if sent is not None:
            sent.future.result()
            if sent.closes is not None:
                metering.write_intervals(conn, sent.closes)

    @staticmethod
    def settle(sent: Sent | None) -> None:
        """On the way out of a failed cycle: until the sent rows are done, whatever their outcome (the cycle's own
        error is the one raised; the rollback drops the rows either way)."""
        if sent is not None:
            try:
                sent.future.result()
            except Exception:  # noqa: BLE001, S110 - the cycle already failed and rolls back what these wrote
                pass


@dataclass
class Sent:
    future: Future
    closes: Writes | None  # rows whose usage records the loop closes after the future (SQLite)


_pool: list[ThreadPoolExecutor] = []


def _writer() -> ThreadPoolExecutor:
    """One thread for the process's loops (one in a server; tests build several, whose cycles never overlap)."""
    if not _pool:
        _pool.append(ThreadPoolExecutor(max_workers=1, thread_name_prefix="allot-scheduler-writes"))
    return _pool[0]
