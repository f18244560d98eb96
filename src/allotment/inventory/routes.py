"""Inventory API: clusters, pools, nodes and devices. Cluster configuration needs the cluster admin role."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request, Response
from sqlalchemy import select

from allotment.api.deps import DB, State, client_address, cluster_scope, require
from allotment.audit import service as audit
from allotment.core.permissions import AUTHENTICATED, PLATFORM_ADMIN, Principal, cluster
from allotment.inventory import nodes as node_service
from allotment.inventory import pools as pool_service
from allotment.inventory import service
from allotment.inventory.models import Device, Node, Pool
from allotment.inventory.schemas import (
    ClusterCreate,
    ClusterList,
    ClusterOut,
    ClusterUpdate,
    DeviceList,
    DeviceOut,
    NodeIn,
    NodeList,
    NodeOut,
    NodeUpdate,
    PoolAssign,
    PoolCreate,
    PoolList,
    PoolOut,
    PoolUpdate,
)

router = APIRouter(tags=["inventory"])
ADMIN = cluster("admin")
USER = cluster("user")


def _pool_out(db, pool: Pool) -> PoolOut:
    from allotment.quotas.profiles import pool_profile_order

    summary = service.pool_summaries(db, pool.cluster_id)[pool.id]
    names = {p.id: p.name for p in pool_service.list_pools(db, pool.cluster_id)}
    busy = pool_service.busy_devices(db, pool.cluster_id)
    devices = [DeviceOut.of(d, n, names, busy) for d, n in pool_service.pool_devices(db, pool.id)]
    return PoolOut(id=pool.id, description=pool.description,
                   profile_order=pool_profile_order(db, pool.id), device_list=devices,
                   **summary)


def _node_out(node: Node, devices: list[Device], names: dict[int, str], busy: dict[int, int]) -> NodeOut:
    from allotment.core.quantity import format_raw

    outs = [DeviceOut.of(d, node, names, busy) for d in devices]
    mean = sum(d.utilisation for d in devices) / len(devices) if devices else 0.0
    return NodeOut(id=node.id, name=node.name, pool=names.get(node.pool_id, str(node.pool_id)), status=node.status,
                   health=node.health, cpu=format_raw(node.cpu_milli, "cpu"),
                   memory=format_raw(node.memory_bytes, "memory"), last_seen_at=node.last_seen_at, devices=outs,
                   utilisation=round(mean, 1))


def _node_response(db, cluster_id: int, node: Node) -> NodeOut:
    names = {p.id: p.name for p in pool_service.list_pools(db, cluster_id)}
    devices = list(db.scalars(select(Device).where(Device.node_id == node.id).order_by(Device.index)).all())
    return _node_out(node, devices, names, pool_service.busy_devices(db, cluster_id))


# -- clusters -----------------------------------------------------------------------------------------------------

def _sees_engine(principal: Principal, cluster_id: int) -> bool:
    return principal.is_platform_admin or principal.cluster_roles.get(cluster_id) == "admin"


def _cluster_out(db, principal: Principal, found) -> ClusterOut:
    return ClusterOut(**service.cluster_summary(db, found, with_engine=_sees_engine(principal, found.id)))


@router.get("/clusters", response_model=ClusterList)
def list_clusters(principal: Annotated[Principal, require(AUTHENTICATED)], db: DB) -> ClusterList:
    """Platform admins see every cluster; others the clusters they hold a role on. Engine settings show to platform
    and cluster admins, secrets never."""
    ids = None if principal.is_platform_admin else set(principal.cluster_roles)
    items = [_cluster_out(db, principal, c) for c in service.visible_clusters(db, ids)]
    return ClusterList(items=items, total=len(items))


@router.post("/clusters", response_model=ClusterOut, status_code=201)
def create_cluster(body: ClusterCreate, principal: Annotated[Principal, require(PLATFORM_ADMIN)], db: DB,
                   state: State, request: Request) -> ClusterOut:
    """Register a cluster and its engine; the creator becomes its cluster admin."""
    created = service.create_cluster_as_admin(db, body.name, body.backend, principal.id, body.description,
                                              body.engine, state.secret_key)
    audit.record(db, principal, "cluster.create", "cluster", created.name, created.id,
                 changes={"after": {"backend": created.backend, "engine_settings": sorted(body.engine.model_dump(
                     exclude_none=True)) if body.engine else []}}, source=client_address(request))
    state.scheduler_wakeup.set()
    return ClusterOut(**service.cluster_summary(db, created, with_engine=True))


@router.get("/clusters/{cluster}", response_model=ClusterOut)
def get_cluster(cluster: str, principal: Annotated[Principal, require(USER, scope=cluster_scope())],
                db: DB) -> ClusterOut:
    return _cluster_out(db, principal, service.find_cluster(db, cluster))


@router.patch("/clusters/{cluster}", response_model=ClusterOut)
def update_cluster(cluster: str, body: ClusterUpdate, principal: Annotated[Principal, require(PLATFORM_ADMIN)],
                   db: DB, state: State, request: Request) -> ClusterOut:
    """Change the description, region and zone labels, the backend or engine settings (platform admins only: an engine's settings decide
    what the server runs and where it reads). Settings left out are kept; null resets one (a secret: clears it)."""
    found = service.find_cluster(db, cluster)
    given = body.model_fields_set
    change = service.update_cluster(db, found, state.secret_key, backend=body.backend, description=body.description,
                                    description_set="description" in given, engine=body.engine,
                                    region=body.region, region_set="region" in given, zones=body.zones,
                                    zones_set="zones" in given)
    if change.any:
        audit.record(db, principal, "cluster.update", "cluster", found.name, found.id, changes=change.audit_changes(),
                     source=client_address(request))
        state.scheduler_wakeup.set()
    return ClusterOut(**service.cluster_summary(db, found, with_engine=True))


@router.delete("/clusters/{cluster}", status_code=204)
def delete_cluster(cluster: str, principal: Annotated[Principal, require(ADMIN, scope=cluster_scope())], db: DB,
                   state: State, request: Request) -> Response:
    """Remove a cluster with its pools, nodes and role grants; refused (409) while it has active jobs."""
    found = service.find_cluster(db, cluster)
    service.delete_cluster(db, found)
    audit.record(db, principal, "cluster.delete", "cluster", found.name, found.id,
                 changes={"before": {"backend": found.backend}}, source=client_address(request))
    state.scheduler_wakeup.set()
    return Response(status_code=204)


# -- pools --------------------------------------------------------------------------------------------------------

@router.get("/clusters/{cluster}/pools", response_model=PoolList, dependencies=[require(USER, scope=cluster_scope())])
def list_pools(cluster: str, db: DB) -> PoolList:
    found = service.find_cluster(db, cluster)
    items = [_pool_out(db, p) for p in pool_service.list_pools(db, found.id)]
    return PoolList(items=items, total=len(items))


@router.post("/clusters/{cluster}/pools", response_model=PoolOut, status_code=201)
def create_pool(cluster: str, body: PoolCreate, principal: Annotated[Principal, require(ADMIN, scope=cluster_scope())],
                db: DB, state: State, request: Request) -> PoolOut:
    found = service.find_cluster(db, cluster)
    pool = pool_service.create_pool(db, found.id, body.name, body.description, body.devices, body.nodes)
    audit.record(db, principal, "pool.create", "pool", f"{found.name}/{pool.name}", pool.id,
                 changes={"after": {"devices": [str(d) for d in body.devices], "nodes": body.nodes}},
                 source=client_address(request))
    state.scheduler_wakeup.set()
    return _pool_out(db, pool)


@router.get("/clusters/{cluster}/pools/{pool}", response_model=PoolOut,
            dependencies=[require(USER, scope=cluster_scope())])
def get_pool(cluster: str, pool: str, db: DB) -> PoolOut:
    found = service.find_cluster(db, cluster)
    return _pool_out(db, pool_service.find_pool(db, found.id, pool))


@router.patch("/clusters/{cluster}/pools/{pool}", response_model=PoolOut)
def update_pool(cluster: str, pool: str, body: PoolUpdate,
                principal: Annotated[Principal, require(ADMIN, scope=cluster_scope())], db: DB,
                request: Request) -> PoolOut:
    """Rename a pool, change its description, or set Neu.ro's node-pool attributes: machine type and preemptible
    (labels), min_nodes and max_nodes (bounds on the nodes it spans). Only what is given changes; null clears."""
    found = pool_service.find_pool(db, service.find_cluster_id(db, cluster), pool)
    given = body.model_fields_set
    before = {"name": found.name, "description": found.description, **pool_service.pool_attributes(found)}
    attributes = {k: getattr(body, k) for k in pool_service.POOL_ATTRIBUTES if k in given}
    if attributes:
        pool_service.set_pool_attributes(db, found, attributes)
    if body.name is not None or body.description is not None:
        pool_service.rename_pool(db, found, body.name, body.description)
    after = {"name": found.name, "description": found.description, **pool_service.pool_attributes(found)}
    if after != before:
        audit.record(db, principal, "pool.update", "pool", f"{cluster}/{found.name}", found.id,
                     changes=audit.diff(before, after), source=client_address(request))
    return _pool_out(db, found)


@router.delete("/clusters/{cluster}/pools/{pool}", status_code=204)
def delete_pool(cluster: str, pool: str, principal: Annotated[Principal, require(ADMIN, scope=cluster_scope())],
                db: DB, state: State, request: Request) -> Response:
    found = pool_service.find_pool(db, service.find_cluster_id(db, cluster), pool)
    moved = pool_service.delete_pool(db, found)
    audit.record(db, principal, "pool.delete", "pool", f"{cluster}/{found.name}", found.id,
                 changes={"after": {"devices_returned_to_default": moved}}, source=client_address(request))
    state.scheduler_wakeup.set()
    return Response(status_code=204)


@router.post("/clusters/{cluster}/pools/{pool}/devices", response_model=PoolOut)
def assign_devices(cluster: str, pool: str, body: PoolAssign,
                   principal: Annotated[Principal, require(ADMIN, scope=cluster_scope())], db: DB, state: State,
                   request: Request) -> PoolOut:
    """Move devices (ids or NODE:INDEX) and whole nodes into the pool; they leave their current pool."""
    found = pool_service.find_pool(db, service.find_cluster_id(db, cluster), pool)
    moved = pool_service.assign(db, found, body.devices, body.nodes)
    audit.record(db, principal, "pool.assign", "pool", f"{cluster}/{found.name}", found.id,
                 changes={"after": {"devices": sorted(d.id for d in moved), "nodes": body.nodes}},
                 source=client_address(request))
    state.scheduler_wakeup.set()
    return _pool_out(db, found)


@router.delete("/clusters/{cluster}/pools/{pool}/devices/{device}", response_model=PoolOut)
def unassign_device(cluster: str, pool: str, device: str,
                    principal: Annotated[Principal, require(ADMIN, scope=cluster_scope())], db: DB, state: State,
                    request: Request) -> PoolOut:
    """Return a device to the default pool."""
    cluster_id = service.find_cluster_id(db, cluster)
    found = pool_service.find_pool(db, cluster_id, pool)
    dev = pool_service.find_device(db, cluster_id, device)
    pool_service.unassign(db, found, dev)
    audit.record(db, principal, "pool.unassign", "pool", f"{cluster}/{found.name}", found.id,
                 changes={"before": {"device": dev.id}}, source=client_address(request))
    state.scheduler_wakeup.set()
    return _pool_out(db, found)


# -- nodes and devices --------------------------------------------------------------------------------------------

@router.get("/clusters/{cluster}/nodes", response_model=NodeList, dependencies=[require(USER, scope=cluster_scope())])
def list_nodes(cluster: str, db: DB) -> NodeList:
    cluster_id = service.find_cluster_id(db, cluster)
    names = {p.id: p.name for p in pool_service.list_pools(db, cluster_id)}
    busy = pool_service.busy_devices(db, cluster_id)
    items = [_node_out(n, ds, names, busy) for n, ds in node_service.list_nodes(db, cluster_id)]
    return NodeList(items=items, total=len(items))


@router.post("/clusters/{cluster}/nodes", response_model=NodeOut)
def register_node(cluster: str, body: NodeIn, principal: Annotated[Principal, require(ADMIN, scope=cluster_scope())],
                  db: DB, state: State, request: Request) -> NodeOut:
    """Create or refresh a node and its devices (what backends report). New devices land in the default pool."""
    cluster_id = service.find_cluster_id(db, cluster)
    report = node_service.NodeReport(
        name=body.name, cpu=body.cpu, memory=body.memory, status=body.status, health=body.health,
        devices=[node_service.DeviceReport(**d.model_dump()) for d in body.devices])
    node = node_service.register_node(db, cluster_id, report)
    audit.record(db, principal, "node.register", "node", f"{cluster}/{node.name}", node.id,
                 changes={"after": {"devices": len(body.devices), "status": node.status}},
                 source=client_address(request))
    state.scheduler_wakeup.set()
    return _node_response(db, cluster_id, node)


@router.patch("/clusters/{cluster}/nodes/{node}", response_model=NodeOut)
def update_node(cluster: str, node: str, body: NodeUpdate,
                principal: Annotated[Principal, require(ADMIN, scope=cluster_scope())], db: DB, state: State,
                request: Request) -> NodeOut:
    """Set a node's status: ready, draining (keeps its jobs, takes no new ones) or down."""
    cluster_id = service.find_cluster_id(db, cluster)
    found = node_service.find_node(db, cluster_id, node)
    before = found.status
    node_service.set_node_status(db, found, body.status)
    audit.record(db, principal, "node.update", "node", f"{cluster}/{found.name}", found.id,
                 changes=audit.diff({"status": before}, {"status": found.status}), source=client_address(request))
    state.scheduler_wakeup.set()
    return _node_response(db, cluster_id, found)


@router.delete("/clusters/{cluster}/nodes/{node}", status_code=204)
def delete_node(cluster: str, node: str, principal: Annotated[Principal, require(ADMIN, scope=cluster_scope())],
                db: DB, state: State, request: Request) -> Response:
    found = node_service.find_node(db, service.find_cluster_id(db, cluster), node)
    node_service.delete_node(db, found)
    audit.record(db, principal, "node.delete", "node", f"{cluster}/{found.name}", found.id,
                 source=client_address(request))
    state.scheduler_wakeup.set()
    return Response(status_code=204)


@router.get("/clusters/{cluster}/devices", response_model=DeviceList,
            dependencies=[require(USER, scope=cluster_scope())])
def list_devices(cluster: str, db: DB) -> DeviceList:
    """Every device of the cluster with its pool, health, utilisation and the job holding it."""
    cluster_id = service.find_cluster_id(db, cluster)
    names = {p.id: p.name for p in pool_service.list_pools(db, cluster_id)}
    busy = pool_service.busy_devices(db, cluster_id)
    items = [DeviceOut.of(d, n, names, busy) for n, ds in node_service.list_nodes(db, cluster_id) for d in ds]
    return DeviceList(items=items, total=len(items))
