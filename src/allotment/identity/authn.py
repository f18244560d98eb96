"""Turn a bearer token (login session or access key + secret) into a Principal, cheaply.

Tokens: `st_...` is a login session; `AK...:SECRET` is a credential. Resolved principals are cached by token digest
(see AuthCache); the cache is cleared by every committed identity change, so revocation and deactivation take effect
on the next request.
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy import false, select, update

from allotment.api.state import AppState
from allotment.core.permissions import ROLE_ORDER, Principal
from allotment.db import utcnow
from allotment.errors import Forbidden, Unauthenticated
from allotment.identity import throttle
from allotment.identity.models import (
    ADMINS_GROUP,
    SERVICE_ACCOUNT,
    USER,
    USERS_GROUP,
    ClusterRoleGrant,
    Credential,
    Group,
    GroupMember,
    LoginSession,
    User,
)
from allotment.identity.secrets import SESSION_PREFIX, digests_equal, token_digest
from allotment.inventory.models import Cluster

LAST_USED_WRITE_INTERVAL_S = 60.0


def load_principal(session, user: User, credential_id: int | None = None, session_id: int | None = None,
                   workspace_id: int | None = None) -> Principal:
    """Groups, platform-admin status and effective cluster roles (the highest of direct and group grants).

    Every principal is implicitly in the built-in `users` group, so a role granted to `users` reaches everyone.
    """
    group_rows = session.execute(
        select(Group.id, Group.name).where(
            Group.id.in_(select(GroupMember.group_id).where(GroupMember.user_id == user.id))
            | (Group.name == USERS_GROUP))
    ).all()
    group_ids = frozenset(r.id for r in group_rows)
    is_admin = any(r.name == ADMINS_GROUP for r in group_rows)
    roles: dict[int, str] = {}
    grants = session.execute(
        select(ClusterRoleGrant.cluster_id, ClusterRoleGrant.role).where(
            (ClusterRoleGrant.user_id == user.id)
            | (ClusterRoleGrant.group_id.in_(group_ids) if group_ids else false())
        )
    ).all()
    for cluster_id, role in grants:
        if role in ROLE_ORDER and ROLE_ORDER[role] > ROLE_ORDER.get(roles.get(cluster_id, ""), 0):
            roles[cluster_id] = role
    cluster_names = dict(session.execute(select(Cluster.id, Cluster.name).where(Cluster.id.in_(list(roles))))
                         .all()) if roles else {}
    return Principal(id=user.id, kind=user.kind, username=user.username, is_platform_admin=is_admin,
                     cluster_roles=roles, group_ids=group_ids, credential_id=credential_id, session_id=session_id,
                     group_names=frozenset(r.name for r in group_rows), cluster_names=cluster_names,
                     workspace_id=workspace_id)


class _Entry:
    __slots__ = ("credential_id", "expires_at", "principal")

    def __init__(self, principal: Principal, expires_at: datetime | None, credential_id: int | None):
        self.principal = principal
        self.expires_at = expires_at
        self.credential_id = credential_id


def _last_writes(state: AppState) -> dict[int, tuple[float, str | None]]:
    """credential id -> (monotonic time, source) of the last last-use write; kept apart from the auth cache so that
    cache expiry and clearing do not bring extra writes."""
    return state.extras.setdefault("credential_last_writes", {})


def _resolve(state: AppState, token: str, source: str | None) -> _Entry:
    digest = token_digest(state.secret_key, token)
    entry = state.auth_cache.get(digest)
    if entry is not None:
        return entry
    if token.startswith(SESSION_PREFIX):
        entry = _resolve_session(state, digest)
    else:
        entry = _resolve_credential(state, token, source)
    state.auth_cache.put(digest, entry)
    return entry


def _resolve_session(state: AppState, digest: str) -> _Entry:
    now = utcnow()
    with state.sessions() as session:
        row = session.execute(
            select(LoginSession, User).join(User, User.id == LoginSession.user_id)
            .where(LoginSession.token_hash == digest)
        ).first()
        if row is None or row[0].revoked_at is not None or row[0].expires_at <= now or not row[1].is_active:
            raise Unauthenticated("the session has expired or was ended; log in again")
        return _Entry(load_principal(session, row[1], session_id=row[0].id), row[0].expires_at, None)


def _resolve_credential(state: AppState, token: str, source: str | None) -> _Entry:
    """ACCESS_KEY:SECRET. Wrong ones are throttled and audited per source (throttle.CredentialFailures); a right
    secret is not a guess, so a revoked or expired credential is refused without counting against its source."""
    failures = throttle.credential_failures(state)
    failures.admit(source)
    access_key, sep, secret = token.partition(":")
    known_key = None
    now = utcnow()
    with state.sessions() as session:
        row = session.execute(
            select(Credential, User).join(User, User.id == Credential.user_id)
            .where(Credential.access_key == access_key)
        ).first() if sep else None
        expected = row[0].secret_hash if row else token_digest(state.secret_key, "absent")
        if sep and digests_equal(expected, token_digest(state.secret_key, secret)) and row is not None:
            failures.succeeded(source)
            credential, user = row
            if credential.revoked_at is not None:
                raise Unauthenticated(f"credential {access_key} has been revoked")
            if credential.expires_at is not None and credential.expires_at <= now:
                raise Unauthenticated(f"credential {access_key} expired at {credential.expires_at.isoformat()}")
            if not user.is_active:
                raise Unauthenticated("the account is inactive")
            return _Entry(load_principal(session, user, credential_id=credential.id,
                                         workspace_id=credential.workspace_id), credential.expires_at,
                          credential.id)
        known_key = access_key if row is not None else None
    # Recorded after the read above has ended: the audit write needs the database to itself on SQLite.
    failures.failed(source, known_key)
    if not sep:
        raise Unauthenticated("unrecognised token: use a session token or ACCESS_KEY:SECRET")
    raise Unauthenticated("invalid access key or secret")


def _touch_due(state: AppState, entry: _Entry, source: str | None) -> bool:
    if entry.credential_id is None:
        return False
    last = _last_writes(state).get(entry.credential_id)
    return last is None or time.monotonic() - last[0] >= LAST_USED_WRITE_INTERVAL_S or source != last[1]


def _touch_credential(state: AppState, entry: _Entry, source: str | None) -> None:
    """Record last use without a write per request: at most once a minute, or when the source changes."""
    if not _touch_due(state, entry, source):
        return
    _last_writes(state)[entry.credential_id] = (time.monotonic(), source)
    with state.sessions() as session:
        session.execute(update(Credential).where(Credential.id == entry.credential_id)
                        .values(last_used_at=utcnow(), last_used_from=source))
        session.commit()


def _impersonation_key(entry: _Entry, target: str) -> str:
    # id() is safe here: the cached value holds the entry itself, so the id cannot be reused while it is cached.
    return f"{id(entry)}>{target.strip().lower()}"


def cached_principal(state: AppState, token: str, source: str | None, on_behalf_of: str | None = None
                     ) -> Principal | None:
    """The principal when answering needs no database access (the common case: a warm cache and no last-use write
    due), so the caller can skip a thread hop; None means "call authenticate()"."""
    entry = state.auth_cache.get(token_digest(state.secret_key, token))
    if entry is None or (entry.expires_at is not None and entry.expires_at <= utcnow()):
        return None
    if _touch_due(state, entry, source):
        return None
    if on_behalf_of:
        cached = state.auth_cache.get(_impersonation_key(entry, on_behalf_of))
        return cached[1] if cached is not None and cached[0] is entry else None
    return entry.principal


def authenticate(state: AppState, token: str, source: str | None, on_behalf_of: str | None = None) -> Principal:
    """Resolve the token (from the cache, or the database), record last use, apply impersonation. May do I/O."""
    entry = _resolve(state, token, source)
    if entry.expires_at is not None and entry.expires_at <= utcnow():
        state.auth_cache.discard(token_digest(state.secret_key, token))
        raise Unauthenticated("the session or credential has expired")
    _touch_credential(state, entry, source)
    principal = entry.principal
    if on_behalf_of:
        principal = _impersonate(state, principal, on_behalf_of, entry)
    return principal


def _impersonate(state: AppState, actor: Principal, target: str, entry: _Entry | None = None) -> Principal:
    """A service account with allow_impersonation acting as an active user (ClearML's "use owner token").

    The result carries the user's groups and cluster roles but never platform-admin rights: impersonating an admin
    does not make the service account one. The actor stays recorded (actor_id), so the audit log names both.
    """
    key = target.strip().lower()
    cache_key = _impersonation_key(entry, target) if entry is not None else None
    cached = state.auth_cache.get(cache_key) if cache_key else None
    if cached is not None and cached[0] is entry:
        return cached[1]
    with state.sessions() as session:
        me = session.get(User, actor.id)
        if actor.kind != SERVICE_ACCOUNT or me is None or not me.allow_impersonation:
            raise Forbidden(f"{actor.username} may not act on behalf of other users (impersonation is off)")
        user = session.scalar(select(User).where((User.username_key == key) | (User.email_key == key)))
        if user is None or not user.is_active or user.kind != USER:
            raise Forbidden(f"cannot act on behalf of {target}: no such active user")
        principal = load_principal(session, user)
    result = replace(principal, is_platform_admin=False, actor_id=actor.id, actor_username=actor.username,
                     credential_id=actor.credential_id)
    if cache_key:
        state.auth_cache.put(cache_key, (entry, result))
    return result


def session_expiry(hours: int) -> datetime:
    return utcnow() + timedelta(hours=hours)
