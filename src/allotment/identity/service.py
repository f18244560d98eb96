"""Users: validation, creation, lookup, listing, updates, (de)activation, passwords and login.

Functions take a session and never commit. Every state change is written to the audit log here (so no route can
forget it) and marks the session with `mark_identity_changed`, which clears the auth cache on commit.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from allotment.api.state import mark_identity_changed
from allotment.audit import service as audit
from allotment.core import limits
from allotment.core.names import as_id, confusable_with, is_digits, name_problems, text_problems
from allotment.core.passwords import password_problems
from allotment.core.permissions import Principal
from allotment.db import utcnow
from allotment.errors import (
    Conflict,
    DomainError,
    FieldError,
    Forbidden,
    NotFound,
    TooManyRequests,
    Unauthenticated,
    ValidationFailed,
    invalid,
)
from allotment.identity import lockout
from allotment.identity.models import (
    ADMINS_GROUP,
    QUEUE_ADMINS_GROUP,
    USER,
    USERS_GROUP,
    Credential,
    Group,
    GroupMember,
    LoginSession,
    User,
)
from allotment.identity.secrets import hash_password, new_session_token, token_digest, verify_password
from allotment.identity.throttle import RateLimiter, retry_after

MAX_FIELD = 64
EMAIL_IMMUTABLE = "cannot be changed: the e-mail is the account's identity"
# The fields the audit log shows for a user (never the password hash).
AUDITED_FIELDS = ("username", "email", "full_name", "is_active", "need_password_change", "resource_policy")
SORTS = {"username": User.username_key, "email": User.email_key, "created_at": User.created_at}


class WrongPassword(DomainError):
    """The current password given to confirm a change is wrong: a failed credential check (403, the request is
    well-formed), throttled per account and audited (see confirm_password). `errors` names the field for forms."""

    def __init__(self, field: str = "current_password"):
        super().__init__(f"{field}: is not your current password", [FieldError(field, "is not your current password")],
                         403, "Forbidden", "wrong_password")


# --- validation ---------------------------------------------------------------------------------------------------

def check_email(email: str) -> list[str]:
    problems = []
    if len(email) > limits.MAX_EMAIL:
        problems.append(f"must be at most {limits.MAX_EMAIL} characters long")
    try:
        # test_environment admits the reserved .test domain, as the OpenAPI's `format: email` does.
        validate_email(email, check_deliverability=False, test_environment=True)
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
    # Users are addressed by id, username or e-mail: a username that looks like either would be ambiguous.
    if "@" in username:
        problems.append("must not contain '@' (it would be mistaken for an e-mail address)")
    if is_digits(username):
        problems.append("must not be only digits (it would be mistaken for a user id)")
    # The sentences above name the common mistakes; the pattern (core/names.py) catches every other character.
    return problems or name_problems(username, "user")


def check_full_name(full_name: str | None) -> list[str]:
    if full_name is None:
        return []
    problems = [f"must be at most {MAX_FIELD} characters long"] if len(full_name) > MAX_FIELD else []
    return problems + text_problems(full_name)


def check_resource_policy(policy: str | None) -> list[str]:
    """The name of a resource policy. It may be created after the users who name it (their jobs are refused until
    then: policies.service.policy_of), so only the name rule is checked here."""
    return [] if policy is None else name_problems(policy, "resource policy", MAX_FIELD, spaces=True)


def raise_field_problems(problems: dict[str, list[str]]) -> None:
    errors = [FieldError(f, msg) for f, msgs in problems.items() for msg in msgs]
    if errors:
        raise ValidationFailed("; ".join(f"{e.field} {e.message}" for e in errors), errors)


def new_user_problems(email: str, username: str, password: str, full_name: str | None,
                      resource_policy: str | None = None) -> dict[str, list[str]]:
    """Every rule a new user's fields break, per field (empty lists when fine)."""
    return {
        "email": check_email(email),
        "username": check_username(username),
        "full_name": check_full_name(full_name),
        "password": password_problems(password),
        "resource_policy": check_resource_policy(resource_policy),
    }


# --- lookup -------------------------------------------------------------------------------------------------------

