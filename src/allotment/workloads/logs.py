"""Job logs: where each engine keeps a job's output, reading it by byte offset, following it as it grows, and
deleting it once its retention has passed.

Where the output is (`log_source`, the one place that knows it):
- local: `<data_dir>/jobs/job-<id>.log` (backends/local.py);
- slurm and ray: `<log_dir>/job-<id>.log`, log_dir from the cluster's engine settings (inventory/engine_settings.py):
  backends/slurm.py has the compute nodes write there, backends/ray.py copies Ray's output there. An engine without
  a log_dir setting writes under `<data_dir>/jobs` like the local one;
- simulated: nothing runs, so there is no output: an empty log with a note, not an error.
Job ids are unique across clusters, so engines sharing a directory never share a file.

Reading (`read_log`) is by byte offset. A chunk never ends inside a UTF-8 character (a character cut by the limit
is finished, up to 3 bytes past it; one cut by the end of a file still being written is left for the next read)
and never starts inside one (an offset given by hand moves past the character's remaining bytes), so paging with
`next_offset` gives back the file's text exactly. Bytes that are not UTF-8 read as U+FFFD.

Following (`follow_log`) is an async generator of events for a streaming response. Each poll reads the file in a
worker thread (a short hop: no thread and no database session is held for a follower's whole life); the job's state
comes from a short database read about every second. It sends a keep-alive when nothing was written for a while,
and ends once the job has ended and its file is drained, or after FOLLOW_MAX_S or when the server is stopping (the
client then follows again from `next_offset`).

Retention (`delete_expired_logs`, run hourly by `LogRetention`): the files of jobs that ended more than
ALLOT_JOB_LOG_RETENTION_DAYS ago are deleted (0 keeps them for ever); reading such a job's log then says so.

Masking: the values of the job's variables on its owner's hide-list read as ******** in every chunk (read and
followed; vaults/job_supplies.py, core/hide_list.py). Offsets stay those of the file. A value cut by a chunk's
end is masked whole in that chunk (its end moves past the value), what an offset inside one leaves of it is masked,
and while the job runs a tail that may be the beginning of a value waits for the rest to be written.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from allotment.core.hide_list import mask_span
from allotment.core.permissions import JOB_READER, Principal, Scope, allowed
from allotment.db import utcnow
from allotment.errors import NotFound
from allotment.inventory.models import Cluster
from allotment.settings import Settings
from allotment.vaults import job_supplies
from allotment.workloads.models import FINAL_STATES, Job

log = logging.getLogger("allotment.workloads.logs")

DEFAULT_CHUNK = 64 * 1024  # bytes per read when the caller gives no limit
MAX_CHUNK = 1024 * 1024  # the most one request (or one streamed event) carries
FOLLOW_POLL_S = 0.25  # how often a follower looks for new output
FOLLOW_STATE_CHECK_S = 1.0  # how often it asks the database whether the job has ended
FOLLOW_KEEPALIVE_S = 15.0  # a line at least this often, so proxies and clients do not time the stream out
FOLLOW_MAX_S = 3600.0  # one follow request at most this long; the client resumes from next_offset
RETENTION_SWEEP_S = 3600.0
RETENTION_FIRST_SWEEP_S = 60.0  # not at start-up: the server has better things to do then
_ID_BATCH = 500
_LOG_FILE = re.compile(r"^job-(\d{1,18})\.log$")


# -- where -------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LogSource:
    path: Path | None  # None: the engine keeps no output
    note: str | None = None  # why there is none


SIMULATED_NOTE = "simulated jobs run nothing, so they have no output"


def log_directory(settings: Settings, backend: str, engine_settings: dict[str, Any] | None) -> Path | None:
    """Where a cluster's engine writes its jobs' logs (None: nowhere, it runs nothing)."""
    if backend == "simulated":
        return None
    configured = (engine_settings or {}).get("log_dir") if backend != "local" else None
    return Path(configured) if configured else settings.data_dir / "jobs"


def log_source(settings: Settings, backend: str, engine_settings: dict[str, Any] | None, job_id: int) -> LogSource:
    directory = log_directory(settings, backend, engine_settings)
    if directory is None:
        return LogSource(None, SIMULATED_NOTE)
    return LogSource(directory / f"job-{int(job_id)}.log")


def _engines(session: Session, cluster_ids: set[int] | None = None) -> dict[int, tuple[str, dict[str, Any]]]:
    """(backend, plain engine settings) per cluster; only plain values are read, secrets stay sealed."""
    query = select(Cluster.id, Cluster.backend, Cluster.engine_settings)
    if cluster_ids is not None:
        query = query.where(Cluster.id.in_(cluster_ids))
    return {row.id: (row.backend, dict(row.engine_settings or {})) for row in session.execute(query)}


def job_log_source(session: Session, settings: Settings, job: Job) -> LogSource:
    backend, engine = _engines(session, {job.cluster_id}).get(job.cluster_id, ("local", {}))
    return log_source(settings, backend, engine, job.id)


# -- who -----------------------------------------------------------------------------------------------------------------

def may_read(principal: Principal, job: Job) -> bool:
    return allowed(principal, JOB_READER, Scope(cluster_id=job.cluster_id, owner_id=job.owner_id))


def readable(session: Session, principal: Principal, job: Job) -> bool:
    """Whether the principal may read the job's output and environment: its owner and the cluster's managers
    (may_read), or those the access rules let read it (ClearML: reading a task includes its console output)."""
    if may_read(principal, job):
        return True
    if job.project_id is None:
        return False
    from allotment.projects import access as project_access  # projects imports workloads

    return project_access.job_refusal(session, principal, job.project_id, job.id, "read") is None


def find_readable_job(session: Session, principal: Principal, job_id: int) -> Job:
    """A job whose output the principal may read (`readable`). Others' jobs read as absent, as GET /jobs/{id}
    answers them: a refusal must not tell whether a job exists."""
    job = session.get(Job, job_id)
    if job is None or not readable(session, principal, job):
        raise NotFound(f"no job {job_id}")
    return job


# -- reading -----------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LogChunk:
    offset: int  # where `text` starts (past the given offset when that fell inside a character)
    next_offset: int
    size: int  # the file's size as read (0: no file)
    text: str
    exists: bool = True


def _continuation(byte: int) -> bool:
    return byte & 0xC0 == 0x80


def _char_length(lead: int) -> int:
    if 0xC2 <= lead <= 0xDF:
        return 2
    if 0xE0 <= lead <= 0xEF:
        return 3
    if 0xF0 <= lead <= 0xF4:
        return 4
    return 1  # ASCII, or a byte that starts no character (it reads as U+FFFD on its own)


def _whole(data: bytes) -> int:
    """How many bytes of `data` end on a character boundary: a character begun in its last 3 bytes but not finished
    there is left out (its other bytes have not been written yet)."""
    for back in range(1, min(3, len(data)) + 1):
        byte = data[-back]
        if not _continuation(byte):
            return len(data) - back if _char_length(byte) > back else len(data)
    return len(data)


def read_log(path: Path | None, offset: int, limit: int, complete: bool, hidden: Sequence[str] = ()) -> LogChunk:
    """Up to `limit` bytes of the file from `offset`, as text on character boundaries. `complete`: nothing more will
    be written (the job has ended), so an unfinished character at the end is decoded as it is. `hidden`: values to
    mask (job_supplies.hidden_values); the read takes the bytes around the chunk that an occurrence crossing either
    of its ends needs, so no part of a value shows whatever the offset and the limit (hide_list.mask_span)."""
    if path is None:
        return LogChunk(offset, offset, 0, "", exists=False)
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed below; opening is what tells whether it exists
    except (FileNotFoundError, NotADirectoryError):
        return LogChunk(offset, offset, 0, "", exists=False)
    pad = max((len(v.encode()) for v in hidden if v), default=1) - 1
    with handle:
        size = os.fstat(handle.fileno()).st_size
        if offset >= size:
            return LogChunk(offset, offset, size, "")
        before = min(offset, pad)
        handle.seek(offset - before)
        wanted = before + limit + 6 + pad  # 3 + 3: a character cut at either end of the chunk
        data = handle.read(wanted)
    base = offset - before  # file offset of data[0]
    start = before
    while start < min(before + 3, len(data)) and _continuation(data[start]):
        start += 1
    end = min(start + limit, len(data))
    while end < len(data) and end - (start + limit) < 3 and _continuation(data[end]):
        end += 1
    if end == len(data) and not complete:  # at the end of the file as written so far
        end = start + _whole(data[start:end])
    end, text = mask_span(data, start, end, hidden, growing=not complete and len(data) < wanted)
    size = max(size, base + len(data))
    return LogChunk(base + start, base + end, size, text)


def log_size(source: LogSource) -> int:
    try:
        return source.path.stat().st_size if source.path is not None else 0
    except OSError:
        return 0


def log_note(settings: Settings, job: Job, source: LogSource, exists: bool, now: datetime | None = None) -> str | None:
    """Why a log is empty: the engine keeps none, the job has not started, retention removed it, or it wrote none."""
    if source.path is None:
        return source.note
    if exists:
        return None
    if job.started_at is None and job.state not in FINAL_STATES:
        return "the job has not started yet, so it has no output"
    if job.state not in FINAL_STATES:
        return "the job has written no output yet"
    days = settings.job_log_retention_days
    now = now or utcnow()
    if days and job.finished_at is not None and job.finished_at < now - timedelta(days=days):
        return (f"the log was deleted: logs are kept for {days} day(s) after their job ends "
                f"(ALLOT_JOB_LOG_RETENTION_DAYS)")
    if job.started_at is None:
        return "the job never started, so it has no output"
    return "the job wrote no output"


@dataclass(frozen=True)
class JobLog:
    job_id: int
    state: str
    offset: int
    next_offset: int
    size: int
    text: str
    complete: bool  # the job has ended and there is nothing past next_offset
    note: str | None


def read_job_log(session: Session, settings: Settings, job: Job, offset: int, limit: int) -> JobLog:
    source = job_log_source(session, settings, job)
    ended = job.state in FINAL_STATES
    hidden = job_supplies.hidden_values(session, job.owner_id, job_supplies.job_env(job, settings.ensure_secret_key()))
    chunk = read_log(source.path, offset, limit, complete=ended, hidden=hidden)
    note = log_note(settings, job, source, chunk.exists)
    return JobLog(job.id, job.state, chunk.offset, chunk.next_offset, chunk.size, chunk.text,
                  ended and chunk.next_offset >= chunk.size, note)


# -- following ---------------------------------------------------------------------------------------------------------

def state_reader(sessions: sessionmaker[Session], job_id: int) -> Callable[[], str | None]:
    """A short read of the job's state (None once the job is gone), each in a session of its own."""

    def read() -> str | None:
        with sessions() as session:
            return session.scalar(select(Job.state).where(Job.id == job_id))

    return read


