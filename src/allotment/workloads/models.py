"""Jobs: what a principal submits, and where the scheduler put it.

Lifecycle: queued -> admitted (resources reserved, placement chosen) -> running -> succeeded | failed; a queued,
admitted, running or preempted job may end cancelled; an admitted or running job may be preempted: it goes `preempted`
while the backend stops it, then the scheduler requeues it (`queued` again, same `seq`, `preemptions` + 1, the reason
names the job that preempted it). `preempted` is an active state, not a final one: the job comes back.
A queued job always carries `reason_code` (machine-readable, core.model.WaitCode) and `reason` (a sentence with the
numbers). Quantities are integers in core/quantity.py's raw units (milli-GPU, millicores, bytes).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text, and_, text
from sqlalchemy.orm import Mapped, mapped_column

from allotment.db import Base, UTCDateTime, utcnow

QUEUED = "queued"
ADMITTED = "admitted"
RUNNING = "running"
SUCCEEDED = "succeeded"
FAILED = "failed"
PREEMPTED = "preempted"
CANCELLED = "cancelled"
STATES = (QUEUED, ADMITTED, RUNNING, SUCCEEDED, FAILED, PREEMPTED, CANCELLED)
# A preempted job is not over: it waits for the scheduler's next cycle to requeue it. So it counts against
# concurrency caps, keeps its quota, profile and pool from being deleted, and can still be cancelled.
ACTIVE_STATES = (QUEUED, ADMITTED, RUNNING, PREEMPTED)
HOLDING_STATES = (ADMITTED, RUNNING)  # hold resources (the scheduler's "running" set)
FINAL_STATES = (SUCCEEDED, FAILED, CANCELLED)

# Percent of a jobs page filled by new rows (PostgreSQL): the rest holds the versions a job's admission, start and wait
# reasons write before it ends.
FILLFACTOR = 50

PENDING_REASON = "pending"
PENDING_MESSAGE = "waiting for the scheduler"


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        # No index names a column the scheduler changes before a job ends (state, reasons, admission, start), so those
        # updates write no index entry: PostgreSQL keeps them on the row's page (HOT, with the fillfactor below) and
        # SQLite rewrites no index. A job's end sets finished_at, and active jobs are found as `finished_at IS NULL`
        # (active() below): every write that ends a job sets it (persist.FINISH, workloads' cancel), none before.
        # Active jobs: a cluster's in submission order (the scheduler's start-up), everyone's (metrics, recovery).
        # Only active jobs have an entry: a job's end (an update that writes a new entry in every other index, since
        # it changes finished_at) writes none here, and the index holds the queue, not the history.
        Index("ix_jobs_active_cluster_seq", "cluster_id", "seq", sqlite_where=text("finished_at IS NULL"),
              postgresql_where=text("finished_at IS NULL")),
        # Concurrency caps and held resources at submission; a user's jobs (listing, the users foreign key).
        Index("ix_jobs_owner_active", "owner_id", "finished_at"),
        # Quota deletion and usage views; a quota's jobs (listing, the quotas foreign key).
        Index("ix_jobs_quota_active", "quota_id", "finished_at"),
        # The scheduler picks up recent cancellations without scanning the queue (scheduler/scan.py); only cancelled
        # jobs have an entry.
        Index("ix_jobs_cancel_requested_at", "cancel_requested_at", sqlite_where=text("cancel_requested_at IS NOT NULL"),
              postgresql_where=text("cancel_requested_at IS NOT NULL")),
        # A project's jobs; jobs without a project have no entry.
        Index("ix_jobs_project_id", "project_id", sqlite_where=text("project_id IS NOT NULL"),
              postgresql_where=text("project_id IS NOT NULL")),
        # Room on each page for a job's next versions: an update that changes no indexed column stays on the page
        # (HOT) only where it fits there; pages are pruned of the versions no transaction sees any more.
        {"postgresql_with": {"fillfactor": FILLFACTOR}},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str | None] = mapped_column(String(128))
    # owner_id, cluster_id, quota_id and placed_pool_id are references without a foreign key: their services keep
    # them (workloads/references.py), checked once per batch instead of once per row.
    owner_id: Mapped[int] = mapped_column(Integer)  # the user the job belongs to
    # The service account that submitted it on the owner's behalf, if any.
    submitted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    cluster_id: Mapped[int] = mapped_column(Integer)  # its jobs are deleted with the cluster (references.py)
    # NULL only for finished jobs of a quota deleted since (a quota with active jobs cannot be deleted).
    quota_id: Mapped[int | None] = mapped_column(Integer)
    # What each job asks for (copied from the profile when one is given, so later profile edits do not change it).
    profile_id: Mapped[int | None] = mapped_column(ForeignKey("profiles.id", ondelete="SET NULL"))
    # The project (projects domain) the job belongs to, if any; a project is deleted with jobs only when forced.
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id", ondelete="SET NULL"))
    # The whole job's amounts (all its nodes together): what caps, quotas and metering count.
    gpu_milli: Mapped[int] = mapped_column(BigInteger, default=0)
    cpu_milli: Mapped[int] = mapped_column(BigInteger, default=0)
    memory_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    # How many nodes it runs on: 1 puts all of it on one node; N > 1 is a gang of N nodes placed all at once, each
    # with an equal share (gpu_milli / nodes GPUs, and so on).
    nodes: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    # GPU models the job accepts, as an unordered set: the pools of those models, best fit across them. NULL: the
    # pinned pool, the profile's pools in order, or any pool of the cluster.
    gpu_models: Mapped[list[str] | None] = mapped_column(JSON)
    # Pinned pool (the user's preference); NULL = the profile's pools in order, or any pool of the cluster.
    pool_id: Mapped[int | None] = mapped_column(ForeignKey("pools.id", ondelete="SET NULL"))
    priority_class: Mapped[str] = mapped_column(String(32))
    priority: Mapped[int] = mapped_column(Integer, default=0)  # the class's value at submission
    command: Mapped[list[str]] = mapped_column(JSON)  # argv
    time_limit_s: Mapped[int | None] = mapped_column(Integer)
    # Free-form labels for backends and benchmarks (e.g. {"runtime_ms": 200, "class": "small"}).
    labels: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Environment variables the job declared (name -> value) and the plain ones of the storage targets it named, given
    # to its command and nothing else; shown with the values of the hide-list's names masked (core/hide_list.py).
    env: Mapped[dict[str, str] | None] = mapped_column(JSON)
    # The storage targets' secret variables (core/hide_list.ALWAYS) for this job, sealed like engine secrets
    # (inventory/sealing.py): storage secrets are encrypted at rest, here as on the target. Opened only to launch.
    sealed_env: Mapped[str | None] = mapped_column(Text)
    # The owner's effective configuration (configuration vaults merged) at submission, as JSON: the engine writes it
    # to a file whose path is in ALLOT_CONFIG_FILE (vaults/job_supplies.py).
    config_file: Mapped[str | None] = mapped_column(Text)
    # Storage folders the job mounts, resolved at submission (storage/mounts.py): [{"folder_id", "folder", "host",
    # "kind", "source", "target", "read_only", "cluster_paths"}]; a folder an active job mounts cannot be trashed.
    mounts: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)

    state: Mapped[str] = mapped_column(String(16), default=QUEUED)
    reason_code: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(Text)
    seq: Mapped[int | None] = mapped_column(BigInteger)  # submission order (unique, increasing)
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    admitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Set when a job is cancelled. An admitted or running job: the scheduler stops it in the backend, then marks it
    # `cancelled` (its resources stay held until then, so a device is never oversubscribed). Queued jobs are
    # cancelled at once (and the scheduler forgets them).
    cancel_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    # Placement, set at admission: the pool and the devices with the share of each (milli-GPU), e.g.
    # [{"device_id": 7, "node": "gpu-01", "index": 0, "milli": 500}].
    placed_pool_id: Mapped[int | None] = mapped_column(Integer)  # cleared when the pool is deleted (references.py)
    devices: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    # The node(s) it was placed on, also for a job without GPUs (its cpu and memory are held there).
    placed_nodes: Mapped[list[str] | None] = mapped_column(JSON)
    backend_handle: Mapped[str | None] = mapped_column(String(255))  # the execution engine's id (pid, Slurm job id)
    exit_code: Mapped[int | None] = mapped_column(Integer)
    # How often the job was preempted; each time it went back to `queued` keeping its `seq` (Kueue-style requeue).
    preemptions: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


def active(*states: str) -> Any:
    """SQL condition: the job is in one of `states` (default: any active state). It names `finished_at IS NULL`,
    which every active job has, so that the jobs indexes on the cluster, owner and quota (each has finished_at) find
    active jobs without reading the finished ones."""
    return and_(Job.finished_at.is_(None), Job.state.in_(states or ACTIVE_STATES))
