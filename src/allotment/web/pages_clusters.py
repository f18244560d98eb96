"""Clusters with their pools (Neu.ro's get-clusters, DKube's pools screen) and, per cluster, nodes and devices with
health and utilisation (DKube's Nodes and Devices screens). Reads go through inventory's services."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import Response

from allotment.api.deps import DB, cluster_scope, require
from allotment.core.permissions import AUTHENTICATED, Principal, cluster
from allotment.core.quantity import format_raw
from allotment.inventory import nodes, pools
from allotment.inventory import service as inventory
from allotment.web.console import render

router = APIRouter()


def role_on(principal: Principal, cluster_id: int) -> str | None:
    role = principal.cluster_roles.get(cluster_id)
    return role or ("platform admin" if principal.is_platform_admin else None)


def clusters_for(db, principal: Principal) -> list[dict]:
    """The clusters the principal may use (all for platform admins) as inventory summarises them, with the role."""
    visible = inventory.visible_clusters(db, None if principal.is_platform_admin else set(principal.cluster_roles))
    return [{**inventory.cluster_summary(db, c), "role": role_on(principal, c.id)} for c in visible]


@router.get("/ui/clusters")
def clusters_page(request: Request, principal: Annotated[Principal, require(AUTHENTICATED)], db: DB) -> Response:
    return render(request, "clusters.html", {"clusters": clusters_for(db, principal)})


@router.get("/ui/clusters/{cluster}")
def cluster_page(request: Request, principal: Annotated[Principal, require(cluster("user"), cluster_scope())],
                 db: DB, cluster: str) -> Response:
    found = inventory.find_cluster(db, cluster)
    busy = pools.busy_devices(db, found.id)
    node_rows = [{
        "node": node,
        "cpu": format_raw(node.cpu_milli, "cpu"),
        "memory": format_raw(node.memory_bytes, "memory"),
        "devices": [{"device": d, "memory": format_raw(d.memory_bytes, "memory"), "job_id": busy.get(d.id)}
                    for d in devices],
    } for node, devices in nodes.list_nodes(db, found.id)]
    pool_names = {p.id: p.name for p in pools.list_pools(db, found.id)}
    return render(request, "cluster.html", {"cluster": inventory.cluster_summary(db, found), "nodes": node_rows,
                                            "pool_names": pool_names, "role": role_on(principal, found.id)})
