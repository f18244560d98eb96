"""Per site, password sign-in may be turned off so that people sign in through an identity provider only. Named
break-glass accounts, at least one of them an active platform admin with a password, keep password sign-in, so the
site can be administered when the provider is down."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from allotment.audit import service as audit
from allotment.core.permissions import Principal
from allotment.errors import Conflict, FieldError, Forbidden, NotFound
from allotment.federation.models import PasswordLoginPolicy
from allotment.identity.models import USER, User
from allotment.identity.service import active_admin_ids, find_person

TURNED_OFF = ("password sign-in is turned off on this site: sign in with single sign-on (the buttons on the login "
              "page, or `allot login URL --sso NAME`)")


def current(session: Session) -> PasswordLoginPolicy:
    policy = session.get(PasswordLoginPolicy, 1)
    if policy is None:
        policy = PasswordLoginPolicy(id=1, enabled=True, break_glass_user_ids=[])
        session.add(policy)
        session.flush()
    return policy


def view(session: Session) -> dict[str, Any]:
    policy = session.get(PasswordLoginPolicy, 1)
    ids = list(policy.break_glass_user_ids or []) if policy else []
    names = dict(session.execute(select(User.id, User.username).where(User.id.in_(ids))).all()) if ids else {}
    return {"enabled": policy.enabled if policy else True,
            "break_glass": [names[i] for i in ids if i in names]}


def password_sign_in_refusal(session: Session, username: str) -> str | None:
    """Why `username` may not sign in with a password; None when it may. Every name but a break-glass account's
    gets the same answer, so the answer tells nothing about which accounts exist."""
    policy = session.get(PasswordLoginPolicy, 1)
    if policy is None or policy.enabled:
        return None
    key = username.strip().lower()
    user = session.scalar(select(User).where((User.username_key == key) | (User.email_key == key)))
    if user is not None and user.id in (policy.break_glass_user_ids or []):
        return None
    return TURNED_OFF


def update(session: Session, actor: Principal, enabled: bool, break_glass: list[str] | None,
           source: str | None = None) -> dict[str, Any]:
    """Turn password sign-in on or off; `break_glass` (usernames) replaces the list when given. Turning it off
    needs a break-glass account that is an active platform admin with a password."""
    policy = current(session)
    before = view(session)
    ids = list(policy.break_glass_user_ids or [])
    if break_glass is not None:
        ids, errors = [], []
        for ref in break_glass:
            try:
                user = find_person(session, ref)
            except NotFound:
                errors.append(FieldError("break_glass", f"{ref} is not a user"))
                continue
            ids.append(user.id)
        if errors:  # a body naming objects that do not exist: 404, as elsewhere
            missing = NotFound("; ".join(f"{e.field}: {e.message}" for e in errors))
            missing.errors = errors
            raise missing
        ids = list(dict.fromkeys(ids))
    if not enabled:
        admins = active_admin_ids(session)
        usable = [i for i in ids if i in admins and (u := session.get(User, i)) is not None and u.kind == USER
                  and u.password_hash]
        if not usable:
            # A conflict with who the site's admins are (as removing the last admin is): not a malformed request.
            raise Conflict(
                "break_glass: turning password sign-in off needs at least one break-glass account that is an active "
                "platform admin with a password", [FieldError("break_glass", "must name at least one active platform "
                                                                            "admin with a password")])
    policy.enabled = enabled
    policy.break_glass_user_ids = ids
    session.flush()
    after = view(session)
    audit.record(session, actor, "sso.password_login", "site", "password_login", None,
                 changes=audit.diff(before, after), source=source)
    return after


def ensure_password_sign_in(session: Session, username: str) -> None:
    refusal = password_sign_in_refusal(session, username)
    if refusal:
        raise Forbidden(refusal)
