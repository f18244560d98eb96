"""Access rules (ClearML): a rule grants read-only or read-and-modify on a resource type or one object of it to its
grantees (users, service accounts, groups); each workspace's default for objects no rule covers.

A rule names its workspace: the workspace of its object, or for a rule on a resource type the workspace whose objects
it covers. A rule without a workspace is the platform's: a type rule then covers every workspace, and rules on quotas
(which belong to a cluster, not a workspace) have none. Core.access evaluates them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from allotment.db import Base, UTCDateTime, utcnow


class AccessRule(Base):
    __tablename__ = "access_rules"
    __table_args__ = (Index("ix_access_rules_resource", "resource_type", "resource_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int | None] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    resource_type: Mapped[str] = mapped_column(String(16))
    # The object's id in its own table (projects, jobs, model_entries, dataset_entries, quotas); NULL: every object
    # of the type. No foreign key as the table depends on the type: deleting an object deletes its rules
    # (access.service.forget_object).
    resource_id: Mapped[int | None] = mapped_column()
    level: Mapped[str] = mapped_column(String(8))  # read | modify
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class AccessRuleGrantee(Base):
    """One grantee of a rule: a user or service account (user_id), or a group."""

    __tablename__ = "access_rule_grantees"
    __table_args__ = (
        UniqueConstraint("rule_id", "user_id", name="uq_access_rule_grantees_user"),
        UniqueConstraint("rule_id", "group_id", name="uq_access_rule_grantees_group"),
        CheckConstraint("(group_id IS NULL) <> (user_id IS NULL)", name="one_grantee"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("access_rules.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    group_id: Mapped[int | None] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"), index=True)


class WorkspaceAccessDefault(Base):
    """What a workspace grants on objects no rule covers, when it is not ClearML's default (read-and-modify for
    everyone): `read` or `none`. No row: modify."""

    __tablename__ = "workspace_access_defaults"

    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True)
    level: Mapped[str] = mapped_column(String(8))
