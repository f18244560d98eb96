"""Pools and nodes of a cluster (DKube's pools and Nodes screens): a per-node summary ("8 of 8 allocated") with
filters, each node's devices on demand, and for cluster admins a page to create, rename and delete pools (the
refusal shown when jobs run on them) and to move nodes and devices into a pool.

Changes are the API's route functions (inventory/routes.py) called with the body the API would get: the same
checks, audit records and authorisation; every error is shown under the field of the form that caused it.
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy import select

from allotment.api.deps import DB, State, cluster_scope, require
from allotment.core.permissions import Principal, cluster
from allotment.core.quantity import format_raw
from allotment.errors import DomainError, FieldError, invalid
from allotment.inventory import nodes as node_service
from allotment.inventory import pools as pool_service
from allotment.inventory import routes as api
from allotment.inventory import service as inventory
from allotment.inventory.models import Device
from allotment.inventory.schemas import PoolAssign, PoolCreate, PoolUpdate
from allotment.web.console import is_htmx, redirect, render, url_segment
from allotment.web.form_rows import by_field, failure
from allotment.web.pages_cluster_settings import Form

router = APIRouter()
Reader = Annotated[Principal, require(cluster("user"), cluster_scope())]
Admin = Annotated[Principal, require(cluster("admin"), cluster_scope())]
ALLOCATION = ("free", "partly", "full")  # no GPU allocated, some, all
NODE_STATUSES = ("ready", "draining", "down")


def node_summaries(db, cluster_id: int) -> list[dict]:
    """One row per node: its pools, status, health, GPUs allocated of its total, models, mean GPU utilisation, CPU
    and memory."""
    busy = pool_service.busy_devices(db, cluster_id)
    names = {p.id: p.name for p in pool_service.list_pools(db, cluster_id)}
    rows = []
    for node, devices in node_service.list_nodes(db, cluster_id):
        allocated = sum(1 for d in devices if d.id in busy)
        pools = sorted({names.get(d.pool_id, "—") for d in devices} | {names.get(node.pool_id, "—")})
        rows.append({
            "name": node.name, "status": node.status, "health": node.health, "pools": pools,
            "gpus": len(devices), "allocated": allocated,
            "allocation": "free" if not allocated else "full" if allocated == len(devices) else "partly",
            "models": sorted({d.model for d in devices}),
            "unhealthy": sum(1 for d in devices if d.health != "healthy"),
            "utilisation": sum(d.utilisation or 0 for d in devices) / len(devices) if devices else None,
            "cpu": format_raw(node.cpu_milli, "cpu"), "memory": format_raw(node.memory_bytes, "memory"),
        })
    return rows


def node_filters(params) -> dict[str, str]:
    """The node filters a query string asks for; unknown values are ignored (the filter is off)."""
    wanted = {k: str(params.get(k, "")).strip()[:128] for k in ("pool", "status", "allocation", "health", "q")}
    if wanted["status"] not in NODE_STATUSES:
        wanted["status"] = ""
    if wanted["allocation"] not in ALLOCATION:
        wanted["allocation"] = ""
    if wanted["health"] != "unhealthy":
        wanted["health"] = ""
    return wanted


def keep(row: dict, f: dict[str, str]) -> bool:
    return ((not f["pool"] or f["pool"] in row["pools"]) and (not f["status"] or row["status"] == f["status"])
            and (not f["allocation"] or row["allocation"] == f["allocation"])
            and (not f["health"] or row["health"] != "healthy" or row["unhealthy"] > 0)
            and (not f["q"] or f["q"].lower() in row["name"].lower()))


def nodes_context(db, cluster_id: int, params) -> dict:
    """What the cluster page's node section shows: the filtered summary, the filters and their choices."""
    rows = node_summaries(db, cluster_id)
    filters = node_filters(params)
    shown = [r for r in rows if keep(r, filters)]
    return {"node_rows": shown, "node_total": len(rows), "node_filters": filters,
            "node_gpus": sum(r["gpus"] for r in shown), "node_allocated": sum(r["allocated"] for r in shown),
            "filter_pools": [p.name for p in pool_service.list_pools(db, cluster_id)],
            "node_statuses": NODE_STATUSES, "allocations": ALLOCATION}


@router.get("/ui/clusters/{cluster}/nodes/{node}")
def node_page(request: Request, principal: Reader, db: DB, cluster: str, node: str) -> Response:
    """A node's devices: pool, health, utilisation, the job holding each. htmx asks for the fragment only."""
    found = inventory.find_cluster(db, cluster)
    target = node_service.find_node(db, found.id, node)
    busy = pool_service.busy_devices(db, found.id)
    names = {p.id: p.name for p in pool_service.list_pools(db, found.id)}
    # Only this node's devices (the whole cluster's would be read to show one node).
    devices = db.scalars(select(Device).where(Device.node_id == target.id).order_by(Device.index)).all()
    rows = [{"device": d, "pool": names.get(d.pool_id, "—"), "memory": format_raw(d.memory_bytes, "memory"),
             "job_id": busy.get(d.id)} for d in devices]
    context = {"cluster": found, "node": target, "devices": rows, "pool": names.get(target.pool_id, "—"),
               "cpu": format_raw(target.cpu_milli, "cpu"), "memory": format_raw(target.memory_bytes, "memory")}
    return render(request, "_node_devices.html" if is_htmx(request) else "node.html", context)


