"""Clusters (one execution backend each), their pools, nodes and devices.

Capacity a pool offers the scheduler:
- gpu: the devices whose `pool_id` is the pool (each device is one whole GPU = 1000 milli-GPU; fractions of one
  device are shared by fractional jobs);
- cpu and memory: the nodes whose `pool_id` is the pool (a node's cpu and memory belong to one pool; when a pool
  has no nodes its cpu and memory are not tracked). Assigning a whole node to a pool moves the node and all its
  devices; assigning single devices moves only those devices.
Every device and every node is in exactly one pool; new ones land in the cluster's default pool (DKube).
Quantities are integers in core/quantity.py's raw units: milli-GPU, millicores, bytes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from allotment.db import Base, UTCDateTime, utcnow

# Node.status / Device.health values.
NODE_READY = "ready"
NODE_DRAINING = "draining"  # keeps running jobs, receives no new ones
NODE_DOWN = "down"
NODE_STATUSES = (NODE_READY, NODE_DRAINING, NODE_DOWN)
HEALTHY = "healthy"
UNHEALTHY = "unhealthy"
UNKNOWN = "unknown"
HEALTH_VALUES = (HEALTHY, UNHEALTHY, UNKNOWN)
# Cluster.status values: what its engine last said about itself (the scheduler loop reports it).
CLUSTER_READY = "ready"
CLUSTER_DEGRADED = "degraded"  # answers, but something is wrong (a failed inventory, nodes down)
CLUSTER_UNREACHABLE = "unreachable"  # does not answer, or cannot be built from its settings
CLUSTER_STATUSES = (CLUSTER_READY, CLUSTER_DEGRADED, CLUSTER_UNREACHABLE)


class Cluster(Base):
    __tablename__ = "clusters"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    backend: Mapped[str] = mapped_column(String(32), default="local")
    status: Mapped[str] = mapped_column(String(32), default=CLUSTER_READY)
    # The engine's own error while degraded or unreachable, and when the status last changed.
    status_error: Mapped[str | None] = mapped_column(Text)
    status_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    description: Mapped[str | None] = mapped_column(String(255))
    # Where the cluster runs (Neu.ro's get-clusters shows them): labels set by the platform admin, only displayed.
    region: Mapped[str | None] = mapped_column(String(64))
    zones: Mapped[list[str] | None] = mapped_column(JSON)
    # ClearML's switch: while off the scheduler admits nothing in this cluster (queued jobs stay queued, running
    # ones keep running). The provisioned resource configuration is what it serves when on.
    resource_management_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # Bumped by every provision and every change of quotas, profiles or pools: the scheduler's cue to reload.
    config_version: Mapped[int] = mapped_column(Integer, default=1)
    # The engine's settings (inventory/engine_settings.py): plain values here; its secrets (a slurmrestd token, a
    # Ray address with credentials) only sealed, in engine_secrets (Fernet, key derived from the server's secret).
    engine_settings: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    engine_secrets: Mapped[str | None] = mapped_column(Text)
    # Bumped by every change of backend or engine settings: the scheduler's cue to build the engine again.
    engine_revision: Mapped[int] = mapped_column(Integer, default=1)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Pool(Base):
    __tablename__ = "pools"
    __table_args__ = (UniqueConstraint("cluster_id", "name", name="uq_pools_cluster_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    cluster_id: Mapped[int] = mapped_column(ForeignKey("clusters.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    # The one GPU model a (non-default) pool holds; set by its first device, None while it has none. The default
    # pool holds whatever is unassigned, so it may mix models and keeps None here.
    device_model: Mapped[str | None] = mapped_column(String(64))
    description: Mapped[str | None] = mapped_column(String(255))
    # Neu.ro's node-pool columns the engines do not report, set by the cluster admin. The machine type and whether
    # the machines are preemptible (spot) describe the hardware and are only displayed. min_nodes and max_nodes bound
    # how many nodes the pool spans (pools.node_counts: nodes it holds or holds devices of): a change that would take
    # the pool below min_nodes or above max_nodes is refused. None: no bound. The default pool takes no bounds.
    machine_type: Mapped[str | None] = mapped_column(String(64))
    preemptible: Mapped[bool] = mapped_column(Boolean, default=False)
    min_nodes: Mapped[int | None] = mapped_column(Integer)
    max_nodes: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Node(Base):
    __tablename__ = "nodes"
    __table_args__ = (UniqueConstraint("cluster_id", "name", name="uq_nodes_cluster_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    cluster_id: Mapped[int] = mapped_column(ForeignKey("clusters.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    pool_id: Mapped[int] = mapped_column(ForeignKey("pools.id"), index=True)  # where its cpu and memory count
    status: Mapped[str] = mapped_column(String(16), default=NODE_READY)
    health: Mapped[str] = mapped_column(String(16), default=HEALTHY)
    cpu_milli: Mapped[int] = mapped_column(BigInteger, default=0)
    memory_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Device(Base):
    """One GPU. Its capacity is one whole GPU (1000 milli-GPU); fractional jobs share it, never beyond 1000."""

    __tablename__ = "devices"
    __table_args__ = (UniqueConstraint("node_id", "index", name="uq_devices_node_index"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id", ondelete="CASCADE"), index=True)
    index: Mapped[int] = mapped_column(Integer)  # position on the node (CUDA index)
    model: Mapped[str] = mapped_column(String(64))
    uuid: Mapped[str | None] = mapped_column(String(64))
    memory_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    pool_id: Mapped[int] = mapped_column(ForeignKey("pools.id"), index=True)
    health: Mapped[str] = mapped_column(String(16), default=HEALTHY)
    utilisation: Mapped[float] = mapped_column(Float, default=0.0)  # percent, 0..100, as reported by the backend
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
