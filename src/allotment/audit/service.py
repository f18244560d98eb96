"""Append to the audit log. Never pass secrets in `changes`: fields named like secrets are dropped here too."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from allotment.audit.models import AuditEvent
from allotment.core.permissions import Principal

SECRET_FIELDS = {"password", "password_hash", "secret", "secret_hash", "secret_key", "token", "token_hash"}


def clean(values: dict[str, Any] | None) -> dict[str, Any] | None:
    if values is None:
        return None
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in values.items() if k not in SECRET_FIELDS}


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Before and after of the fields that changed, secrets removed."""
    keys = [k for k in after if before.get(k) != after.get(k) and k not in SECRET_FIELDS]
    return {"before": clean({k: before.get(k) for k in keys}), "after": clean({k: after[k] for k in keys})}


def record(
    session: Session,
    actor: Principal | None,
    action: str,
    target_type: str,
    target: str | None,
    target_id: Any = None,
    changes: dict[str, Any] | None = None,
    source: str | None = None,
) -> AuditEvent:
    event = AuditEvent(
        actor_id=(actor.actor_id or actor.id) if actor else None,
        actor=(actor.actor_username or actor.username) if actor else None,
        on_behalf_of_id=actor.id if actor and actor.actor_id else None,
        on_behalf_of=actor.username if actor and actor.actor_id else None,
        action=action,
        target_type=target_type,
        target=target,
        target_id=str(target_id) if target_id is not None else None,
        source=source,
        changes=changes,
    )
    session.add(event)
    session.flush()
    return event


def revise(session: Session, event_id: int, changes: dict[str, Any]) -> None:
    """Replace the changes of an entry that sums up a running count (failed credentials per source and window):
    one row kept current instead of a row per occurrence."""
    event = session.get(AuditEvent, event_id)
    if event is not None:
        event.changes = changes
        session.flush()


@dataclass(frozen=True)
class AuditFilter:
    """What to look for. `actor` matches who acted or on whose behalf (case-insensitive, exact); `target` is a
    case-insensitive substring of the target's name; `action` is exact, or a prefix when it ends in `*`
    (`credential.*`); `since` is inclusive and `until` exclusive."""

    actor: str | None = None
    target: str | None = None
    target_type: str | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def as_utc(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _filtered(f: AuditFilter):
    query = select(AuditEvent)
    if f.actor:
        key = f.actor.strip().lower()
        query = query.where(or_(func.lower(AuditEvent.actor) == key, func.lower(AuditEvent.on_behalf_of) == key))
    if f.target:
        query = query.where(func.lower(AuditEvent.target).like(f"%{_escape_like(f.target.strip().lower())}%",
                                                                escape="\\"))
    if f.target_type:
        query = query.where(AuditEvent.target_type == f.target_type.strip())
    if f.action:
        action = f.action.strip()
        if action.endswith("*"):
            query = query.where(AuditEvent.action.like(f"{_escape_like(action[:-1])}%", escape="\\"))
        else:
            query = query.where(AuditEvent.action == action)
    if f.since:
        query = query.where(AuditEvent.at >= as_utc(f.since))
    if f.until:
        query = query.where(AuditEvent.at < as_utc(f.until))
    return query


def search(session: Session, f: AuditFilter, limit: int = 50, offset: int = 0) -> tuple[list[AuditEvent], int]:
    """Matching events, newest first, and how many match in all."""
    query = _filtered(f)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(limit).offset(offset))
    return list(rows), total


def event_dict(event: AuditEvent) -> dict[str, Any]:
    return {"id": event.id, "at": event.at, "actor": event.actor, "on_behalf_of": event.on_behalf_of,
            "action": event.action, "target_type": event.target_type, "target": event.target,
            "target_id": event.target_id, "source": event.source, "changes": event.changes}


CSV_COLUMNS = ["id", "at", "actor", "on_behalf_of", "action", "target_type", "target", "target_id", "source",
               "changes"]


def csv_rows(session: Session, f: AuditFilter) -> Iterator[str]:
    """The matching events as CSV text, header first, oldest first; `changes` as a JSON cell."""
    yield to_csv_line(CSV_COLUMNS)
    query = _filtered(f).order_by(AuditEvent.at, AuditEvent.id).execution_options(yield_per=500)
    for event in session.scalars(query):
        row = event_dict(event)
        row["changes"] = json.dumps(event.changes, sort_keys=True) if event.changes is not None else ""
        yield to_csv_line([row[c] for c in CSV_COLUMNS])


# Cells a spreadsheet would run as a formula; prefixed with a quote so an export can never execute anything.
_FORMULA_STARTS = ("=", "+", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def to_csv_line(values: list[Any]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerow([csv_cell(v) for v in values])
    return buffer.getvalue()
