"""Provisioning clients, their bearer tokens and the users they removed.

A provisioning client acts through a service account of its own, so the audit log names the client as the actor
of every change it makes. Its tokens are stored only as HMACs (identity.secrets.token_digest), like credentials.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from allotment.db import Base, UTCDateTime, utcnow


class ScimClient(Base):
    __tablename__ = "scim_clients"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    # The service account the client acts as (audit log actor); it has no credentials and no roles.
    account_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    description: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ScimToken(Base):
    __tablename__ = "scim_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("scim_clients.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(128), unique=True)
    # The token's first characters, shown in lists so an admin can tell tokens apart; not enough to use it.
    hint: Mapped[str] = mapped_column(String(16))
    label: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ScimRemoval(Base):
    """A user a provisioning client DELETEd. SCIM never deletes: the user is deactivated and kept (jobs, usage,
    audit), and this row hides it from SCIM, which must answer 404 for a deleted resource."""

    __tablename__ = "scim_removals"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    client_id: Mapped[int | None] = mapped_column(ForeignKey("scim_clients.id", ondelete="SET NULL"))
    removed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ScimExternalId(Base):
    """The identity provider's own identifier of a user or group (SCIM externalId), kept as the provider sent it."""

    __tablename__ = "scim_external_ids"

    resource_type: Mapped[str] = mapped_column(String(16), primary_key=True)  # "User" or "Group"
    object_id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str] = mapped_column(String(255))
