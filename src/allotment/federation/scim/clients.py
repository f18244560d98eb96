"""Provisioning clients and their bearer tokens. Functions take a session and never commit.

A client is created with a service account of the same name, which is the actor the audit log records for every
change the client makes. A token is shown once, when issued; only its HMAC is kept (as for credentials), and a
revoked token stops authenticating at once (each request looks its token up).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from allotment.audit import service as audit
from allotment.core.permissions import Principal
from allotment.db import utcnow
from allotment.errors import Conflict, FieldError, NotFound, Unauthenticated, ValidationFailed
from allotment.federation.scim.models import ScimClient, ScimToken
from allotment.identity import service_accounts
from allotment.identity.models import SERVICE_ACCOUNT, User
from allotment.identity.secrets import digests_equal, token_digest

TOKEN_PREFIX = "scim_"
MAX_LABEL = 64
MAX_DESCRIPTION = 255


@dataclass(frozen=True)
class Caller:
    """An authenticated provisioning client: the principal its changes are audited under."""

    client_id: int
    name: str
    principal: Principal


def find_client(session: Session, name: str) -> ScimClient:
    client = session.scalar(select(ScimClient).where(ScimClient.name == name.strip()))
    if client is None:
        raise NotFound(f"no provisioning client {name.strip()}")
    return client


def create_client(session: Session, actor: Principal, name: str, description: str | None,
                  source: str | None) -> ScimClient:
    """A client and its service account (the name rules and look-alike refusal are the service accounts')."""
    name = name.strip()
    if description is not None and len(description) > MAX_DESCRIPTION:
        raise ValidationFailed(f"description must be at most {MAX_DESCRIPTION} characters long",
                               [FieldError("description", f"must be at most {MAX_DESCRIPTION} characters long")])
    if session.scalar(select(ScimClient.id).where(ScimClient.name == name)) is not None:
        raise Conflict(f"provisioning client {name} already exists",
                       [FieldError("name", f"provisioning client {name} already exists")])
    account = service_accounts.create_service_account(
        session, name, actor, description=f"SCIM provisioning client {name}", source=source)
    client = ScimClient(name=name, account_id=account.id, description=description, created_at=utcnow())
    session.add(client)
    session.flush()
    audit.record(session, actor, "scim_client.create", "scim_client", name, client.id,
                 changes={"before": None, "after": audit.clean({"name": name, "description": description})},
                 source=source)
    return client


def issue_token(session: Session, secret_key: str, actor: Principal, client: ScimClient, label: str | None,
                source: str | None) -> tuple[ScimToken, str]:
    """A new bearer token for the client; returns it with the plain token, which is not kept anywhere."""
    label = label.strip() if label and label.strip() else None
    if label is not None and len(label) > MAX_LABEL:
        raise ValidationFailed(f"label must be at most {MAX_LABEL} characters long",
                               [FieldError("label", f"must be at most {MAX_LABEL} characters long")])
    plain = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ScimToken(client_id=client.id, token_hash=token_digest(secret_key, plain), hint=plain[:10],
                      label=label, created_at=utcnow())
    session.add(token)
    session.flush()
    audit.record(session, actor, "scim_token.issue", "scim_client", client.name, client.id,
                 changes={"before": None, "after": audit.clean({"token": token.id, "hint": token.hint,
                                                                "label": label})}, source=source)
    return token, plain


def find_token(session: Session, client: ScimClient, token_id: int) -> ScimToken:
    token = session.get(ScimToken, token_id)
    if token is None or token.client_id != client.id:
        raise NotFound(f"provisioning client {client.name} has no token {token_id}")
    return token


def revoke_token(session: Session, actor: Principal, client: ScimClient, token: ScimToken,
                 source: str | None) -> bool:
    """Revoke now; False (and nothing recorded) when it already was."""
    if token.revoked_at is not None:
        return False
    token.revoked_at = utcnow()
    session.flush()
    audit.record(session, actor, "scim_token.revoke", "scim_client", client.name, client.id,
                 changes=audit.diff({"revoked_at": None}, {"revoked_at": token.revoked_at}) | {"token": token.id,
                                                                                               "hint": token.hint},
                 source=source)
    return True


def token_out(token: ScimToken) -> dict:
    return {"id": token.id, "hint": token.hint, "label": token.label, "created_at": token.created_at,
            "last_used_at": token.last_used_at, "revoked_at": token.revoked_at,
            "status": "revoked" if token.revoked_at else "active"}


def client_out(session: Session, client: ScimClient) -> dict:
    tokens = session.scalars(select(ScimToken).where(ScimToken.client_id == client.id)
                             .order_by(ScimToken.id)).all()
    return {"id": client.id, "name": client.name, "description": client.description,
            "created_at": client.created_at, "tokens": [token_out(t) for t in tokens]}


def list_clients(session: Session) -> list[dict]:
    return [client_out(session, c) for c in session.scalars(select(ScimClient).order_by(ScimClient.name))]


def authenticate(session: Session, secret_key: str, plain: str | None, now: datetime | None = None) -> Caller:
    """The client a bearer token belongs to; 401 for a missing, unknown or revoked token (one message for all, so
    a refusal does not tell which)."""
    refusal = Unauthenticated("a valid SCIM bearer token is required (Authorization: Bearer scim_...)")
    if not plain or not plain.startswith(TOKEN_PREFIX):
        raise refusal
    digest = token_digest(secret_key, plain)
    token = session.scalar(select(ScimToken).where(ScimToken.token_hash == digest))
    if token is None or token.revoked_at is not None or not digests_equal(token.token_hash, digest):
        raise refusal
    client = session.get(ScimClient, token.client_id)
    account = session.get(User, client.account_id) if client else None
    if client is None or account is None or account.kind != SERVICE_ACCOUNT or not account.is_active \
            or account.deleted_at is not None:
        raise refusal
    token.last_used_at = now or utcnow()
    # Platform-admin rights for the identity services' checks: what the client may do is bounded by the SCIM routes.
    principal = Principal(id=account.id, kind=account.kind, username=account.username, is_platform_admin=True)
    return Caller(client.id, client.name, principal)
