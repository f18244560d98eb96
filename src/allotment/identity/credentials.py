"""Credentials: access key + secret pairs for users and service accounts. Functions take a session and never commit.

The secret is returned once, by `create_credential`; only its HMAC (`token_digest`, keyed with the server secret) is
stored, which is what identity/authn.py compares against on every request. Users manage their own credentials,
platform admins anyone's. Every change is audited and marks identity data changed, so a revoked credential stops
authenticating on the next request.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from allotment.api.state import mark_identity_changed
from allotment.audit import service as audit
from allotment.core.expiry import ACTIVE, EXPIRED, REVOKED, BadLifetime, credential_status, parse_lifetime
from allotment.core.permissions import Principal
from allotment.db import utcnow
from allotment.errors import Conflict, Forbidden, NotFound, invalid
from allotment.identity.models import Credential, User
from allotment.identity.secrets import new_access_key, new_secret, token_digest

STATUSES = (ACTIVE, REVOKED, EXPIRED)


@dataclass(frozen=True)
class CredentialView:
    """A credential with its owner's name, as lists and exports show it (never the secret)."""

    credential: Credential
    owner: str
    owner_kind: str

    def as_dict(self, now: datetime | None = None) -> dict:
        c = self.credential
        return {
            "access_key": c.access_key, "label": c.label, "owner": self.owner, "owner_kind": self.owner_kind,
            "created_at": c.created_at, "expires_at": c.expires_at, "last_used_at": c.last_used_at,
            "last_used_from": c.last_used_from, "revoked_at": c.revoked_at,
            "status": credential_status(c.revoked_at, c.expires_at, now or utcnow()),
        }


def resolve_expiry(expires_in: str | None, expires_at: datetime | None, now: datetime,
                   both_given: bool = False) -> datetime | None:
    """The absolute expiry from either a lifetime ("30d") or a date; neither means it never expires. `both_given`:
    the request named both, even as null, which the schema forbids too."""
    if both_given or (expires_in is not None and expires_at is not None):
        raise invalid("expires_in", "give expires_in or expires_at, not both")
    if expires_in is not None:
        try:
            return now + parse_lifetime(expires_in)
        except BadLifetime as exc:
            raise invalid("expires_in", str(exc)) from None
    if expires_at is not None:
        if expires_at.tzinfo is None:
            expires_at = expires_at.replace(tzinfo=UTC)
        return expires_at  # a past one is taken as given: the credential is created expired, as its status says
    return None


def refuse_while_impersonating(actor: Principal) -> None:
    """A service account acting for someone must not mint or drop that person's long-lived credentials."""
    if actor.actor_id is not None:
        raise Forbidden("credentials cannot be managed while acting on behalf of another user")


def create_credential(session: Session, secret_key: str, owner: User, actor: Principal | None, *,
                      label: str | None = None, expires_at: datetime | None = None,
                      source: str | None = None, workspace_id: int | None = None) -> tuple[Credential, str]:
    """A new active credential for `owner`; returns it with the plain secret, which is not kept anywhere. With a
    `workspace_id` it acts in that workspace only (the caller checks that the owner is a member)."""
    if owner.deleted_at is not None:
        raise Conflict(f"service account {owner.username} has been deleted")
    if not owner.is_active:
        raise Conflict(f"{owner.username} is inactive: activate the account before creating credentials")
    label = label.strip() if label and label.strip() else None
    secret = new_secret()
    credential = Credential(access_key=new_access_key(), secret_hash=token_digest(secret_key, secret),
                            user_id=owner.id, label=label, expires_at=expires_at, created_at=utcnow(),
                            workspace_id=workspace_id)
    session.add(credential)
    session.flush()
    audit.record(session, actor, "credential.create", "credential", credential.access_key, credential.id,
                 changes={"before": None, "after": audit.clean(
                     {"owner": owner.username, "label": label, "expires_at": expires_at,
                      "workspace_id": workspace_id})},
                 source=source)
    mark_identity_changed(session)
    return credential, secret


def find_credential(session: Session, access_key: str) -> tuple[Credential, User]:
    row = session.execute(select(Credential, User).join(User, User.id == Credential.user_id)
                          .where(Credential.access_key == access_key.strip())).first()
    if row is None:
        raise NotFound(f"no credential {access_key}")
    return row[0], row[1]


def credential_for(session: Session, principal: Principal, access_key: str) -> tuple[Credential, User]:
    """The credential if the principal may manage it: its own, or any for a platform admin.

    Someone else's credential reads as absent, so access keys cannot be probed.
    """
    credential, owner = find_credential(session, access_key)
    if owner.id != principal.id and not principal.is_platform_admin:
        raise NotFound(f"no credential {access_key}")
    return credential, owner


