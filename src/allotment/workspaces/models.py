"""Workspaces (PAI, ClearML): a named team space of one cluster, its members with their roles, and invitations.

Member roles, from most to least: owner (everything, including ownership), admin (invites, removes and sets roles
below owner), member (submits to the quotas bound to the workspace), viewer (reads only)."""

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
    # Set on a user's personal workspace, created with the user: they own it and cannot leave it.
    personal_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class WorkspaceMember(Base):
    """A member of a workspace: a user or service account, or a group (every member of the group is then a member),
    with a role."""

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
    role: Mapped[str] = mapped_column(String(16), default="member", server_default="member")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class WorkspaceInvitation(Base):
    """An invitation by e-mail address. Pending (with its date) until accepted, through its token or by the user
    whose address it names, cancelled, or expired (past `expires_at`: it can no longer be accepted and is shown as
    expired). An address without an account becomes a member when that account is created, while the invitation
    has not expired. Only a hash of the token is stored."""

    __tablename__ = "workspace_invitations"

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(254))
    email_key: Mapped[str] = mapped_column(String(254), index=True)
    role: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(128), unique=True)
    invited_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    accepted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class WorkspaceSubmitRule(Base):
    """PAI's resource user roles: who in a workspace may submit to one quota bound to it. With no rule for a
    (workspace, quota), every member from `member` up may; with rules, only the roles and users they name."""

    __tablename__ = "workspace_submit_rules"
    __table_args__ = (CheckConstraint("(role IS NULL) <> (user_id IS NULL)", name="role_or_user"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    quota_id: Mapped[int] = mapped_column(ForeignKey("quotas.id", ondelete="CASCADE"), index=True)
    role: Mapped[str | None] = mapped_column(String(16))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