def find_user(session: Session, ref: str | int) -> User:
    """A user or service account by id, username or e-mail (case-insensitive)."""
    ref_text = str(ref).strip()
    user = None
    if as_id(ref_text) is not None:
        user = session.get(User, as_id(ref_text))
    if user is None:
        key = ref_text.lower()
        user = session.scalar(select(User).where((User.username_key == key) | (User.email_key == key)))
    if user is None:
        raise NotFound(f"no user or service account '{ref_text}'")
    return user


def names_of_users(session: Session, ids: set[int]) -> dict[int, tuple[str, str]]:
    """id -> (kind, username) of users and service accounts."""
    if not ids:
        return {}
    return {i: (kind, name) for i, kind, name in session.execute(
        select(User.id, User.kind, User.username).where(User.id.in_(sorted(ids))))}


def find_user_id(session: Session, ref: str | int) -> int:
    return find_user(session, ref).id


def find_person(session: Session, ref: str | int) -> User:
    """A human user (not a service account) by id, username or e-mail."""
    user = find_user(session, ref)
    if user.kind != USER:
        raise NotFound(f"no user '{str(ref).strip()}' ({user.username} is a service account)")
    return user


def ensure_unique(session: Session, email: str | None, username: str, exclude_id: int | None = None) -> None:
    errors = uniqueness_problems(session, email, username, exclude_id)
    if errors:
        raise Conflict("; ".join(e.message for e in errors), errors)


def uniqueness_problems(session: Session, email: str | None, username: str | None,
                        exclude_id: int | None = None) -> list[FieldError]:
    errors = []
    if email:
        other = session.scalar(select(User.id).where(User.email_key == email.lower()))
        if other is not None and other != exclude_id:
            errors.append(FieldError("email", f"e-mail {email} is already registered"))
    if username:
        other = session.scalar(select(User.id).where(User.username_key == username.lower()))
        if other is not None and other != exclude_id:
            errors.append(FieldError("username", f"username {username} is already taken"))
        else:
            # Deleted service accounts keep their row (for history) but free their name.
            look_alike = confusable_with(username, session.scalars(
                select(User.username).where(User.id != (exclude_id or 0), User.deleted_at.is_(None))))
            if look_alike is not None:
                errors.append(FieldError("username", f"username {username} could be taken for the existing "
                                                     f"{look_alike}: choose a name that looks different"))
    return errors


def builtin_group(session: Session, name: str) -> Group:
    group = session.scalar(select(Group).where(Group.name == name))
    if group is None:
        group = Group(name=name, builtin=True, description=f"built-in group '{name}'")
        session.add(group)
        session.flush()
    return group


def ensure_builtin_groups(session: Session) -> None:
    builtin_group(session, USERS_GROUP)
    builtin_group(session, ADMINS_GROUP)
    builtin_group(session, QUEUE_ADMINS_GROUP)


def snapshot(user: User) -> dict[str, Any]:
    return {name: getattr(user, name) for name in AUDITED_FIELDS}


def as_principal(user: User) -> Principal:
    """A minimal principal naming the user, for audit events the user causes themselves (logins)."""
    return Principal(id=user.id, kind=user.kind, username=user.username)


# --- platform admins ----------------------------------------------------------------------------------------------

def active_admin_ids(session: Session, lock: bool = False) -> set[int]:
    """Ids of the active human members of `admins`. lock=True serialises concurrent removals on PostgreSQL."""
    admins = builtin_group(session, ADMINS_GROUP)
    if lock:
        session.execute(select(Group.id).where(Group.id == admins.id).with_for_update())
    rows = session.scalars(
        select(User.id).join(GroupMember, GroupMember.user_id == User.id)
        .where(GroupMember.group_id == admins.id, User.kind == USER, User.is_active.is_(True))
    )
    return set(rows)


def ensure_admin_remains(session: Session, leaving_user_id: int, what: str) -> None:
    """Refuse a change that would leave the platform without an active platform admin."""
    admins = active_admin_ids(session, lock=True)
    if leaving_user_id in admins and len(admins) == 1:
        raise Conflict(f"cannot {what}: they are the last active platform admin; make someone else an admin first")


