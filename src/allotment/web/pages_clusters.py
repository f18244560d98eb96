"""Clusters with their node-pool table (Neu.ro's get-clusters, DKube's pools screen) and, per cluster, nodes and
devices with health and utilisation (DKube's Nodes and Devices screens), where a cluster admin sets each pool's
machine type, preemptible, min and max nodes. Reads and changes go through inventory's services."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from allotment.api.deps import DB, client_address, cluster_scope, require
from allotment.audit import service as audit
from allotment.core.names import is_digits
from allotment.core.permissions import AUTHENTICATED, Principal, Scope, allowed, cluster
from allotment.errors import FieldError, ValidationFailed
from allotment.inventory import pools
from allotment.inventory import service as inventory
from allotment.web.console import redirect, render, url_segment
from allotment.web.pages_cluster_pools import nodes_context

router = APIRouter()
SIMULATE = cluster("manager")  # the simulation pages' permission: whether the cluster page offers the action


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
    can_configure = principal.is_platform_admin or principal.cluster_roles.get(found.id) == "admin"
    # Nodes as one summary row each, filtered by the query string; a node's devices load on demand.
    nodes_shown = nodes_context(db, found.id, request.query_params)
    return render(request, "cluster.html", {"cluster": inventory.cluster_summary(db, found), **nodes_shown,
                                            "role": role_on(principal, found.id),
                                            "can_configure": can_configure,
                                            "can_simulate": allowed(principal, SIMULATE, Scope(cluster_id=found.id))})


def node_bound(field: str, text: str) -> int | None:
    """A min or max nodes box: empty clears the bound."""
    text = text.strip()
    if not text:
        return None
    if not is_digits(text) or len(text) > 9:
        raise ValidationFailed(f"{field}: must be a whole number, zero or more",
                               [FieldError(field, "must be a whole number, zero or more")])
    return int(text)


@router.post("/ui/clusters/{cluster}/pools/{pool}")
def set_pool_attributes(request: Request, principal: Annotated[Principal, require(cluster("admin"), cluster_scope())],
                        db: DB, cluster: str, pool: str, machine_type: Annotated[str, Form()] = "",
                        preemptible: Annotated[str, Form()] = "", min_nodes: Annotated[str, Form()] = "",
                        max_nodes: Annotated[str, Form()] = "") -> Response:
    """The node-pool attributes of one pool, as `allot pools update` sets them."""
    found = pools.find_pool(db, inventory.find_cluster_id(db, cluster), pool)
    changes = {"machine_type": machine_type.strip() or None, "preemptible": bool(preemptible),
               "min_nodes": node_bound("min_nodes", min_nodes), "max_nodes": node_bound("max_nodes", max_nodes)}
    if found.is_default:  # its form has no bounds: the default pool takes none
        changes = {k: v for k, v in changes.items() if k not in ("min_nodes", "max_nodes")}
    before = pools.set_pool_attributes(db, found, changes)
    after = pools.pool_attributes(found)
    if after != before:
        audit.record(db, principal, "pool.update", "pool", f"{cluster}/{found.name}", found.id,
                     changes=audit.diff(before, after), source=client_address(request))
    return redirect(f"/ui/clusters/{url_segment(cluster)}", request=request,
                    notice=f"Pool {found.name} updated." if after != before else f"Pool {found.name} unchanged.")
