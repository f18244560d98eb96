"""The secret hide-lists as stored: the platform's list (admins; never set: core/hide_list.DEFAULT_NAMES) and each
user's additions. Views ask `names_for(owner)` and mask with core/hide_list."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from allotment.core import hide_list
from allotment.core.permissions import Principal, hide_list_refusal
from allotment.errors import FieldError, Forbidden, ValidationFailed
from allotment.vaults.models import HideList


def _row(session: Session, user_id: int | None) -> HideList | None:
    where = HideList.user_id.is_(None) if user_id is None else HideList.user_id == user_id
    return session.scalar(select(HideList).where(where))


def platform_names(session: Session) -> list[str]:
    row = _row(session, None)
    return list(hide_list.DEFAULT_NAMES) if row is None else list(row.names or [])


def user_names(session: Session, user_id: int) -> list[str]:
    row = _row(session, user_id)
    return list(row.names or []) if row is not None else []


def names_for(session: Session, owner_id: int | None) -> frozenset[str]:
    """The names hidden in what belongs to `owner_id` (a job's owner): the platform's and the owner's own."""
    row = _row(session, None)
    return hide_list.effective(None if row is None else row.names,
                               user_names(session, owner_id) if owner_id is not None else ())


def check(names: list, field: str = "names") -> list[str]:
    found = hide_list.problems(names)
    if found:
        errors = [FieldError(f"{field}.{i}", p) for i, p in found]
        raise ValidationFailed("; ".join(f"{e.field}: {e.message}" for e in errors), errors)
    return hide_list.normalised(names)


def set_names(session: Session, principal: Principal, user_id: int | None, names: list) -> list[str]:
    """Replace the platform's list (user_id None) or one user's additions; returns the stored names."""
    refusal = hide_list_refusal(principal, user_id, "manage")
    if refusal:
        raise Forbidden(refusal)
    clean = check(names)
    row = _row(session, user_id)
    if row is None:
        row = HideList(user_id=user_id, names=clean)
        session.add(row)
    else:
        row.names = clean
    session.flush()
    return clean


def reset_platform(session: Session, principal: Principal) -> list[str]:
    """Back to the defaults."""
    refusal = hide_list_refusal(principal, None, "manage")
    if refusal:
        raise Forbidden(refusal)
    row = _row(session, None)
    if row is not None:
        session.delete(row)
        session.flush()
    return list(hide_list.DEFAULT_NAMES)
