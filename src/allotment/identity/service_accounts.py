"""Service accounts (ClearML): API-only principals with their own credentials. Functions never commit.

A service account is a `users` row of kind `service_account`: no password and no e-mail, its name is its username
(unique together with the users'), so it can hold cluster roles and own jobs like anyone. It cannot log in with a
password (identity.service.login refuses it). With `allow_impersonation` it may act on behalf of a user through the
X-Allot-On-Behalf-Of header (see identity.authn).

Deleting one revokes its credentials and deactivates it, but keeps the row, so its jobs and audit history keep their
owner. The name is freed for reuse: the deleted row's lookup key becomes `deleted:ID:NAME`, which no live name can
equal because names cannot contain ':'.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from allotment.api.state import mark_identity_changed
from allotment.audit import service as audit
from allotment.core.names import as_id
from allotment.core.permissions import Principal
from allotment.db import utcnow
from allotment.errors import Conflict, FieldError, NotFound
from allotment.identity import credentials
from allotment.identity.models import SERVICE_ACCOUNT, ClusterRoleGrant, Credential, User
from allotment.identity.service import check_username, ensure_unique, raise_field_problems
from allotment.inventory.models import Cluster


@dataclass(frozen=True)
class ServiceAccountView:
    account: User
    credential_count: int
    last_active_at: datetime | None
    cluster_roles: dict[str, str]

    def as_dict(self) -> dict:
        a = self.account
        return {"id": a.id, "name": a.username, "description": a.description,
                "allow_impersonation": a.allow_impersonation, "is_active": a.is_active, "created_at": a.created_at,
                "deleted_at": a.deleted_at, "credential_count": self.credential_count,
                "last_active_at": self.last_active_at, "cluster_roles": self.cluster_roles}


def _snapshot(account: User) -> dict:
    return {"name": account.username, "description": account.description,
            "allow_impersonation": account.allow_impersonation, "is_active": account.is_active,
            "deleted_at": account.deleted_at}


def create_service_account(session: Session, name: str, actor: Principal | None, *, description: str | None = None,
                           allow_impersonation: bool = False, source: str | None = None) -> User:
    name = name.strip()
    raise_field_problems({"name": check_username(name)})
    try:
        ensure_unique(session, None, name)
    except Conflict as exc:
        message = exc.errors[0].message.replace("username", "the name", 1)
        raise Conflict(message, [FieldError("name", message)]) from None
    account = User(kind=SERVICE_ACCOUNT, email=None, email_key=None, username=name, username_key=name.lower(),
                   password_hash=None, description=description, allow_impersonation=allow_impersonation,
                   is_active=True)
    session.add(account)
    session.flush()
    audit.record(session, actor, "service_account.create", "service_account", name, account.id,
                 changes={"before": None, "after": audit.clean(_snapshot(account))}, source=source)
    mark_identity_changed(session)
    return account


def find_service_account(session: Session, name: str) -> User:
    """A live (not deleted) service account by name or id."""
    ref = name.strip()
    query = select(User).where(User.kind == SERVICE_ACCOUNT)
    account = session.scalar(query.where(User.username_key == ref.lower()))
    if account is None and as_id(ref):
        account = session.scalar(query.where(User.id == as_id(ref), User.deleted_at.is_(None)))
    if account is None:
        raise NotFound(f"no service account '{ref}'")
    return account


def describe(session: Session, accounts: list[User]) -> list[ServiceAccountView]:
    """Attach live credential counts, last use and cluster roles, in three queries whatever the number of accounts."""
    ids = [a.id for a in accounts]
    if not ids:
        return []
    now = utcnow()
    counts = dict(session.execute(
        select(Credential.user_id, func.count()).where(
            Credential.user_id.in_(ids), Credential.revoked_at.is_(None),
            (Credential.expires_at.is_(None)) | (Credential.expires_at > now))
        .group_by(Credential.user_id)).all())
    last_used = dict(session.execute(
        select(Credential.user_id, func.max(Credential.last_used_at)).where(Credential.user_id.in_(ids))
        .group_by(Credential.user_id)).all())
    roles: dict[int, dict[str, str]] = {}
    for user_id, cluster_name, role in session.execute(
            select(ClusterRoleGrant.user_id, Cluster.name, ClusterRoleGrant.role)
            .join(Cluster, Cluster.id == ClusterRoleGrant.cluster_id).where(ClusterRoleGrant.user_id.in_(ids))):
        roles.setdefault(user_id, {})[cluster_name] = role
    return [ServiceAccountView(a, counts.get(a.id, 0), last_used.get(a.id), roles.get(a.id, {})) for a in accounts]


def list_service_accounts(session: Session, include_deleted: bool = False) -> list[ServiceAccountView]:
    query = select(User).where(User.kind == SERVICE_ACCOUNT)
    if not include_deleted:
        query = query.where(User.deleted_at.is_(None))
    return describe(session, list(session.scalars(query.order_by(User.username_key, User.id))))


def update_service_account(session: Session, account: User, actor: Principal | None, *,
                           description: str | None = None, allow_impersonation: bool | None = None,
                           fields: set[str] = frozenset(), source: str | None = None) -> None:
    """Change the fields named in `fields` (so that a description can be cleared by sending null)."""
    before = _snapshot(account)
    if "description" in fields:
        account.description = description.strip() if description and description.strip() else None
    if "allow_impersonation" in fields and allow_impersonation is not None:
        account.allow_impersonation = allow_impersonation
    after = _snapshot(account)
    if before == after:
        return
    session.flush()
    audit.record(session, actor, "service_account.update", "service_account", account.username, account.id,
                 changes=audit.diff(before, after), source=source)
    mark_identity_changed(session)


def delete_service_account(session: Session, account: User, actor: Principal | None,
                           source: str | None = None) -> list[str]:
    """Revoke its credentials, deactivate it and free its name; the row stays. Returns the revoked access keys."""
    revoked = credentials.revoke_all_for(session, account, actor, source)
    before = _snapshot(account)
    account.is_active = False
    account.deleted_at = utcnow()
    account.allow_impersonation = False
    account.username_key = f"deleted:{account.id}:{account.username_key}"[:64]
    session.flush()
    changes = audit.diff(before, _snapshot(account)) | {"revoked_credentials": revoked}
    audit.record(session, actor, "service_account.delete", "service_account", account.username, account.id,
                 changes=changes, source=source)
    mark_identity_changed(session)
    return revoked