# --- create -------------------------------------------------------------------------------------------------------

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
    """Create a user after checking every rule. Not audited: see `register_user` for the audited form."""
    email, username = email.strip(), username.strip()
    raise_field_problems(new_user_problems(email, username, password, full_name, resource_policy))
    ensure_unique(session, email, username)
    user = User(kind=USER, email=email, email_key=email.lower(), username=username, username_key=username.lower(),
                full_name=full_name, password_hash=hash_password(password), is_active=is_active,
                need_password_change=need_password_change, resource_policy=resource_policy)
    session.add(user)
    try:
        session.flush()
    except IntegrityError as exc:  # a concurrent request registered the same name between check and insert
        raise Conflict(f"e-mail {email} or username {username} was registered at the same moment; retry") from exc
    if platform_admin:
        session.add(GroupMember(group_id=builtin_group(session, ADMINS_GROUP).id, user_id=user.id))
        session.flush()
    # Every way of creating an account passes here: its personal workspace, and its pending invitations accepted.
    from allotment.workspaces.invitations import on_user_created

    on_user_created(session, user)
    mark_identity_changed(session)
    return user


def register_user(session: Session, actor: Principal | None, source: str | None, **fields: Any) -> User:
    """Create a user (see create_user) and record it in the audit log."""
    user = create_user(session, **fields)
    audit.record(session, actor, "user.create", "user", user.username, user.id,
                 changes=audit.diff({}, snapshot(user)), source=source)
    return user


# --- read ---------------------------------------------------------------------------------------------------------

