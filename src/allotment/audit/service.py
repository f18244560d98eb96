"""Append to the audit log. Never pass secrets in `changes`: fields named like secrets are dropped here too."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from allotment.audit.models import AuditEvent
from allotment.core.permissions import Principal

SECRET_FIELDS = {"password", "password_hash", "secret", "secret_hash", "secret_key", "token", "token_hash"}


def _clean(values: dict[str, Any] | None) -> dict[str, Any] | None:
    if values is None:
        return None
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in values.items() if k not in SECRET_FIELDS}


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Before and after of the fields that changed, secrets removed."""
    keys = [k for k in after if before.get(k) != after.get(k) and k not in SECRET_FIELDS]
    return {"before": _clean({k: before.get(k) for k in keys}), "after": _clean({k: after[k] for k in keys})}


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
