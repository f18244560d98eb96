"""CSV exports of resource policies and of jobs (Backend.AI's export dialogs), besides the usage export in routes.py
and the users', credentials' and audit exports of their domains. Every export streams: rows are read in batches from
a session of the response's own and written out a chunk at a time, so memory stays bounded however many rows there
are. The file name is the caller's (up to 255 characters, Backend.AI's limit), defaulting to the export's name."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from allotment.accounting import service
from allotment.api.deps import require
from allotment.core.permissions import AUTHENTICATED, PLATFORM_ADMIN, Principal
from allotment.identity.models import User
from allotment.inventory.models import Cluster
from allotment.policies.models import ResourcePolicy
from allotment.quotas.models import Quota
from allotment.workloads.models import Job

router = APIRouter(tags=["exports"])
FileName = Annotated[str | None, Query(max_length=255, pattern=r"^[^/\\\x00-\x1f\"]+$",
                                       description="the download's file name (up to 255 characters)")]

POLICY_COLUMNS = ["name", "description", "max_cpu", "max_memory_bytes", "max_gpu", "max_fgpu", "max_containers_per_job",
                  "idle_timeout_s", "max_concurrent_jobs", "max_folders", "max_folder_bytes", "allowed_storage_hosts",
                  "created_at", "updated_at"]
JOB_COLUMNS = ["id", "name", "owner", "cluster", "quota", "state", "reason_code", "gpu", "cpu", "memory_bytes",
               "priority_class", "time_limit_s", "preemptions", "submitted_at", "admitted_at", "started_at",
               "finished_at", "exit_code"]


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):  # never a formula in a spreadsheet
        return "'" + value
    return value


def csv_chunks(columns: list[str], rows: Iterable[list[Any]], per_chunk: int = 500) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for count, row in enumerate(rows, 1):
        writer.writerow([_cell(v) for v in row])
        if count % per_chunk == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def attachment(filename: str) -> dict[str, str]:
    """Content-Disposition for any file name: an ASCII fallback and the name itself, UTF-8 (RFC 6266, 5987)."""
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in filename)
    return {"Content-Disposition": f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"}


def _streamed(request: Request, filename: str, produce) -> StreamingResponse:
    def body() -> Iterator[str]:
        with request.app.state.allot.sessions() as db:
            yield from produce(db)

    return StreamingResponse(body(), media_type="text/csv; charset=utf-8", headers=attachment(filename))


def policy_rows(db: Session) -> Iterator[list[Any]]:
    for p in db.scalars(select(ResourcePolicy).order_by(ResourcePolicy.name)):
        yield [p.name, p.description, None if p.max_cpu_milli is None else p.max_cpu_milli / 1000,
               p.max_memory_bytes, p.max_gpu, None if p.max_fgpu_milli is None else p.max_fgpu_milli / 1000,
               p.max_containers_per_job, p.idle_timeout_s, p.max_concurrent_jobs, p.max_folders, p.max_folder_bytes,
               p.allowed_storage_hosts, p.created_at, p.updated_at]


def job_rows(db: Session, principal: Principal) -> Iterator[list[Any]]:
    """Jobs the caller may see in reports (service.visible_to), oldest first, read in batches."""
    users = dict(db.execute(select(User.id, User.username)).all())
    clusters = dict(db.execute(select(Cluster.id, Cluster.name)).all())
    quotas = dict(db.execute(select(Quota.id, Quota.name)).all())
    cols = (Job.id, Job.name, Job.owner_id, Job.cluster_id, Job.quota_id, Job.state, Job.reason_code, Job.gpu_milli,
            Job.cpu_milli, Job.memory_bytes, Job.priority_class, Job.time_limit_s, Job.preemptions, Job.submitted_at,
            Job.admitted_at, Job.started_at, Job.finished_at, Job.exit_code)
    stmt = select(*cols).order_by(Job.id)
    visible, own = service.visible_to(principal)
    if visible is not None:
        stmt = stmt.where(or_(Job.cluster_id.in_(visible), Job.owner_id == own) if visible else Job.owner_id == own)
    for r in db.execute(stmt.execution_options(stream_results=True, yield_per=2000)):
        yield [r.id, r.name, users.get(r.owner_id, r.owner_id), clusters.get(r.cluster_id, r.cluster_id),
               quotas.get(r.quota_id, r.quota_id), r.state, r.reason_code, (r.gpu_milli or 0) / 1000,
               (r.cpu_milli or 0) / 1000, r.memory_bytes, r.priority_class, r.time_limit_s, r.preemptions,
               r.submitted_at, r.admitted_at, r.started_at, r.finished_at, r.exit_code]


@router.get("/exports/resource-policies.csv", response_class=StreamingResponse,
            dependencies=[require(PLATFORM_ADMIN)])
def export_policies(request: Request, filename: FileName = None) -> StreamingResponse:
    """Every resource policy with its caps (cpu in cores, fractional GPU in GPUs)."""
    return _streamed(request, filename or "resource-policies.csv",
                     lambda db: csv_chunks(POLICY_COLUMNS, policy_rows(db)))


@router.get("/exports/jobs.csv", response_class=StreamingResponse)
def export_jobs(request: Request, principal: Annotated[Principal, require(AUTHENTICATED)],
                filename: FileName = None) -> StreamingResponse:
    """Jobs and sessions: every job of the clusters the caller manages and their own (platform admins: all)."""
    return _streamed(request, filename or "jobs.csv", lambda db: csv_chunks(JOB_COLUMNS, job_rows(db, principal)))