def _like(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def list_users(session: Session, active: bool | None = None, search: str | None = None, sort: str = "username",
               limit: int = 50, offset: int = 0) -> tuple[list[User], int]:
    """Human users, filtered by active flag and a substring of e-mail or username; (page, total)."""
    key = sort.removeprefix("-")
    if key not in SORTS:
        allowed = ", ".join(f"{k}, -{k}" for k in SORTS)
        raise invalid("sort", f"unknown sort '{sort}'; use one of {allowed}")
    query = select(User).where(User.kind == USER)
    if active is not None:
        query = query.where(User.is_active.is_(active))
    if search and search.strip():
        pattern = _like(search.strip())
        query = query.where(or_(User.username_key.like(pattern, escape="\\"),
                                User.email_key.like(pattern, escape="\\")))
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    column = SORTS[key]
    order = column.desc() if sort.startswith("-") else column.asc()
    rows = session.scalars(query.order_by(order, User.id).limit(limit).offset(offset)).all()
    return list(rows), total


def group_names(session: Session, user: User) -> list[str]:
    """Explicit groups plus the built-in `users` group every human user is implicitly in."""
    names = set(session.scalars(
        select(Group.name).join(GroupMember, GroupMember.group_id == Group.id).where(GroupMember.user_id == user.id)
    ))
    if user.kind == USER:
        names.add(USERS_GROUP)
    return sorted(names)


def usable_credential_count(session: Session, user_id: int, now: datetime | None = None) -> int:
    now = now or utcnow()
    return session.scalar(
        select(func.count()).select_from(Credential).where(
            Credential.user_id == user_id, Credential.revoked_at.is_(None),
            or_(Credential.expires_at.is_(None), Credential.expires_at > now))
    )


def user_detail(session: Session, user: User) -> dict[str, Any]:
    """The user's fields plus groups, effective cluster roles (by cluster name) and usable credential count."""
    from allotment.identity.authn import load_principal  # authn imports the api layer's state; keep it late
    from allotment.inventory.models import Cluster

    principal = load_principal(session, user)
    names = dict(session.execute(select(Cluster.id, Cluster.name)).all())
    roles = {names[cid]: role for cid, role in principal.cluster_roles.items() if cid in names}
    return {
        "user": user,
        "groups": group_names(session, user),
        "cluster_roles": dict(sorted(roles.items())),
        "credential_count": usable_credential_count(session, user.id),
        "is_platform_admin": principal.is_platform_admin,
    }


def export_rows(session: Session) -> list[dict[str, Any]]:
    """Every human user, with groups, for the CSV export."""
    users = session.scalars(select(User).where(User.kind == USER).order_by(User.username_key)).all()
    memberships: dict[int, list[str]] = {}
    for user_id, name in session.execute(
        select(GroupMember.user_id, Group.name).join(Group, Group.id == GroupMember.group_id)
    ):
        memberships.setdefault(user_id, []).append(name)
    return [
        {
            "username": u.username, "email": u.email, "full_name": u.full_name or "",
            "is_active": u.is_active, "need_password_change": u.need_password_change,
            "resource_policy": u.resource_policy or "",
            "groups": ";".join(sorted({USERS_GROUP, *memberships.get(u.id, [])})),
            "created_at": u.created_at.isoformat(timespec="seconds"),
        }
        for u in users
    ]


# --- update -------------------------------------------------------------------------------------------------------

# ClearML's profile: a user may change their own username (same rules as a new one: unique, no look-alike of
# another name) and full name. Sessions and credentials name the user by id, so they stay valid.
SELF_EDITABLE = {"username", "full_name", "password", "current_password"}
NOT_NULL = ("username", "password", "is_active", "need_password_change")


def update_user(session: Session, actor: Principal, user: User, changes: dict[str, Any], source: str | None,
                confirmations: RateLimiter) -> User:
    """Apply a PATCH. `changes` holds only the fields the client sent. A non-admin may change only their own
    username, full name and password; changing one's own password needs `current_password`."""
    if "email" in changes:
        raise invalid("email", EMAIL_IMMUTABLE)
    is_self = actor.id == user.id
    if not actor.is_platform_admin:
        if not is_self:
            raise Forbidden("only platform admins may change other users")
        refused = sorted(set(changes) - SELF_EDITABLE)
        if refused:
            raise Forbidden(f"you may change only your own username, full_name and password, not "
                            f"{', '.join(refused)}")
    if is_self and actor.actor_id is not None and changes.get("password") is not None:
        raise Forbidden("a service account acting on behalf of a user cannot change that user's password")
    if is_self and actor.actor_id is not None and changes.get("username") is not None:
        raise Forbidden("a service account acting on behalf of a user cannot change that user's username")
    problems: dict[str, list[str]] = {f: ["must not be null"] for f in NOT_NULL if f in changes and changes[f] is None}
    if changes.get("username") is not None:
        problems.setdefault("username", []).extend(check_username(changes["username"].strip()))
    if "full_name" in changes:
        problems.setdefault("full_name", []).extend(check_full_name(changes["full_name"]))
    if changes.get("password") is not None:
        problems.setdefault("password", []).extend(password_problems(changes["password"]))
    if "resource_policy" in changes:
        problems.setdefault("resource_policy", []).extend(check_resource_policy(changes["resource_policy"]))
    if changes.get("password") is not None and is_self and not changes.get("current_password"):
        problems.setdefault("current_password", []).append("is required to change your own password")
    raise_field_problems(problems)
    if changes.get("password") is not None and is_self:
        confirm_password(session, user, changes["current_password"], source, confirmations)
    if changes.get("username") is not None:
        ensure_unique(session, None, changes["username"].strip(), exclude_id=user.id)

    before = snapshot(user)
    if changes.get("username") is not None:
        user.username = changes["username"].strip()
        user.username_key = user.username.lower()
    for name in ("full_name", "need_password_change", "resource_policy"):
        if name in changes:
            setattr(user, name, changes[name])
    password_changed = changes.get("password") is not None
    if password_changed:
        _set_password(session, user, changes["password"], keep_session_id=actor.session_id if is_self else None)
    session.flush()
    after = snapshot(user)
    diff = audit.diff(before, after)
    if password_changed:
        diff["after"]["password_changed"] = True
    if diff["after"]:
        audit.record(session, actor, "user.update", "user", user.username, user.id, changes=diff, source=source)
    if "is_active" in changes and changes["is_active"] != user.is_active:
        (activate_user if changes["is_active"] else deactivate_user)(session, actor, user, source)
    mark_identity_changed(session)
    return user


def _set_password(session: Session, user: User, password: str, keep_session_id: int | None) -> None:
    """Set a new password and end the user's other login sessions (a leaked session must not outlive it)."""
    user.password_hash = hash_password(password)
    user.failed_logins = 0
    user.locked_until = None
    query = update(LoginSession).where(LoginSession.user_id == user.id, LoginSession.revoked_at.is_(None))
    if keep_session_id is not None:
        query = query.where(LoginSession.id != keep_session_id)
    session.execute(query.values(revoked_at=utcnow()))


def confirm_password(session: Session, user: User, password: str, source: str | None,
                     confirmations: RateLimiter) -> None:
    """Check a signed-in user's current password before they change it.

    Wrong guesses are throttled per account (429 with Retry-After, at the lockout's rate) and audited, but they do
    not lock password sign-in, and a lock does not stop this check. The caller is already signed in: locking their
    password sign-in would let whoever holds a session (or a credential) lock the owner out of new sign-ins, and
    refusing the right password because of someone else's failed sign-ins would stop the owner from doing the one
    thing that helps against a guesser, changing the password (which also lifts the lock). What the lock protects,
    the password, is protected here by the throttle: it is taken before the check, so a throttled guess is never
    checked and the answer cannot tell a right guess."""
    key = f"user:{user.id}"
    wait = confirmations.take(key)
    if wait:
        raise TooManyRequests(f"too many wrong current passwords for this account; try again in "
                              f"{retry_after(wait)} s", "password_confirmation_throttled", retry_after(wait))
    if not verify_password(user.password_hash, password):
        audit.record(session, as_principal(user), "auth.password_confirm_failed", "user", user.username, user.id,
                     source=source)
        raise WrongPassword()
    confirmations.give_back(key)  # the right password is not held against the account


def change_own_password(session: Session, actor: Principal, current_password: str, new_password: str,
                        source: str | None, confirmations: RateLimiter) -> None:
    """POST /auth/password: the principal's own password, confirmed by the current one."""
    if actor.actor_id is not None:
        raise Forbidden("a service account acting on behalf of a user cannot change that user's password")
    user = session.get(User, actor.id)
    if user is None or user.kind != USER:
        raise Forbidden("service accounts have no password; they authenticate with access keys")
    problems = {"new_password": password_problems(new_password)}
    if new_password == current_password:
        problems["new_password"].append("must differ from the current password")
    raise_field_problems(problems)
    confirm_password(session, user, current_password, source, confirmations)
    _set_password(session, user, new_password, keep_session_id=actor.session_id)
    # The descriptive "must change password" flag is satisfied once the user picks their own password.
    before_flag = user.need_password_change
    user.need_password_change = False
    session.flush()
    audit.record(session, actor, "user.password_change", "user", user.username, user.id,
                 changes={"before": {"need_password_change": before_flag},
                          "after": {"need_password_change": False, "password_changed": True}}, source=source)
    mark_identity_changed(session)


# --- deactivate / activate ----------------------------------------------------------------------------------------

MAX_LISTED_JOBS = 20


def deactivate_user(session: Session, actor: Principal, user: User, source: str | None,
                    stop_jobs: bool = False) -> list[int]:
    """Deactivate: the user cannot log in, every credential is revoked and every login session ended. Returns the
    ids of the jobs it cancelled.

    While the user has admitted or running jobs (holding GPUs) it is refused (409, listing them), unless `stop_jobs`
    (DKube refuses to delete a user with an active job): then every unfinished job of theirs is cancelled through the
    normal path, so the engines stop them, and audited. Jobs still waiting for admission are cancelled in either case:
    nothing of a deactivated user may start.
    """
    from allotment.workloads import owner_jobs  # workloads imports identity's models

    if user.is_active:
        ensure_admin_remains(session, user.id, f"deactivate {user.username}")
    holding = owner_jobs.holding_jobs(session, user.id)
    if holding and not stop_jobs:
        listed = owner_jobs.describe(session, holding[:MAX_LISTED_JOBS])
        more = f" and {len(holding) - MAX_LISTED_JOBS} more" if len(holding) > MAX_LISTED_JOBS else ""
        message = (f"{user.username} has {len(holding)} admitted or running job(s): {', '.join(listed)}{more}; "
                   f"cancel them first, or deactivate with stop_jobs to cancel them (CLI: --stop-jobs)")
        raise Conflict(message, [FieldError("stop_jobs", message)])
    reason = f"{user.username} was deactivated by {actor.actor_username or actor.username}"
    if stop_jobs:
        cancelled = owner_jobs.stop_all(session, actor, user.id, reason, source)
    else:
        cancelled = owner_jobs.cancel_waiting(session, actor, user.id, None, reason, source)
    now = utcnow()
    was_active = user.is_active
    user.is_active = False
    credentials = session.execute(
        update(Credential).where(Credential.user_id == user.id, Credential.revoked_at.is_(None))
        .values(revoked_at=now)
    ).rowcount
    sessions = session.execute(
        update(LoginSession).where(LoginSession.user_id == user.id, LoginSession.revoked_at.is_(None))
        .values(revoked_at=now)
    ).rowcount
    session.flush()
    if was_active or credentials or sessions or cancelled:
        audit.record(session, actor, "user.deactivate", "user", user.username, user.id,
                     changes={"before": {"is_active": was_active},
                              "after": {"is_active": False, "credentials_revoked": credentials,
                                        "sessions_ended": sessions, "stop_jobs": stop_jobs,
                                        "jobs_cancelled": [j.id for j in cancelled]}}, source=source)
    mark_identity_changed(session)
    return [j.id for j in cancelled]


def activate_user(session: Session, actor: Principal, user: User, source: str | None) -> User:
    """Reactivate. Revoked credentials stay revoked: the user (or an admin) creates new ones."""
    if user.is_active:
        return user
    before = {"is_active": False, "locked_until": user.locked_until}
    user.is_active = True
    user.failed_logins = 0
    user.locked_until = None
    session.flush()
    audit.record(session, actor, "user.activate", "user", user.username, user.id,
                 changes=audit.diff(before, {"is_active": True, "locked_until": None}), source=source)
    mark_identity_changed(session)
    return user


# --- login --------------------------------------------------------------------------------------------------------

def login(session: Session, username: str, password: str, source: str | None, secret_key: str,
          max_failures: int, lock_minutes: int, session_hours: int, now: datetime | None = None) -> tuple[User, str]:
    """Check a password sign-in; return the user and a new session token. Locks after repeated failures.

    Unknown users, service accounts, wrong passwords and locked accounts get the same answer after the same work
    (one argon2 verification, against a dummy hash when there is no password to check), so neither the answer nor
    its timing tells which accounts exist or are locked (see identity.lockout). Callers throttle it per source and
    bound concurrent calls (identity.sign_in). `now` is injectable so tests can step past a lock without waiting."""
    now = now or utcnow()
    key = username.strip().lower()
    user = session.scalar(select(User).where((User.username_key == key) | (User.email_key == key)))
    person = user if user is not None and user.kind == USER else None
    correct = verify_password(person.password_hash if person else None, password)
    refusal = Unauthenticated(lockout.sign_in_refusal(max_failures, lock_minutes))
    if person is None or lockout.is_locked(person, now):
        raise refusal
    if not correct:
        lockout.register_failure(session, person, now, max_failures, lock_minutes, source)
        raise refusal
    if not person.is_active:
        raise Unauthenticated("the account is inactive")
    return person, open_session(session, person, source, secret_key, session_hours, now)


def open_session(session: Session, person: User, source: str | None, secret_key: str, session_hours: int,
                 now: datetime, via: str | None = None) -> str:
    """Issue a login session to a signed-in person (password or single sign-on: `via` names the connection) and
    audit it; a sign-in clears earlier failed attempts and any lock. Returns the session token."""
    person.failed_logins = 0
    person.locked_until = None
    token = new_session_token()
    session.add(LoginSession(token_hash=token_digest(secret_key, token), user_id=person.id, source=source,
                             expires_at=now + timedelta(hours=session_hours)))
    session.flush()
    audit.record(session, as_principal(person), "auth.login", "user", person.username, person.id,
                 changes={"after": {"via": via}} if via else None, source=source)
    mark_identity_changed(session)
    return token
