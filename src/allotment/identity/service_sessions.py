"""Login sessions: ending one (logout). Creating one is `service.login`."""

from __future__ import annotations

from sqlalchemy.orm import Session

from allotment.api.state import mark_identity_changed
from allotment.db import utcnow
from allotment.identity.models import LoginSession


def end_session(session: Session, session_id: int) -> None:
    """Revoke one login session; the auth cache forgets it on commit, so the token stops working at once."""
    row = session.get(LoginSession, session_id)
    if row is not None and row.revoked_at is None:
        row.revoked_at = utcnow()
        mark_identity_changed(session)
        session.flush()
