"""Nodes and devices as the execution backends report them (DKube: node and device status with utilisation).

`register_node` is the one entry point for inventory reports, from the API (POST /clusters/{c}/nodes) and from the
backends in-process: it creates or refreshes a node and its devices. New nodes and devices land in the cluster's
default pool; known devices keep their pool. A device missing from a report is kept with health 'unknown' (a job
may still hold it), so the scheduler stops placing work on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from allotment.core.quantity import parse_quantity
from allotment.db import utcnow
from allotment.errors import Conflict, FieldError, NotFound, ValidationFailed
from allotment.inventory.machines import layout
from allotment.inventory.models import HEALTH_VALUES, NODE_STATUSES, UNKNOWN, Device, Node, Pool
from allotment.inventory.pools import busy_devices, check_node_bounds, refresh_models
from allotment.inventory.service import bump_config_version, check_name, default_pool

MAX_DEVICES_PER_NODE = 1024


@dataclass
class DeviceReport:
    index: int
    model: str
    memory: str | int = 0
    uuid: str | None = None
    health: str = "healthy"
    utilisation: float = 0.0


@dataclass
class NodeReport:
    name: str
    cpu: str | int = 0
    memory: str | int = 0
    status: str = "ready"
    health: str = "healthy"
    devices: list[DeviceReport] = field(default_factory=list)


def _quantity(errors: list[FieldError], field_name: str, value: str | int, resource: str) -> int:
    try:
        quantity = parse_quantity(value, resource)
    except ValueError as exc:
        errors.append(FieldError(field_name, str(exc)))
        return 0
    if quantity.is_unlimited:
        errors.append(FieldError(field_name, "must be a finite amount"))
        return 0
    return quantity.raw


def _check_report(report: NodeReport) -> tuple[int, int, list[int]]:
    errors: list[FieldError] = []
    try:
        check_name("name", report.name)
    except ValidationFailed as exc:
        errors.extend(exc.errors)
    cpu = _quantity(errors, "cpu", report.cpu, "cpu")
    memory = _quantity(errors, "memory", report.memory, "memory")
    if report.status not in NODE_STATUSES:
        errors.append(FieldError("status", f"must be one of {', '.join(NODE_STATUSES)}"))
    if report.health not in HEALTH_VALUES:
        errors.append(FieldError("health", f"must be one of {', '.join(HEALTH_VALUES)}"))
    if len(report.devices) > MAX_DEVICES_PER_NODE:
        errors.append(FieldError("devices", f"at most {MAX_DEVICES_PER_NODE} devices per node"))
    seen: set[int] = set()
    device_memory = []
    for i, dev in enumerate(report.devices):
        if dev.index < 0:
            errors.append(FieldError(f"devices.{i}.index", "must be zero or more"))
        if dev.index in seen:
            errors.append(FieldError(f"devices.{i}.index", f"index {dev.index} is listed twice"))
        seen.add(dev.index)
        if not dev.model.strip():
            errors.append(FieldError(f"devices.{i}.model", "must not be empty"))
        if dev.health not in HEALTH_VALUES:
            errors.append(FieldError(f"devices.{i}.health", f"must be one of {', '.join(HEALTH_VALUES)}"))
        if not 0 <= dev.utilisation <= 100:
            errors.append(FieldError(f"devices.{i}.utilisation", "must be a percentage between 0 and 100"))
        device_memory.append(_quantity(errors, f"devices.{i}.memory", dev.memory, "memory"))
    if errors:
        raise ValidationFailed("; ".join(f"{e.field}: {e.message}" for e in errors), errors)
    return cpu, memory, device_memory


def register_node(session: Session, cluster_id: int, report: NodeReport) -> Node:
    """Create or refresh one node and its devices (all or nothing)."""
    cpu, memory, device_memory = _check_report(report)
    name = report.name.strip()
    now = utcnow()
    fallback = default_pool(session, cluster_id)
    node = session.scalar(select(Node).where(Node.cluster_id == cluster_id, Node.name == name))
    created = node is None
    if node is None:
        node = Node(cluster_id=cluster_id, name=name, pool_id=fallback.id)
        session.add(node)
    # What placement reads (load.py) changes the scheduler's view: a node drained or down, its size, a device's health.
    structural = created or (node.status, node.health, node.cpu_milli, node.memory_bytes) != (
        report.status, report.health, cpu, memory)
    node.cpu_milli, node.memory_bytes = cpu, memory
    node.status, node.health, node.last_seen_at = report.status, report.health, now
    session.flush()
    known = {d.index: d for d in session.scalars(select(Device).where(Device.node_id == node.id)).all()}
    pools = {p.id: p for p in session.scalars(select(Pool).where(Pool.cluster_id == cluster_id)).all()}
    for dev, mem in zip(report.devices, device_memory):
        device = known.pop(dev.index, None)
        if device is None:
            device = Device(node_id=node.id, index=dev.index, pool_id=fallback.id)
            session.add(device)
            structural = True
        elif device.model != dev.model.strip():
            structural = True
            pool = pools.get(device.pool_id)
            if pool is not None and not pool.is_default:  # a pool holds one model: the changed device leaves it
                device.pool_id = fallback.id
        device.model = dev.model.strip()
        device.memory_bytes = mem
        device.uuid = dev.uuid
        structural = structural or device.health != dev.health
        device.health = dev.health
        device.utilisation = dev.utilisation
    for device in known.values():  # not reported any more
        if device.health != UNKNOWN:
            device.health = UNKNOWN
            structural = True
    session.flush()
    if structural:
        refresh_models(session, cluster_id)
        bump_config_version(session, cluster_id)
    return node


def find_node(session: Session, cluster_id: int, name: str) -> Node:
    node = session.scalar(select(Node).where(Node.cluster_id == cluster_id, Node.name == name))
    if node is None:
        raise NotFound(f"no node '{name}' in this cluster")
    return node


def set_node_status(session: Session, node: Node, status: str) -> Node:
    if status not in NODE_STATUSES:
        raise ValidationFailed(f"status: must be one of {', '.join(NODE_STATUSES)}",
                               [FieldError("status", f"must be one of {', '.join(NODE_STATUSES)}")])
    node.status = status
    session.flush()
    bump_config_version(session, node.cluster_id)
    return node


def delete_node(session: Session, node: Node) -> None:
    busy = busy_devices(session, node.cluster_id)
    jobs = sorted({busy[d] for d in session.scalars(select(Device.id).where(Device.node_id == node.id)).all()
                   if d in busy})
    if jobs:
        raise Conflict(f"node {node.name} runs job(s) {', '.join(map(str, jobs))}: drain it and wait for them")
    cluster_id = node.cluster_id
    before = layout(session, cluster_id)
    check_node_bounds(session, cluster_id, before, before.moved(removed={node.id}), "node")
    session.delete(node)
    session.flush()
    refresh_models(session, cluster_id)
    bump_config_version(session, cluster_id)


def list_nodes(session: Session, cluster_id: int) -> list[tuple[Node, list[Device]]]:
    nodes = session.scalars(select(Node).where(Node.cluster_id == cluster_id).order_by(Node.name)).all()
    devices: dict[int, list[Device]] = {}
    rows = session.scalars(select(Device).join(Node, Node.id == Device.node_id)
                           .where(Node.cluster_id == cluster_id).order_by(Device.node_id, Device.index)).all()
    for device in rows:
        devices.setdefault(device.node_id, []).append(device)
    return [(n, devices.get(n.id, [])) for n in nodes]