def revoke(session: Session, credential: Credential, owner: User, actor: Principal | None,
           source: str | None = None) -> bool:
    """Revoke now; False (and nothing recorded) when it already was."""
    if credential.revoked_at is not None:
        return False
    credential.revoked_at = utcnow()
    session.flush()
    audit.record(session, actor, "credential.revoke", "credential", credential.access_key, credential.id,
                 changes=audit.diff({"revoked_at": None}, {"revoked_at": credential.revoked_at}) | {
                     "owner": owner.username},
                 source=source)
    mark_identity_changed(session)
    return True


def revoke_all_for(session: Session, owner: User, actor: Principal | None, source: str | None = None) -> list[str]:
    """Revoke every live credential of `owner` (deactivation, service account deletion); returns the access keys."""
    keys = []
    for credential in session.scalars(select(Credential).where(Credential.user_id == owner.id,
                                                               Credential.revoked_at.is_(None))):
        if revoke(session, credential, owner, actor, source):
            keys.append(credential.access_key)
    return keys


def revoke_scoped(session: Session, owner_ids: set[int], workspace_id: int, actor: Principal | None,
                  source: str | None = None) -> list[str]:
    """Revoke the live credentials of `owner_ids` scoped to one workspace (they left it or were removed); returns the
    access keys. Credentials without a scope stay: they act wherever their owner still is a member."""
    if not owner_ids:
        return []
    rows = session.execute(select(Credential, User).join(User, User.id == Credential.user_id).where(
        Credential.user_id.in_(owner_ids), Credential.workspace_id == workspace_id,
        Credential.revoked_at.is_(None))).all()
    return [credential.access_key for credential, owner in rows if revoke(session, credential, owner, actor, source)]


def scoped_workspaces(session: Session, owner_ids: set[int]) -> set[tuple[int, int]]:
    """(owner id, workspace id) of the live credentials of `owner_ids` scoped to a workspace."""
    if not owner_ids:
        return set()
    return {tuple(r) for r in session.execute(select(Credential.user_id, Credential.workspace_id).where(
        Credential.user_id.in_(owner_ids), Credential.workspace_id.is_not(None), Credential.revoked_at.is_(None)))}


def relabel(session: Session, credential: Credential, label: str | None, actor: Principal | None,
            source: str | None = None) -> None:
    label = label.strip() if label and label.strip() else None
    if label == credential.label:
        return
    before = {"label": credential.label}
    credential.label = label
    session.flush()
    audit.record(session, actor, "credential.update", "credential", credential.access_key, credential.id,
                 changes=audit.diff(before, {"label": label}), source=source)


def _query(owner_id: int | None, status: str | None, now: datetime):
    query = select(Credential, User.username, User.kind).join(User, User.id == Credential.user_id)
    if owner_id is not None:
        query = query.where(Credential.user_id == owner_id)
    if status == ACTIVE:
        query = query.where(Credential.revoked_at.is_(None),
                            (Credential.expires_at.is_(None)) | (Credential.expires_at > now))
    elif status == REVOKED:
        query = query.where(Credential.revoked_at.is_not(None))
    elif status == EXPIRED:
        query = query.where(Credential.revoked_at.is_(None), Credential.expires_at <= now)
    elif status is not None:
        raise invalid("status", f"must be one of {', '.join(STATUSES)}")
    return query


def list_credentials(session: Session, owner_id: int | None, status: str | None = None, limit: int = 50,
                     offset: int = 0) -> tuple[list[CredentialView], int]:
    """Newest first; `owner_id` None lists everyone's (the route allows that to platform admins only)."""
    now = utcnow()
    query = _query(owner_id, status, now)
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    rows = session.execute(query.order_by(Credential.created_at.desc(), Credential.id.desc())
                           .limit(limit).offset(offset)).all()
    return [CredentialView(c, name, kind) for c, name, kind in rows], total or 0


def iter_credentials(session: Session, owner_id: int | None = None) -> Iterator[CredentialView]:
    """Every credential (for the CSV export), oldest first, streamed in batches."""
    query = _query(owner_id, None, utcnow()).order_by(Credential.id)
    for c, name, kind in session.execute(query.execution_options(yield_per=500)):
        yield CredentialView(c, name, kind)


def count_active(session: Session, owner_id: int) -> int:
    now = utcnow()
    return session.scalar(select(func.count()).select_from(Credential).where(
        Credential.user_id == owner_id, Credential.revoked_at.is_(None),
        (Credential.expires_at.is_(None)) | (Credential.expires_at > now))) or 0


def cli_snippet(base_url: str, access_key: str) -> str:
    return f"allot login {base_url} --access-key {access_key} --secret-stdin"


def env_snippet(base_url: str, access_key: str, secret: str) -> str:
    return f"export ALLOT_URL={base_url}\nexport ALLOT_TOKEN={access_key}:{secret}"
