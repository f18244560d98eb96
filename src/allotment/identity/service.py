"""Users: validation, creation, lookup, login. Functions take a session and never commit."""

from __future__ import annotations

from datetime import timedelta

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select
from sqlalchemy.orm import Session

from allotment.api.state import mark_identity_changed
from allotment.core.passwords import password_problems
from allotment.db import utcnow
from allotment.errors import Conflict, FieldError, Locked, NotFound, Unauthenticated, ValidationFailed
from allotment.identity.models import ADMINS_GROUP, USER, USERS_GROUP, Group, GroupMember, LoginSession, User
from allotment.identity.secrets import hash_password, new_session_token, token_digest, verify_password

MAX_FIELD = 64


def check_email(email: str) -> list[str]:
    problems = []
    if len(email) > MAX_FIELD:
        problems.append(f"must be at most {MAX_FIELD} characters long")
    try:
        validate_email(email, check_deliverability=False)
    except EmailNotValidError as exc:
        problems.append(f"is not a valid e-mail address ({exc})")
    return problems


def check_username(username: str) -> list[str]:
    problems = []
    if not username.strip():
        problems.append("must not be empty")
    if len(username) > MAX_FIELD:
        problems.append(f"must be at most {MAX_FIELD} characters long")
    if any(c.isspace() for c in username) or ":" in username:
        problems.append("must not contain spaces or ':'")
    return problems


def check_full_name(full_name: str | None) -> list[str]:
    return [f"must be at most {MAX_FIELD} characters long"] if full_name and len(full_name) > MAX_FIELD else []


def raise_field_problems(problems: dict[str, list[str]]) -> None:
    errors = [FieldError(f, msg) for f, msgs in problems.items() for msg in msgs]
    if errors:
        raise ValidationFailed("; ".join(f"{e.field} {e.message}" for e in errors), errors)


def find_user(session: Session, ref: str | int) -> User:
    """A user or service account by id, username or e-mail (case-insensitive)."""
    ref_text = str(ref).strip()
    user = None
    if ref_text.isdigit():
        user = session.get(User, int(ref_text))
    if user is None:
        key = ref_text.lower()
        user = session.scalar(select(User).where((User.username_key == key) | (User.email_key == key)))
    if user is None:
        raise NotFound(f"no user or service account '{ref_text}'")
    return user


def find_user_id(session: Session, ref: str | int) -> int:
    return find_user(session, ref).id


def ensure_unique(session: Session, email: str | None, username: str, exclude_id: int | None = None) -> None:
    errors = []
    if email:
        other = session.scalar(select(User.id).where(User.email_key == email.lower()))
        if other is not None and other != exclude_id:
            errors.append(FieldError("email", f"e-mail {email} is already registered"))
    other = session.scalar(select(User.id).where(User.username_key == username.lower()))
    if other is not None and other != exclude_id:
        errors.append(FieldError("username", f"username {username} is already taken"))
    if errors:
        raise Conflict("; ".join(e.message for e in errors), errors)


def builtin_group(session: Session, name: str) -> Group:
    group = session.scalar(select(Group).where(Group.name == name))
    if group is None:
        group = Group(name=name, builtin=True, description=f"built-in group '{name}'")
        session.add(group)
        session.flush()
    return group


def create_user(
    session: Session,
    email: str,
    username: str,
    password: str,
    full_name: str | None = None,
    need_password_change: bool = False,
    is_active: bool = True,
    platform_admin: bool = False,
    resource_policy: str | None = None,
) -> User:
    raise_field_problems({
        "email": check_email(email),
        "username": check_username(username),
        "full_name": check_full_name(full_name),
        "password": password_problems(password),
    })
    ensure_unique(session, email, username)
    user = User(kind=USER, email=email, email_key=email.lower(), username=username, username_key=username.lower(),
                full_name=full_name, password_hash=hash_password(password), is_active=is_active,
                need_password_change=need_password_change, resource_policy=resource_policy)
    session.add(user)
    session.flush()
    if platform_admin:
        session.add(GroupMember(group_id=builtin_group(session, ADMINS_GROUP).id, user_id=user.id))
        session.flush()
    mark_identity_changed(session)
    return user


def login(session: Session, username: str, password: str, source: str | None, secret_key: str,
          max_failures: int, lock_minutes: int, session_hours: int) -> tuple[User, str]:
    """Check a password login; return the user and a new session token. Locks after repeated failures."""
    now = utcnow()
    key = username.strip().lower()
    user = session.scalar(select(User).where((User.username_key == key) | (User.email_key == key)))
    if user is not None and user.locked_until is not None and user.locked_until > now:
        raise Locked(f"account locked after {max_failures} failed logins until {user.locked_until.isoformat()}")
    ok = verify_password(user.password_hash if user else None, password)
    if user is None or not ok or user.kind != USER:
        if user is not None and user.kind == USER:
            user.failed_logins += 1
            if user.failed_logins >= max_failures:
                user.locked_until = now + timedelta(minutes=lock_minutes)
                user.failed_logins = 0
                session.flush()
                raise Locked(f"account locked after {max_failures} failed logins until "
                             f"{user.locked_until.isoformat()}")
            session.flush()
        raise Unauthenticated("wrong username or password")
    if not user.is_active:
        raise Unauthenticated("the account is inactive")
    user.failed_logins = 0
    user.locked_until = None
    token = new_session_token()
    session.add(LoginSession(token_hash=token_digest(secret_key, token), user_id=user.id, source=source,
                             expires_at=now + timedelta(hours=session_hours)))
    session.flush()
    return user, token


def ensure_builtin_groups(session: Session) -> None:
    builtin_group(session, USERS_GROUP)
    builtin_group(session, ADMINS_GROUP)
