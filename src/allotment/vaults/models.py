"""Configuration vaults (ClearML) and the secret hide-lists.

A vault belongs to one user, one service account or one group (an administrator vault), holds text in one format
(JSON, YAML or HOCON) and applies only while enabled. Group vaults merge in `position` order (then by name), before
the principal's own vaults; later vaults override earlier ones (core/config_merge.py).

A hide-list row is the platform's list (user_id NULL; absent: the defaults of core/hide_list.py) or one user's
additions to it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, CheckConstraint, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from allotment.db import Base, UTCDateTime, utcnow


class ConfigVault(Base):
    __tablename__ = "config_vaults"
    __table_args__ = (CheckConstraint("(group_id IS NULL) <> (user_id IS NULL)", name="one_owner"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # Unique across all vaults: the name is how the API, the CLI and the effective configuration's sources name it.
    name: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    group_id: Mapped[int | None] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"), index=True)
    format: Mapped[str] = mapped_column(String(8))
    content: Mapped[str] = mapped_column(Text, default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # The merge order among vaults of the same kind (group vaults; a principal's own): lower first, later wins.
    position: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_by: Mapped[str | None] = mapped_column(String(64))


class HideList(Base):
    __tablename__ = "hide_lists"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    names: Mapped[list[str]] = mapped_column(JSON, default=list)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
