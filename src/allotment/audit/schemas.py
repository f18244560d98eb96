"""Response shapes of the audit API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel


class AuditEventOut(BaseModel):
    id: int
    at: datetime
    actor: str | None
    on_behalf_of: str | None
    action: str
    target_type: str
    target: str | None
    target_id: str | None
    source: str | None
    changes: dict[str, Any] | None


class AuditEventList(BaseModel):
    items: list[AuditEventOut]
    total: int
