"""Clusters: lookup, creation with engine settings, changes, removal, the engine's status, the summary GET /clusters
returns, and the pool capacity the scheduler reads."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from allotment.accounting import capacity
from allotment.api.state import mark_identity_changed
from allotment.audit import service as audit
from allotment.core.names import as_id, confusable_with
from allotment.core.quantity import format_raw
from allotment.db import utcnow
from allotment.errors import Conflict, FieldError, NotFound, ValidationFailed, invalid
from allotment.inventory import engine_settings
from allotment.inventory.engine_settings import EngineIn
from allotment.inventory.machines import Machines, pool_machines
from allotment.inventory.models import (
    CLUSTER_READY,
    CLUSTER_STATUSES,
    HEALTHY,
    NODE_READY,
    Cluster,
    Device,
    Node,
    Pool,
)

DEFAULT_POOL = "default"
BACKENDS = ("local", "simulated", "slurm", "ray")
MAX_NAME = 64
MAX_LABEL = 64  # a region or zone label
MAX_ZONES = 64
MAX_STATUS_ERROR = 2000  # an engine's error as shown with the cluster's status


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
                            description: str | None = None, engine: dict[str, Any] | EngineIn | None = None,
                            secret_key: str = "") -> Cluster:
    """Create a cluster with its engine settings; its creator becomes its cluster admin (Neu.ro)."""
    from allotment.identity import cluster_roles  # identity imports inventory's models
    from allotment.identity import service as identity

    changes = engine_settings.parse(engine)
    if backend not in BACKENDS:
        raise invalid("backend", f"must be one of {', '.join(BACKENDS)}")
    plain, secrets, _ = engine_settings.merge(backend, {}, {}, changes)  # checked before anything is written
    cluster = create_cluster(session, name, backend, creator_id, description)
    engine_settings.store(cluster, secret_key, plain, secrets)
    cluster.status_since = utcnow()
    session.flush()
    cluster_roles.make_creator_admin(session, cluster, identity.find_user(session, creator_id))
    mark_identity_changed(session)
    return cluster


@dataclass
class ClusterChange:
    """What an update changed, for the audit log: names of settings, never their values."""

    before: dict[str, Any]
    after: dict[str, Any]
    engine_changed: list[str]

    @property
    def any(self) -> bool:
        return self.before != self.after or bool(self.engine_changed)

    def audit_changes(self) -> dict[str, Any]:
        changes = audit.diff(self.before, self.after) if self.before != self.after else {}
        if self.engine_changed:
            changes["engine_settings_changed"] = self.engine_changed
        return changes


def update_cluster(session: Session, cluster: Cluster, secret_key: str, *, backend: str | None = None,
                   description: str | None = None, description_set: bool = False,
                   engine: dict[str, Any] | EngineIn | None = None, region: str | None = None,
                   region_set: bool = False, zones: list[str] | None = None,
                   zones_set: bool = False) -> ClusterChange:
    """Change a cluster's description, region and zone labels, backend or engine settings. A setting left out is
    kept, null resets it; a new backend starts from empty settings and is refused while the old engine has active
    jobs."""
    changes = engine_settings.parse(engine)
    region = check_region(region) if region_set else cluster.region
    zones = check_zones(zones) if zones_set else cluster.zones
    before = _labels(cluster)
    new_backend = cluster.backend
    if backend is not None and backend != cluster.backend:
        if backend not in BACKENDS:
            raise invalid("backend", f"must be one of {', '.join(BACKENDS)}")
        active = active_jobs(session, cluster.id)
        if active:
            raise Conflict(f"cluster {cluster.name} has {_jobs_text(active)}: its {cluster.backend} engine runs "
                           f"them, so its backend cannot change until they end or are cancelled",
                           [FieldError("backend", "cannot change while the cluster has active jobs")])
        new_backend = backend
    if new_backend != cluster.backend:
        plain, secrets = {}, {}
    else:
        plain = engine_settings.plain_settings(cluster)
        secrets = _current_secrets(cluster, secret_key, changes)
    plain, secrets, changed = engine_settings.merge(new_backend, plain, secrets, changes)
    if new_backend != cluster.backend:
        changed = sorted(set(changed) | set(engine_settings.plain_settings(cluster)) | set(
            (cluster.engine_settings or {}).get("_set", ())))
    cluster.backend = new_backend
    if description_set:
        cluster.description = description
    cluster.region, cluster.zones = region, zones
    if changed or new_backend != before["backend"]:
        reseal = new_backend != before["backend"] or any(n in engine_settings.SECRETS for n in changed)
        engine_settings.store(cluster, secret_key, plain, secrets, reseal)
        cluster.engine_revision = (cluster.engine_revision or 0) + 1  # the scheduler builds the engine again
    session.flush()
    return ClusterChange(before, _labels(cluster), changed)


def _labels(cluster: Cluster) -> dict[str, Any]:
    return {"backend": cluster.backend, "description": cluster.description, "region": cluster.region,
            "zones": list(cluster.zones or [])}


def check_region(region: str | None) -> str | None:
    """A region label (Neu.ro's get-clusters shows it): at most 64 characters; empty or null removes it."""
    text = (region or "").strip()
    if len(text) > MAX_LABEL:
        raise invalid("region", f"must be at most {MAX_LABEL} characters long")
    return text or None


def check_zones(zones: list[str] | None) -> list[str] | None:
    """Zone labels: each non-empty, at most 64 characters, listed once, at most 64 of them; empty or null: none."""
    cleaned: list[str] = []
    errors = []
    for i, zone in enumerate(zones or []):
        text = str(zone).strip()
        if not text:
            errors.append(FieldError(f"zones.{i}", "must not be empty"))
        elif len(text) > MAX_LABEL:
            errors.append(FieldError(f"zones.{i}", f"must be at most {MAX_LABEL} characters long"))
        elif text in cleaned:
            errors.append(FieldError(f"zones.{i}", f"zone {text} is listed twice"))
        cleaned.append(text)
    if len(cleaned) > MAX_ZONES:
        errors.append(FieldError("zones", f"at most {MAX_ZONES} zones"))
    if errors:
        raise ValidationFailed("; ".join(f"{e.field}: {e.message}" for e in errors), errors)
    return cleaned or None


def _current_secrets(cluster: Cluster, secret_key: str, changes: dict[str, Any]) -> dict[str, str]:
    """The stored secrets; when they cannot be opened (the server's key changed), an update that sets or clears
    each of them again still goes through."""
    try:
        return engine_settings.stored_secrets(cluster, secret_key)
    except engine_settings.SecretsUnreadable as exc:
        stored = (cluster.engine_settings or {}).get("_set", ())
        missing = [name for name in stored if name not in changes]
        if missing:
            raise ValidationFailed(str(exc), [FieldError(f"engine.{n}", "cannot be opened with this server's key: "
                                                         "set it again (or reset it with null)") for n in missing])
        return {}


def active_jobs(session: Session, cluster_id: int) -> list[tuple[int, str]]:
    """(id, state) of the cluster's queued, admitted, running and preempted jobs, oldest first."""
    from allotment.workloads.models import Job, active

    return [(r[0], r[1]) for r in session.execute(select(Job.id, Job.state).where(
        Job.cluster_id == cluster_id, active()).order_by(Job.id)).all()]


def _jobs_text(active: list[tuple[int, str]], shown: int = 20) -> str:
    """'3 active jobs (2 queued, 1 running): 12, 15, 17'."""
    by_state: dict[str, int] = {}
    for _, state in active:
        by_state[state] = by_state.get(state, 0) + 1
    states = ", ".join(f"{n} {state}" for state, n in sorted(by_state.items()))
    ids = ", ".join(str(job_id) for job_id, _ in active[:shown])
    more = f" and {len(active) - shown} more" if len(active) > shown else ""
    return f"{len(active)} active job{'s' if len(active) != 1 else ''} ({states}): {ids}{more}"


def delete_cluster(session: Session, cluster: Cluster) -> None:
    from allotment.workloads import references  # workloads imports this module's models

    references.claim(session, Cluster.id, cluster.id)  # a batch submitting to it commits first, then is counted
    active = active_jobs(session, cluster.id)
    if active:
        raise Conflict(f"cluster {cluster.name} has {_jobs_text(active)}; cancel them or wait until they end, then "
                       f"remove it")
    # Devices and nodes point at their pool without a cascade (a pool with devices must not vanish on its own), so
    # PostgreSQL, which checks every foreign key, refuses the cascade from the cluster when it reaches the pools
    # first: remove the inventory bottom-up, then the cluster.
    nodes = select(Node.id).where(Node.cluster_id == cluster.id).scalar_subquery()
    session.execute(delete(Device).where(Device.node_id.in_(nodes)))
    session.execute(delete(Node).where(Node.cluster_id == cluster.id))
    references.forget_cluster(session, cluster.id)  # its finished jobs go with it
    session.delete(cluster)
    session.flush()
    capacity.record(session, cluster.id, time.time())  # its pools' capacity ends here
    mark_identity_changed(session)  # its role grants go with it


def report_engine_status(session: Session, cluster_id: int, status: str, error: str | None = None,
                         at: datetime | None = None) -> bool:
    """Record what a cluster's engine says about itself (the scheduler loop calls this): `ready`, `degraded` or
    `unreachable`, with the engine's own error. The row changes only when the status or the error does, so that
    `status_since` says since when; returns whether it changed. Credentials in URLs are cut out of the error."""
    if status not in CLUSTER_STATUSES:
        raise ValueError(f"status must be one of {', '.join(CLUSTER_STATUSES)}")
    error = engine_settings.redact_credentials(error.strip())[:MAX_STATUS_ERROR] if error and error.strip() else None
    if status == CLUSTER_READY:
        error = None
    row = session.execute(select(Cluster.status, Cluster.status_error).where(Cluster.id == cluster_id)).first()
    if row is None or (row.status, row.status_error) == (status, error):
        return False
    session.execute(update(Cluster).where(Cluster.id == cluster_id).values(
        status=status, status_error=error, status_since=at or utcnow()))
    return True


def default_pool(session: Session, cluster_id: int) -> Pool:
    pool = session.scalar(select(Pool).where(Pool.cluster_id == cluster_id, Pool.is_default.is_(True)))
    if pool is None:  # every cluster is created with one; recreate it rather than fail
        pool = Pool(cluster_id=cluster_id, name=DEFAULT_POOL, is_default=True)
        session.add(pool)
        session.flush()
    return pool


def bump_config_version(session: Session, cluster_id: int) -> None:
    """Tell the scheduler that the cluster's pools, quotas or profiles changed. Every change to devices, nodes or
    pools comes here, so the pools' capacity history is kept here too (a row only where a count changed)."""
    cluster = session.get(Cluster, cluster_id)
    if cluster is not None:
        cluster.config_version = (cluster.config_version or 0) + 1
    capacity.record(session, cluster_id, time.time())


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


def machine_summary(machines: Machines) -> dict:
    """One row of Neu.ro's node-pool table: how many nodes have this shape, and what each gives the pool."""
    shape = machines.shape
    return {
        "nodes": machines.nodes,
        "cpu": None if shape.cpu_milli is None else format_raw(shape.cpu_milli, "cpu"),
        "memory": None if shape.memory_bytes is None else format_raw(shape.memory_bytes, "memory"),
        "gpus": [{"count": count, "model": model} for model, count in shape.gpus],
    }


def pool_summary(cap: PoolCapacity, pool: Pool, machines: list[Machines]) -> dict:
    return {
        "name": cap.name,
        "is_default": bool(pool.is_default),
        "device_model": cap.device_model,
        "devices": cap.devices,
        "gpus": cap.usable_devices,
        "memory": format_raw(cap.device_memory_bytes, "memory"),
        "cpu": None if cap.cpu_milli is None else format_raw(cap.cpu_milli, "cpu"),
        "host_memory": None if cap.memory_bytes is None else format_raw(cap.memory_bytes, "memory"),
        "machine_type": pool.machine_type,
        "preemptible": bool(pool.preemptible),
        "min_nodes": pool.min_nodes,
        "max_nodes": pool.max_nodes,
        "nodes": sum(m.nodes for m in machines),
        "machines": [machine_summary(m) for m in machines],
    }


def pool_summaries(session: Session, cluster_id: int) -> dict[int, dict]:
    """pool id -> pool_summary, in pool_capacities' order."""
    pools = {p.id: p for p in session.scalars(select(Pool).where(Pool.cluster_id == cluster_id)).all()}
    machines = pool_machines(session, cluster_id)
    return {cap.pool_id: pool_summary(cap, pools[cap.pool_id], machines.get(cap.pool_id, []))
            for cap in pool_capacities(session, cluster_id)}


def cluster_summary(session: Session, cluster: Cluster, with_engine: bool = False) -> dict:
    """What GET /clusters shows; the engine settings (secrets as {"set": bool}) only `with_engine`."""
    return {
        "name": cluster.name,
        "backend": cluster.backend,
        "status": cluster.status,
        "status_error": cluster.status_error,
        "status_since": cluster.status_since,
        "description": cluster.description,
        "region": cluster.region,
        "zones": list(cluster.zones or []),
        "resource_management_enabled": cluster.resource_management_enabled,
        "engine": engine_settings.public_settings(cluster) if with_engine else None,
        "pools": list(pool_summaries(session, cluster.id).values()),
    }


def visible_clusters(session: Session, cluster_ids: set[int] | None) -> list[Cluster]:
    """All clusters (cluster_ids None: platform admin) or those the principal holds a role on."""
    query = select(Cluster).order_by(Cluster.name)
    if cluster_ids is not None:
        query = query.where(Cluster.id.in_(cluster_ids))
    return list(session.scalars(query).all())
