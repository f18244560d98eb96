"""The audit log with filters (actor, target, action, time range) and a CSV export link. Platform admins only."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response

from allotment.api.deps import DB, require
from allotment.api.fields import PageNumber
from allotment.audit import service as audit
from allotment.core.permissions import PLATFORM_ADMIN, Principal
from allotment.web.audit_view import field_changes, target_href
from allotment.web.console import render
from allotment.web.paging import Page, fetch_page

router = APIRouter()


def _parse_time(text: str, field: str, errors: dict[str, list[str]]) -> datetime | None:
    """Accepts what <input type=datetime-local> sends, or any ISO 8601 time; UTC when no zone is given."""
    if not text.strip():
        return None
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        errors[field] = ["is not a date and time (use YYYY-MM-DD HH:MM)"]
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@router.get("/ui/audit")
def audit_page(request: Request, principal: Annotated[Principal, require(PLATFORM_ADMIN)], db: DB,
               actor: str = "", target: str = "", action: str = "", since: str = "", until: str = "",
               page: PageNumber = 1) -> Response:
    errors: dict[str, list[str]] = {}
    since_at, until_at = _parse_time(since, "since", errors), _parse_time(until, "until", errors)
    if since_at and until_at and since_at >= until_at:
        errors["until"] = ["must be later than since"]
    values = {"actor": actor, "target": target, "action": action, "since": since, "until": until}
    query = urlencode({k: v for k, v in values.items() if v})
    events, paging = [], Page.at(1)
    if not errors:
        f = audit.AuditFilter(actor=actor or None, target=target or None, action=action or None,
                              since=since_at, until=until_at)
        events, paging = fetch_page(page, lambda limit, offset: audit.search(db, f, limit, offset))
    rows = []
    for e in events:
        changed, context = field_changes(e.changes)
        rows.append({"event": e, "changed": changed, "context": context,
                     "href": target_href(e.target_type, e.target, e.target_id, e.action)})
    return render(request, "audit.html", {
        "rows": rows, "values": values, "errors": errors, "page": paging,
        "pager_base": f"/ui/audit?{query}&" if query else "/ui/audit?",
        "export_url": f"/api/v1/exports/audit.csv?{query}" if query else "/api/v1/exports/audit.csv",
    }, status=422 if errors else 200)
