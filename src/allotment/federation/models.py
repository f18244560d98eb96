"""Identity provider connections, the accounts linked to them, the group memberships they granted, logins in
flight and the site's password sign-in rule."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from allotment.db import Base, UTCDateTime, utcnow

OIDC = "oidc"
OAUTH2 = "oauth2"
SAML = "saml"
PROTOCOLS = (OIDC, OAUTH2, SAML)


class IdentityConnection(Base):
    """One identity provider. `settings` holds what may be shown; `sealed_secrets` (the OAuth client secret, the
    SAML signing key) is stored only sealed and never shown back."""

    __tablename__ = "identity_connections"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    name_key: Mapped[str] = mapped_column(String(64), unique=True)  # lower-cased: display names are unique
    protocol: Mapped[str] = mapped_column(String(16))
    provider: Mapped[str] = mapped_column(String(32))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON)
    sealed_secrets: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class FederatedIdentity(Base):
    """A local user as one provider knows them (its user id), with what it last said about them."""

    __tablename__ = "federated_identities"
    __table_args__ = (UniqueConstraint("connection_id", "subject", name="uq_federated_subject"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("identity_connections.id", ondelete="CASCADE"), index=True)
    subject: Mapped[str] = mapped_column(String(255))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    email: Mapped[str | None] = mapped_column(String(255))
    picture: Mapped[str | None] = mapped_column(String(1024))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class FederatedGroupGrant(Base):
    """A group membership that a provider's groups claim gave, so that group sync removes only what it added."""

    __tablename__ = "federated_group_grants"

    connection_id: Mapped[int] = mapped_column(ForeignKey("identity_connections.id", ondelete="CASCADE"),
                                               primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True)


class PendingSsoLogin(Base):
    """A login between the redirect to the provider and its answer (state, nonce, PKCE verifier, SAML request id),
    then, for the CLI, the one-time code its loopback receives, and for Test Provider, the outcome."""

    __tablename__ = "pending_sso_logins"

    id: Mapped[int] = mapped_column(primary_key=True)
    state_hash: Mapped[str] = mapped_column(String(128), unique=True)
    connection_id: Mapped[int | None] = mapped_column(ForeignKey("identity_connections.id", ondelete="CASCADE"))
    purpose: Mapped[str] = mapped_column(String(16))  # console | cli | test
    flow: Mapped[dict[str, Any]] = mapped_column(JSON)  # nonce, request id, next page, CLI port and challenge
    sealed: Mapped[str | None] = mapped_column(Text)  # PKCE verifier, a tested draft's secrets, a CLI's token
    code_hash: Mapped[str | None] = mapped_column(String(128), unique=True)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    admin_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class PasswordLoginPolicy(Base):
    """The site's rule for password sign-in (one row): on, or off except for the break-glass admin accounts."""

    __tablename__ = "password_login_policy"

    id: Mapped[int] = mapped_column(primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    break_glass_user_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
