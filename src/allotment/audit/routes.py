"""Audit log API and the audit and credential CSV exports (platform admins)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from allotment.api.deps import DB, require
from allotment.api.fields import IsoDateTime, Offset
from allotment.audit import service
from allotment.audit.schemas import AuditEventList, AuditEventOut
from allotment.core.permissions import PLATFORM_ADMIN
from allotment.db import utcnow
from allotment.identity import credentials

router = APIRouter(tags=["audit"], dependencies=[require(PLATFORM_ADMIN)])

CREDENTIAL_COLUMNS = ["access_key", "label", "owner", "owner_kind", "status", "created_at", "expires_at",
                      "last_used_at", "last_used_from", "revoked_at"]


def audit_filter(
    actor: Annotated[str | None, Query(description="who acted, or on whose behalf")] = None,
    target: Annotated[str | None, Query(description="part of the target's name")] = None,
    target_type: Annotated[str | None, Query()] = None,
    action: Annotated[str | None, Query(description="exact, or a prefix ending in * (credential.*)")] = None,
    since: Annotated[IsoDateTime | None, Query(description="ISO 8601, inclusive; UTC when no zone is given")] = None,
    until: Annotated[IsoDateTime | None, Query(description="ISO 8601, exclusive; not after `since`: an empty interval, "
                                                           "no events")] = None,
) -> service.AuditFilter:
    return service.AuditFilter(actor, target, target_type, action, since, until)


Filter = Annotated[service.AuditFilter, Depends(audit_filter)]


@router.get("/audit", response_model=AuditEventList)
def list_audit_events(f: Filter, db: DB, limit: Annotated[int, Query(ge=1, le=1000)] = 50,
                      offset: Offset = 0) -> AuditEventList:
    """Newest first."""
    events, total = service.search(db, f, limit, offset)
    return AuditEventList(items=[AuditEventOut(**service.event_dict(e)) for e in events], total=total)


def _streamed(request: Request, produce) -> Iterator[str]:
    """Stream from a session of its own: the response outlives the request's unit of work."""
    with request.app.state.allot.sessions() as db:
        yield from produce(db)


def _csv(request: Request, filename: str, produce) -> StreamingResponse:
    return StreamingResponse(_streamed(request, produce), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@router.get("/exports/audit.csv", response_class=StreamingResponse)
def export_audit(f: Filter, request: Request) -> StreamingResponse:
    """Every matching event, oldest first; `changes` is a JSON cell."""
    return _csv(request, "audit.csv", lambda db: service.csv_rows(db, f))


@router.get("/exports/credentials.csv", response_class=StreamingResponse)
def export_credentials(request: Request) -> StreamingResponse:
    """Every credential of every user and service account, without secrets."""

    def rows(db) -> Iterator[str]:
        now = utcnow()
        yield service.to_csv_line(CREDENTIAL_COLUMNS)
        for view in credentials.iter_credentials(db):
            values = view.as_dict(now)
            yield service.to_csv_line([values[c] for c in CREDENTIAL_COLUMNS])

    return _csv(request, "credentials.csv", rows)
