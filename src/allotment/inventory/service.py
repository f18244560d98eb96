"""Clusters: lookup, creation, deletion, the summary GET /clusters returns, and the pool capacity the scheduler reads."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from allotment.api.state import mark_identity_changed
from allotment.core.names import as_id, confusable_with
from allotment.core.quantity import format_raw
from allotment.errors import Conflict, FieldError, NotFound, invalid
from allotment.inventory.models import HEALTHY, NODE_READY, Cluster, Device, Node, Pool

DEFAULT_POOL = "default"
BACKENDS = ("local", "simulated", "slurm", "ray")
MAX_NAME = 64


def find_cluster(session: Session, ref: str | int) -> Cluster:
    text = str(ref).strip()
    cluster = session.get(Cluster, as_id(text)) if as_id(text) else None
    cluster = cluster or session.scalar(select(Cluster).where(Cluster.name == text))
    if cluster is None:
        raise NotFound(f"no cluster '{text}'")
    return cluster


def find_cluster_id(session: Session, ref: str | int) -> int:
    return find_cluster(session, ref).id


def check_name(field: str, name: str) -> str:
    """Names of clusters, pools, nodes, quotas, profiles: non-empty, no spaces at the ends, at most 64 characters."""
    cleaned = name.strip()
    if not cleaned:
        raise invalid(field, "must not be empty")
    if len(cleaned) > MAX_NAME:
        raise invalid(field, f"must be at most {MAX_NAME} characters long")
    if "/" in cleaned or ":" in cleaned:
        raise invalid(field, "must not contain '/' or ':'")
    return cleaned


def create_cluster(session: Session, name: str, backend: str = "local", created_by_id: int | None = None,
                   description: str | None = None) -> Cluster:
    name = check_name("name", name)
    if backend not in BACKENDS:
        raise invalid("backend", f"must be one of {', '.join(BACKENDS)}")
    if session.scalar(select(Cluster.id).where(Cluster.name == name)) is not None:
        raise Conflict(f"a cluster named {name} already exists")
    look_alike = confusable_with(name, session.scalars(select(Cluster.name)))
    if look_alike is not None:
        message = f"cluster {name} could be taken for the existing cluster {look_alike}: choose a name that looks different"
        raise Conflict(message, [FieldError("name", message)])
    cluster = Cluster(name=name, backend=backend, created_by_id=created_by_id, description=description)
    session.add(cluster)
    session.flush()
    session.add(Pool(cluster_id=cluster.id, name=DEFAULT_POOL, is_default=True))
    session.flush()
    return cluster


def create_cluster_as_admin(session: Session, name: str, backend: str, creator_id: int,
                            description: str | None = None) -> Cluster:
    """Create a cluster; its creator becomes its cluster admin."""
    from allotment.identity.models import ClusterRoleGrant  # identity imports inventory models

    cluster = create_cluster(session, name, backend, creator_id, description)
    session.add(ClusterRoleGrant(cluster_id=cluster.id, user_id=creator_id, role="admin"))
    session.flush()
    mark_identity_changed(session)
    return cluster


def delete_cluster(session: Session, cluster: Cluster) -> None:
    from allotment.workloads.models import ACTIVE_STATES, Job

    active = session.scalar(select(func.count()).select_from(Job)
                            .where(Job.cluster_id == cluster.id, Job.state.in_(ACTIVE_STATES)))
    if active:
        raise Conflict(f"cluster {cluster.name} has {active} queued or running jobs: cancel them first")
    session.delete(cluster)
    session.flush()
    mark_identity_changed(session)  # its role grants go with it


def default_pool(session: Session, cluster_id: int) -> Pool:
    pool = session.scalar(select(Pool).where(Pool.cluster_id == cluster_id, Pool.is_default.is_(True)))
    if pool is None:  # every cluster is created with one; recreate it rather than fail
        pool = Pool(cluster_id=cluster_id, name=DEFAULT_POOL, is_default=True)
        session.add(pool)
        session.flush()
    return pool


def bump_config_version(session: Session, cluster_id: int) -> None:
    """Tell the scheduler that the cluster's pools, quotas or profiles changed."""
    cluster = session.get(Cluster, cluster_id)
    if cluster is not None:
        cluster.config_version = (cluster.config_version or 0) + 1


@dataclass
class PoolCapacity:
    """What a pool offers: usable devices and, when it has nodes, cpu and memory (raw units; None = not tracked)."""

    pool_id: int
    name: str
    device_model: str | None
    devices: int
    usable_devices: int  # healthy devices on ready nodes
    device_memory_bytes: int
    cpu_milli: int | None
    memory_bytes: int | None


def pool_capacities(session: Session, cluster_id: int) -> list[PoolCapacity]:
    pools = session.scalars(select(Pool).where(Pool.cluster_id == cluster_id).order_by(Pool.id)).all()
    dev_rows = session.execute(
        select(Device.pool_id, func.count(), func.coalesce(func.sum(Device.memory_bytes), 0))
        .join(Node, Node.id == Device.node_id).where(Node.cluster_id == cluster_id).group_by(Device.pool_id)
    ).all()
    usable_rows = session.execute(
        select(Device.pool_id, func.count()).join(Node, Node.id == Device.node_id)
        .where(Node.cluster_id == cluster_id, Device.health == HEALTHY, Node.status == NODE_READY)
        .group_by(Device.pool_id)
    ).all()
    node_rows = session.execute(
        select(Node.pool_id, func.count(), func.sum(Node.cpu_milli), func.sum(Node.memory_bytes))
        .where(Node.cluster_id == cluster_id, Node.status == NODE_READY).group_by(Node.pool_id)
    ).all()
    devices = {r[0]: (r[1], int(r[2])) for r in dev_rows}
    usable = {r[0]: r[1] for r in usable_rows}
    nodes = {r[0]: (int(r[2] or 0), int(r[3] or 0)) for r in node_rows if r[1]}
    out = []
    for pool in pools:
        count, memory = devices.get(pool.id, (0, 0))
        cpu, mem = nodes.get(pool.id, (None, None))
        out.append(PoolCapacity(pool.id, pool.name, pool.device_model, count, usable.get(pool.id, 0), memory,
                                cpu, mem))
    return out


def pool_summary(cap: PoolCapacity) -> dict:
    return {
        "name": cap.name,
        "device_model": cap.device_model,
        "devices": cap.devices,
        "gpus": cap.usable_devices,
        "memory": format_raw(cap.device_memory_bytes, "memory"),
        "cpu": None if cap.cpu_milli is None else format_raw(cap.cpu_milli, "cpu"),
        "host_memory": None if cap.memory_bytes is None else format_raw(cap.memory_bytes, "memory"),
    }


def cluster_summary(session: Session, cluster: Cluster) -> dict:
    return {
        "name": cluster.name,
        "backend": cluster.backend,
        "status": cluster.status,
        "description": cluster.description,
        "resource_management_enabled": cluster.resource_management_enabled,
        "pools": [pool_summary(c) for c in pool_capacities(session, cluster.id)],
    }


def visible_clusters(session: Session, cluster_ids: set[int] | None) -> list[Cluster]:
    """All clusters (cluster_ids None: platform admin) or those the principal holds a role on."""
    query = select(Cluster).order_by(Cluster.name)
    if cluster_ids is not None:
        query = query.where(Cluster.id.in_(cluster_ids))
    return list(session.scalars(query).all())
