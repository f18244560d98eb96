"""Accounting: usage records (one per interval a job held resources), user GPU/CPU-hour quotas (Neu.ro) and budgets
on the quota tree.

A usage record is written by the scheduler in the same transaction as the admission it meters, and closed in the
same transaction as the job's end or preemption (scheduler/metering.py), so a crash never loses or doubles one; the
pair (job_id, start_s) names the interval and is unique. Times are epoch seconds (floats) so that clipping an
interval to a report's window is the same arithmetic on every database. Records keep ids without foreign keys: the
history outlives the users, quotas, pools and clusters it names (reports show a removed one by its id).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Float, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from allotment.db import Base, UTCDateTime, utcnow

# Percent of a usage_records page filled by new records (PostgreSQL): the rest holds their closed versions. Jobs
# admitted together end together, so one cycle often closes most records of a page: at 80 % a third of the closes in
# the large-scale benchmark found room (HOT), at 50 % every record's closed version fits. A page's dead versions are
# pruned once no transaction sees them, so a table of closed records stays at about this density.
FILLFACTOR = 50


class UsageRecord(Base):
    __tablename__ = "usage_records"
    __table_args__ = (
        # No index names end_s, which closing an interval sets: the close then writes no index entry and PostgreSQL
        # keeps the new version on the record's page (HOT, with the fillfactor below); with an index on end_s every
        # close wrote an entry in each of the table's indexes. The scheduler finds a job's open record through this
        # constraint's index (job_id first; a job has one record per admission).
        UniqueConstraint("job_id", "start_s", name="uq_usage_records_interval"),
        Index("ix_usage_records_start", "start_s"),
        Index("ix_usage_records_owner_cluster", "owner_id", "cluster_id"),
        Index("ix_usage_records_quota", "quota_id"),
        {"postgresql_with": {"fillfactor": FILLFACTOR}},
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    job_id: Mapped[int] = mapped_column(BigInteger)
    cluster_id: Mapped[int] = mapped_column(Integer)
    owner_id: Mapped[int] = mapped_column(Integer)
    quota_id: Mapped[int | None] = mapped_column(Integer)
    pool_id: Mapped[int | None] = mapped_column(Integer)
    device_model: Mapped[str | None] = mapped_column(String(255))  # models of the GPUs it held, comma-separated
    gpu_milli: Mapped[int] = mapped_column(BigInteger, default=0)
    cpu_milli: Mapped[int] = mapped_column(BigInteger, default=0)
    memory_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    start_s: Mapped[float] = mapped_column(Float)  # the admission (resources reserved from then on)
    end_s: Mapped[float | None] = mapped_column(Float)  # NULL while the job still holds them
    outcome: Mapped[str | None] = mapped_column(String(16))  # succeeded | failed | cancelled | preempted


class UserQuota(Base):
    """A user's GPU- and CPU-hour quota on one cluster (Neu.ro), in seconds; NULL = unlimited. The row with
    user_id NULL is the cluster's default for users without their own (built in: 100 GPU hours, unlimited CPU)."""

    __tablename__ = "user_quotas"
    __table_args__ = (UniqueConstraint("cluster_id", "user_id", name="uq_user_quotas_cluster_user"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    cluster_id: Mapped[int] = mapped_column(ForeignKey("clusters.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    gpu_s: Mapped[int | None] = mapped_column(BigInteger)
    cpu_s: Mapped[int | None] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class QuotaBudget(Base):
    """A GPU- or CPU-hour budget on a node of the quota tree (Slurm GrpTRESMins), per period (core/budgets.py).
    Usage of the quota's whole subtree counts against it."""

    __tablename__ = "quota_budgets"
    __table_args__ = (UniqueConstraint("quota_id", "resource", name="uq_quota_budgets_quota_resource"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    quota_id: Mapped[int] = mapped_column(ForeignKey("quotas.id", ondelete="CASCADE"), index=True)
    resource: Mapped[str] = mapped_column(String(8))  # gpu | cpu
    period: Mapped[str] = mapped_column(String(16))  # monthly | weekly | once
    amount_s: Mapped[int] = mapped_column(BigInteger)
    granted_at: Mapped[float] = mapped_column(Float)  # epoch seconds; where a one-off grant starts counting
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class PoolCapacityChange(Base):
    """A pool's device count from `at_s` on (epoch seconds), written by the inventory service whenever a change to
    devices, nodes or pools changes it (accounting/capacity.py), so that utilisation over a past period is measured
    against what the pool held then. No foreign key: the history outlives the pool; a deleted pool's last row is 0."""

    __tablename__ = "pool_capacity_changes"
    __table_args__ = (Index("ix_pool_capacity_changes_pool_at", "pool_id", "at_s"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    cluster_id: Mapped[int] = mapped_column(Integer, index=True)
    pool_id: Mapped[int] = mapped_column(Integer)
    at_s: Mapped[float] = mapped_column(Float)
    devices: Mapped[int] = mapped_column(Integer)