# -- pool management (cluster admins) ---------------------------------------------------------------------------

def pools_url(cluster_name: str) -> str:
    return f"/ui/clusters/{url_segment(cluster_name)}/pools"


def pools_page(request: Request, db, cluster_name: str, status: int = 200, **state) -> Response:
    """The pools page; `state` reopens a form that failed (`form`: create, rename:POOL or assign:POOL, with its
    `values` and `errors`) or shows a deletion's `refusal` beside the pool."""
    found = inventory.find_cluster(db, cluster_name)
    summaries = inventory.pool_summaries(db, found.id)
    node_names = [n.name for n, _ in node_service.list_nodes(db, found.id)]
    return render(request, "cluster_pools.html", {
        "cluster": found, "pools": list(summaries.values()), "node_names": node_names,
        "form": state.get("form"), "values": state.get("values", {}), "errors": state.get("errors", {}),
        "refusal": state.get("refusal")}, status=status)


@router.get("/ui/clusters/{cluster}/pools")
def manage_pools(request: Request, principal: Admin, db: DB, cluster: str) -> Response:
    return pools_page(request, db, cluster)


def refs(text: str) -> list[str]:
    """Devices (NODE:INDEX or ids) or node names, separated by commas, spaces or lines."""
    return [part for part in re.split(r"[,\s]+", text.strip()) if part]


def by_input(errors: list[FieldError]) -> dict[str, list[str]]:
    """`devices.3` and `nodes.0` are items of the one box each: their messages go under that box."""
    return by_field(FieldError(e.field.split(".")[0], e.message) for e in errors)


def refused(request: Request, db, cluster_name: str, exc: Exception, form: dict, which: str,
            conflict_field: str | None = "name") -> Response:
    errors = failure(exc, conflict_field)
    if errors is None:
        raise exc
    db.rollback()
    status = 422 if isinstance(exc, ValidationError) else exc.status  # type: ignore[attr-defined]
    return pools_page(request, db, cluster_name, status, form=which, values=dict(form), errors=by_input(errors))


@router.post("/ui/clusters/{cluster}/pools")
def create_pool(request: Request, principal: Admin, db: DB, state: State, form: Form, cluster: str) -> Response:
    try:
        body = PoolCreate(name=form.get("name", "").strip(), description=form.get("description", "").strip() or None,
                          nodes=refs(form.get("nodes", "")), devices=refs(form.get("devices", "")))
        api.create_pool(cluster, body, principal, db, state, request)
    except (ValidationError, DomainError) as exc:
        return refused(request, db, cluster, exc, form, "create")
    return redirect(pools_url(cluster), notice=f"Pool {body.name} created.", request=request)


@router.post("/ui/clusters/{cluster}/pools/{pool}/rename")
def rename_pool(request: Request, principal: Admin, db: DB, form: Form, cluster: str, pool: str) -> Response:
    name = form.get("name", "").strip()
    try:
        body = PoolUpdate(name=name or None, description=form.get("description", "").strip() or None)
        api.update_pool(cluster, pool, body, principal, db, request)
    except (ValidationError, DomainError) as exc:
        return refused(request, db, cluster, exc, form, f"rename:{pool}")
    return redirect(pools_url(cluster), notice=f"Pool {pool} is now {name or pool}.", request=request)


@router.post("/ui/clusters/{cluster}/pools/{pool}/assign")
def assign(request: Request, principal: Admin, db: DB, state: State, form: Form, cluster: str, pool: str) -> Response:
    """Move whole nodes and single devices into the pool, all or nothing."""
    try:
        body = PoolAssign(nodes=refs(form.get("nodes", "")), devices=refs(form.get("devices", "")))
        if not body.nodes and not body.devices:
            raise invalid("devices", "name at least one node or device to move")
        api.assign_devices(cluster, pool, body, principal, db, state, request)
    except (ValidationError, DomainError) as exc:
        return refused(request, db, cluster, exc, form, f"assign:{pool}", conflict_field="devices")
    return redirect(pools_url(cluster), notice=f"Moved into pool {pool}.", request=request)


@router.post("/ui/clusters/{cluster}/pools/{pool}/delete")
def delete_pool(request: Request, principal: Admin, db: DB, state: State, cluster: str, pool: str) -> Response:
    """Refused while jobs run on its devices (and in the other cases the service names): said beside the pool."""
    try:
        api.delete_pool(cluster, pool, principal, db, state, request)
    except DomainError as exc:
        if exc.status != 409:
            raise
        db.rollback()
        return pools_page(request, db, cluster, 409, refusal={"pool": pool, "detail": exc.detail})
    return redirect(pools_url(cluster), notice=f"Pool {pool} deleted; its devices are back in the default pool.",
                    request=request)