async def follow_log(source: LogSource, offset: int, job_state: Callable[[], str | None], *,
                     poll_s: float = FOLLOW_POLL_S, state_check_s: float = FOLLOW_STATE_CHECK_S,
                     keepalive_s: float = FOLLOW_KEEPALIVE_S, max_s: float = FOLLOW_MAX_S,
                     chunk: int = MAX_CHUNK, clock: Callable[[], float] = time.monotonic,
                     stopping: threading.Event | None = None,
                     hidden: Sequence[str] = ()) -> AsyncIterator[dict[str, Any]]:
    """Events: `output` (offset, next_offset, text), `keepalive`, then `end` (the job's final state) or `resume`
    (max_s passed, or the server is `stopping`: follow again from next_offset). Every event carries next_offset.
    `hidden`: the values to mask (job_supplies.hidden_values)."""
    started = last_sent = clock()
    state = await anyio.to_thread.run_sync(job_state)
    checked = clock()
    while True:
        ended = state is None or state in FINAL_STATES
        if source.path is not None:
            read = await anyio.to_thread.run_sync(read_log, source.path, offset, chunk, ended, hidden)
            if read.next_offset > offset:
                offset = read.next_offset
                if read.text:
                    yield {"event": "output", "offset": read.offset, "next_offset": offset,
                           "text": read.text}
                    last_sent = clock()
                continue  # more may be waiting: read again before sleeping
        if ended:  # and drained: the job's state is read before its file, so nothing it wrote is missed
            yield {"event": "end", "next_offset": offset, "state": state}
            return
        now = clock()
        if now - started >= max_s or (stopping is not None and stopping.is_set()):
            yield {"event": "resume", "next_offset": offset, "state": state}
            return
        if now - last_sent >= keepalive_s:
            yield {"event": "keepalive", "next_offset": offset}
            last_sent = now
        await anyio.sleep(poll_s)
        if clock() - checked >= state_check_s:
            state = await anyio.to_thread.run_sync(job_state)
            checked = clock()


