"""Workspaces (PAI, ClearML): a named team space of one cluster, its members and their roles."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from allotment.db import Base, UTCDateTime, utcnow


class Workspace(Base):
    """PAI workspace: a named team space of one cluster whose members (users and groups) may submit to the quotas
    bound to it."""

    __tablename__ = "workspaces"
    __table_args__ = (UniqueConstraint("cluster_id", "name", name="uq_workspaces_cluster_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    cluster_id: Mapped[int] = mapped_column(ForeignKey("clusters.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    description: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class WorkspaceMember(Base):
    """A member of a workspace: a user or a group (every member of the group is then a member)."""

    __tablename__ = "workspace_members"
    __table_args__ = (
        UniqueConstraint("workspace_id", "group_id", name="uq_workspace_members_group"),
        UniqueConstraint("workspace_id", "user_id", name="uq_workspace_members_user"),
        CheckConstraint("(group_id IS NULL) <> (user_id IS NULL)", name="one_member"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    group_id: Mapped[int | None] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
