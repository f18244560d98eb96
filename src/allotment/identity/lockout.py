"""The password lockout (Backend.AI's rule: `max_failures` wrong passwords lock password sign-in for `lock_minutes`)
and unlocking by a platform admin. Functions take a session and never commit.

What a lock does and does not do:
- It blocks password sign-in only. Credentials (access key + secret) and existing sessions keep working, so whoever
  locks an account from outside (five anonymous requests suffice) cannot lock its owner out of the API, and a locked
  admin can unlock themselves with a credential.
- It is invisible at sign-in: a locked account answers exactly like a wrong password or an unknown user (same status,
  same message, one argon2 verification each; see service.login). Saying "locked" for the right password would tell
  a guesser when the guess is right, which is what the lock exists to stop; the message names the rule instead.
- Only sign-in counts towards it. A signed-in user's wrong current passwords (when changing the password) are
  throttled per account instead, and a lock does not stop that change (see service.confirm_password).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session

from allotment.api.state import mark_identity_changed
from allotment.audit import service as audit
from allotment.core.permissions import Principal
from allotment.identity.models import User


def sign_in_refusal(max_failures: int, lock_minutes: int) -> str:
    """The one answer to every refused password sign-in: unknown user, wrong password, locked account."""
    return (f"wrong username or password (after {max_failures} failed sign-ins an account's password sign-in is "
            f"locked for {lock_minutes} minutes; a platform admin can unlock it)")


def is_locked(user: User, now: datetime) -> bool:
    return user.locked_until is not None and user.locked_until > now


def _self(user: User) -> Principal:
    """The user as the actor of events they cause themselves (failed sign-ins)."""
    return Principal(id=user.id, kind=user.kind, username=user.username)


def register_failure(session: Session, user: User, now: datetime, max_failures: int, lock_minutes: int,
                     source: str | None) -> bool:
    """Count a wrong password atomically (parallel guesses cannot slip past the limit); lock at the limit.

    Returns whether this failure locked the account."""
    count = session.execute(
        update(User).where(User.id == user.id).values(failed_logins=User.failed_logins + 1)
        .returning(User.failed_logins).execution_options(synchronize_session=False)
    ).scalar_one()
    session.refresh(user, ["failed_logins"])
    if count < max_failures:
        audit.record(session, _self(user), "auth.login_failed", "user", user.username, user.id,
                     changes={"before": {"failed_logins": count - 1}, "after": {"failed_logins": count}},
                     source=source)
        return False
    until = now + timedelta(minutes=lock_minutes)
    # Whole seconds, rounded up, so the time a message states is exactly when the lock lifts.
    user.locked_until = until.replace(microsecond=0) + timedelta(seconds=1 if until.microsecond else 0)
    user.failed_logins = 0
    session.flush()
    audit.record(session, _self(user), "auth.locked", "user", user.username, user.id,
                 changes={"before": {"locked_until": None},
                          "after": {"locked_until": user.locked_until.isoformat()}}, source=source)
    mark_identity_changed(session)
    return True


def unlock_user(session: Session, actor: Principal, user: User, source: str | None) -> bool:
    """Lift a lock and forget earlier failures (audited). Returns False, recording nothing, if there was neither."""
    if user.locked_until is None and not user.failed_logins:
        return False
    before = {"locked_until": user.locked_until, "failed_logins": user.failed_logins}
    user.locked_until = None
    user.failed_logins = 0
    session.flush()
    audit.record(session, actor, "user.unlock", "user", user.username, user.id,
                 changes=audit.diff(before, {"locked_until": None, "failed_logins": 0}), source=source)
    mark_identity_changed(session)
    return True