# -- retention ---------------------------------------------------------------------------------------------------------

def _log_ids(directory: Path) -> set[int]:
    """The job ids of the log files in a directory (one listing; the database says which of them expired)."""
    try:
        with os.scandir(directory) as entries:
            return {int(m.group(1)) for e in entries if (m := _LOG_FILE.match(e.name))}
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return set()


def delete_expired_logs(session: Session, settings: Settings, now: datetime | None = None) -> int:
    """Delete the log files of jobs that ended more than the retention ago; returns how many went. A file is deleted
    only where its own job's engine writes it: a Slurm log directory shared with another installation keeps that
    installation's files."""
    days = settings.job_log_retention_days
    if not days:
        return 0
    cutoff = (now or utcnow()) - timedelta(days=days)
    engines = _engines(session)
    directories = {cid: log_directory(settings, backend, engine) for cid, (backend, engine) in engines.items()}
    found: set[int] = set()
    for directory in {d for d in directories.values() if d is not None} | {settings.data_dir / "jobs"}:
        found.update(_log_ids(directory))
    removed = 0
    ids = sorted(found)
    for i in range(0, len(ids), _ID_BATCH):
        rows = session.execute(select(Job.id, Job.cluster_id).where(
            Job.id.in_(ids[i:i + _ID_BATCH]), Job.state.in_(FINAL_STATES), Job.finished_at < cutoff)).all()
        for job_id, cluster_id in rows:
            if directories.get(cluster_id) is None:
                continue
            path = directories[cluster_id] / f"job-{job_id}.log"
            try:
                path.unlink()
                removed += 1
            except FileNotFoundError:
                pass
            except OSError as exc:
                log.warning("log retention: cannot delete %s: %s", path, exc)
    return removed


class LogRetention:
    """The hourly sweep of delete_expired_logs, in a thread of its own (stop() ends it)."""

    def __init__(self, sessions: sessionmaker[Session], settings: Settings, interval_s: float = RETENTION_SWEEP_S,
                 first_after_s: float = RETENTION_FIRST_SWEEP_S):
        self.sessions = sessions
        self.settings = settings
        self.interval_s = interval_s
        self.first_after_s = first_after_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="allot-log-retention", daemon=True)
        self._thread.start()

    def sweep(self) -> int:
        with self.sessions() as session:
            removed = delete_expired_logs(session, self.settings)
        if removed:
            log.info("log retention: deleted %d job log(s) older than %d day(s)", removed,
                     self.settings.job_log_retention_days)
        return removed

    def _run(self) -> None:
        if self._stop.wait(self.first_after_s):
            return
        while True:
            try:
                self.sweep()
            except Exception:  # a failed sweep is tried again at the next one
                log.exception("log retention: the sweep failed")
            if self._stop.wait(self.interval_s):
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
