"""Quota trees, bindings, profiles, priority classes and the draft configuration.

Quantities are integers in core/quantity.py's raw units: gpu in milli-GPU, cpu in millicores, memory in bytes.
NULL in a limit column means unlimited.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from allotment.db import Base, UTCDateTime, utcnow

RECLAIM_VALUES = ("never", "lower_priority", "any")
WITHIN_QUOTA_VALUES = ("never", "lower_priority")
RESOURCE_NAMES = ("gpu", "cpu", "memory")


class Quota(Base):
    """A node of a cluster's quota tree (PAI quota, Kueue ClusterQueue/cohort, ClearML resource policy)."""

    __tablename__ = "quotas"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    cluster_id: Mapped[int] = mapped_column(ForeignKey("clusters.id", ondelete="CASCADE"), index=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("quotas.id"), index=True)
    description: Mapped[str | None] = mapped_column(String(255))
    weight: Mapped[float] = mapped_column(Float, default=1.0)
    # PAI child-level preemption: jobs submitted to this quota may preempt jobs of its descendants.
    child_preemption: Mapped[bool] = mapped_column(Boolean, default=False)
    reclaim: Mapped[str] = mapped_column(String(16), default="never")  # RECLAIM_VALUES
    within_quota_preemption: Mapped[str] = mapped_column(String(16), default="never")  # WITHIN_QUOTA_VALUES
    min_runtime_s: Mapped[int] = mapped_column(Integer, default=0)
    # Names of the priority classes jobs of this quota may use; NULL = all.
    allowed_priority_classes: Mapped[list[str] | None] = mapped_column(JSON)
    # GPU- and CPU-hour budgets per period live in the accounting domain (accounting.models.QuotaBudget).
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class QuotaResource(Base):
    """Guarantee / limit / lending limit of one quota on one (pool, resource). pool_id NULL = all pools of the
    cluster together (core.resources.ANY_POOL), e.g. a ClearML reservation of 8 GPUs wherever they are."""

    __tablename__ = "quota_resources"
    __table_args__ = (
        UniqueConstraint("quota_id", "pool_id", "resource", name="uq_quota_resources_key"),
        CheckConstraint("guarantee >= 0", name="guarantee_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    quota_id: Mapped[int] = mapped_column(ForeignKey("quotas.id", ondelete="CASCADE"), index=True)
    pool_id: Mapped[int | None] = mapped_column(ForeignKey("pools.id", ondelete="CASCADE"), index=True)
    resource: Mapped[str] = mapped_column(String(16))  # RESOURCE_NAMES
    guarantee: Mapped[int] = mapped_column(BigInteger, default=0)
    limit: Mapped[int | None] = mapped_column(BigInteger)  # NULL = unlimited
    lending_limit: Mapped[int | None] = mapped_column(BigInteger)  # NULL = all unused guarantee may be lent


class QuotaPool(Base):
    """DKube: the pools a quota (and so the group bound to it) may use. A quota without rows may use every pool of
    its cluster, pools created later included; with rows, only those (its descendants too: see scheduler/load.py)."""

    __tablename__ = "quota_pools"
    __table_args__ = (UniqueConstraint("quota_id", "pool_id", name="uq_quota_pools_link"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    quota_id: Mapped[int] = mapped_column(ForeignKey("quotas.id", ondelete="CASCADE"), index=True)
    # CASCADE only for a cluster's deletion: deleting a quota's last allowed pool is refused (inventory/pools.py),
    # since a quota left without rows would be open to every pool.
    pool_id: Mapped[int] = mapped_column(ForeignKey("pools.id", ondelete="CASCADE"), index=True)


class QuotaBinding(Base):
    """Who may submit to a quota: a group (DKube group, ClearML user group), a user, or a workspace (PAI: its
    members)."""

    __tablename__ = "quota_bindings"
    __table_args__ = (
        UniqueConstraint("quota_id", "group_id", name="uq_quota_bindings_group"),
        UniqueConstraint("quota_id", "user_id", name="uq_quota_bindings_user"),
        UniqueConstraint("quota_id", "workspace_id", name="uq_quota_bindings_workspace"),
        CheckConstraint("(CASE WHEN group_id IS NULL THEN 0 ELSE 1 END) + (CASE WHEN user_id IS NULL THEN 0 ELSE 1 END)"
                        " + (CASE WHEN workspace_id IS NULL THEN 0 ELSE 1 END) = 1", name="one_principal"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    quota_id: Mapped[int] = mapped_column(ForeignKey("quotas.id", ondelete="CASCADE"), index=True)
    group_id: Mapped[int | None] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    workspace_id: Mapped[int | None] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Profile(Base):
    """A job shape (ClearML resource profile): the allotment every job of it gets, and pools to try in order."""

    __tablename__ = "profiles"
    __table_args__ = (UniqueConstraint("cluster_id", "name", name="uq_profiles_cluster_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    cluster_id: Mapped[int] = mapped_column(ForeignKey("clusters.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    description: Mapped[str | None] = mapped_column(String(255))
    gpu_milli: Mapped[int] = mapped_column(BigInteger, default=0)
    cpu_milli: Mapped[int] = mapped_column(BigInteger, default=0)
    memory_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    # Marked unordered: its pools are a set of acceptable ones (several GPU models) and a job takes the best fit
    # across them; ordered (the default) keeps ClearML's precedence, a later pool only when earlier ones cannot.
    unordered: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ProfilePool(Base):
    """A named connection profile -> pool. `position`: the profile's pool precedence (0 tried first).
    `pool_position`: the pool's execution priority among the profiles linked to it (0 served first)."""

    __tablename__ = "profile_pools"
    __table_args__ = (UniqueConstraint("profile_id", "pool_id", name="uq_profile_pools_link"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    profile_id: Mapped[int] = mapped_column(ForeignKey("profiles.id", ondelete="CASCADE"), index=True)
    pool_id: Mapped[int] = mapped_column(ForeignKey("pools.id", ondelete="CASCADE"), index=True)
    name: Mapped[str | None] = mapped_column(String(64))
    position: Mapped[int] = mapped_column(Integer, default=0)
    pool_position: Mapped[int] = mapped_column(Integer, default=0)


class ProfilePolicy(Base):
    """The queuing priority of the quotas (ClearML resource policies) using a profile: position 0 first."""

    __tablename__ = "profile_policies"
    __table_args__ = (UniqueConstraint("profile_id", "quota_id", name="uq_profile_policies_link"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    profile_id: Mapped[int] = mapped_column(ForeignKey("profiles.id", ondelete="CASCADE"), index=True)
    quota_id: Mapped[int] = mapped_column(ForeignKey("quotas.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)


class PriorityClass(Base):
    """Named job priority: inference 300 > training 200 > interactive 100 are seeded at bootstrap."""

    __tablename__ = "priority_classes"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(Integer)
    description: Mapped[str | None] = mapped_column(String(255))
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)  # used when a job names none


class ResourceConfig(Base):
    """ClearML draft vs provisioned configuration of one cluster's quotas and profiles (a JSON document, see
    quotas/config.py). kind 'draft' holds unprovisioned edits; kind 'provisioned' the last document applied."""

    __tablename__ = "resource_configs"
    __table_args__ = (UniqueConstraint("cluster_id", "kind", name="uq_resource_configs_kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    cluster_id: Mapped[int] = mapped_column(ForeignKey("clusters.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # draft | provisioned
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    version: Mapped[int] = mapped_column(Integer, default=1)
    # The cluster's config_version when the draft was saved: a draft is a copy of the live configuration, so if the
    # live configuration changed since, provisioning it would silently undo those changes (it is refused instead).
    based_on_version: Mapped[int | None] = mapped_column(Integer)
    updated_by: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
