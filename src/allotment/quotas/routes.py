"""Quotas API: the quota tree of a cluster, scale, bindings. Changes need the cluster admin role on the quota's
cluster (platform admins always may); any signed-in principal may read quotas."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy.orm import Session

from allotment.access import service as access_rules
from allotment.api.deps import DB, State, client_address, cluster_scope, require
from allotment.audit import service as audit
from allotment.core.permissions import AUTHENTICATED, QUOTA_ADMIN, Principal, Scope, cluster
from allotment.identity.service import find_user
from allotment.inventory.service import find_cluster, find_cluster_id
from allotment.quotas import bindings, service
from allotment.quotas.models import Quota
from allotment.quotas.schemas import BindingOut, QuotaCreate, QuotaList, QuotaOut, QuotaUpdate, ScaleIn
from allotment.quotas.views import QuotaViews, quota_out
from allotment.workspaces import service as workspaces

router = APIRouter(tags=["quotas"])
ADMIN = cluster("admin")
# Creating, renaming and deleting quotas: QUOTA_ADMIN (cluster admins and the built-in queue-admins group).

# The quotas API is split by subject; each module exposes `router`.
SUBMODULES = ["routes_profiles", "routes_priorities", "routes_config"]


def quota_scope(param: str = "quota"):
    """Scope of /quotas/{quota}/... routes: the quota's cluster."""

    def resolve(request: Request, session: Session) -> Scope:
        return Scope(cluster_id=service.find_quota(session, request.path_params[param]).cluster_id)

    resolve.kind, resolve.param = "quota", param  # type: ignore[attr-defined] - like api.deps' resolvers
    return resolve


def _snapshot(db: Session, quota: Quota) -> dict:
    return quota_out(db, quota).model_dump(exclude={"id", "children", "bindings", "can_submit", "usable_pools"})


def _input(body: QuotaCreate | QuotaUpdate) -> service.QuotaInput:
    sent = body.model_fields_set
    resources = changes = None
    if isinstance(body, QuotaCreate):
        resources = [service.ResourceInput(**r.model_dump()) for r in body.resources]
    elif body.resources is not None:
        changes = [service.ResourceChange(**r.model_dump(), provided=set(r.model_fields_set)) for r in body.resources]
    return service.QuotaInput(
        name=body.name, parent=body.parent, clear_parent="parent" in sent and body.parent is None,
        description=body.description, weight=body.weight, child_preemption=body.child_preemption,
        reclaim=body.reclaim, within_quota_preemption=body.within_quota_preemption,
        min_runtime_s=body.min_runtime_s, allowed_priority_classes=body.allowed_priority_classes,
        clear_allowed_priority_classes="allowed_priority_classes" in sent and body.allowed_priority_classes is None,
        resources=resources, resource_changes=changes, pools=body.pools,
        provided=set(sent),
    )


@router.get("/quotas", response_model=QuotaList)
def list_quotas(principal: Annotated[Principal, require(AUTHENTICATED)], db: DB,
                cluster_name: str | None = Query(None, alias="cluster"),
                submittable: bool = Query(False, description="only quotas I may submit to")) -> QuotaList:
    cluster_id = find_cluster_id(db, cluster_name) if cluster_name else None
    quotas = service.list_quotas(db, cluster_id)
    readable = access_rules.readable_quotas(db, principal, [(q.id, q.cluster_id) for q in quotas])
    quotas = [q for q in quotas if q.id in readable]  # the access rules on quotas (ClearML's queues)
    views = QuotaViews(db, quotas, principal)
    items = [views.out(q) for q in quotas]
    if submittable:
        items = [i for i in items if i.can_submit]
    return QuotaList(items=items, total=len(items))


@router.post("/clusters/{cluster}/quotas", response_model=QuotaOut, status_code=201)
def create_quota(cluster: str, body: QuotaCreate,
                 principal: Annotated[Principal, require(QUOTA_ADMIN, scope=cluster_scope())], db: DB, state: State,
                 request: Request) -> QuotaOut:
    quota = service.create_quota(db, find_cluster(db, cluster).id, _input(body))
    audit.record(db, principal, "quota.create", "quota", quota.name, quota.id,
                 changes={"after": _snapshot(db, quota)}, source=client_address(request))
    state.scheduler_wakeup.set()
    return quota_out(db, quota, detailed=True)


@router.post("/clusters/{cluster}/quotas/scale", response_model=QuotaList)
def scale_quotas(cluster: str, body: ScaleIn,
                 principal: Annotated[Principal, require(QUOTA_ADMIN, scope=cluster_scope())],
                 db: DB, state: State, request: Request) -> QuotaList:
    """Change several quotas' sizes in one atomic step (PAI: Quota1.1 48 -> 56 and Quota1.2 80 -> 72)."""
    cluster_id = find_cluster_id(db, cluster)
    names = {c.quota for c in body.changes}
    before = {q.name: _snapshot(db, q)["resources"] for q in service.list_quotas(db, cluster_id) if q.name in names}
    changed = service.scale_quotas(db, cluster_id, [service.ScaleChange(**c.model_dump()) for c in body.changes])
    views = QuotaViews(db, changed)
    items = [views.out(q) for q in changed]
    audit.record(db, principal, "quota.scale", "quota", ", ".join(q.name for q in changed), None,
                 changes={"before": before, "after": {i.name: [r.model_dump() for r in i.resources] for i in items}},
                 source=client_address(request))
    state.scheduler_wakeup.set()
    return QuotaList(items=items, total=len(items))


@router.get("/quotas/{quota}", response_model=QuotaOut)
def get_quota(quota: str, principal: Annotated[Principal, require(AUTHENTICATED)], db: DB) -> QuotaOut:
    found = service.find_quota(db, quota)
    access_rules.check(db, principal, access_rules.resource(db, "quota", found.id, None), "read",
                       f"quota {found.name}", cluster_id=found.cluster_id)
    return quota_out(db, found, detailed=True, principal=principal)


@router.patch("/quotas/{quota}", response_model=QuotaOut)
def update_quota(quota: str, body: QuotaUpdate,
                 principal: Annotated[Principal, require(QUOTA_ADMIN, scope=quota_scope())],
                 db: DB, state: State, request: Request) -> QuotaOut:
    found = service.find_quota(db, quota)
    before = _snapshot(db, found)
    service.update_quota(db, found, _input(body))
    audit.record(db, principal, "quota.update", "quota", found.name, found.id,
                 changes=audit.diff(before, _snapshot(db, found)), source=client_address(request))
    state.scheduler_wakeup.set()
    return quota_out(db, found, detailed=True)


@router.delete("/quotas/{quota}", status_code=204)
def delete_quota(quota: str, principal: Annotated[Principal, require(QUOTA_ADMIN, scope=quota_scope())], db: DB,
                 state: State, request: Request) -> Response:
    found = service.find_quota(db, quota)
    before = _snapshot(db, found)
    service.delete_quota(db, found)
    audit.record(db, principal, "quota.delete", "quota", found.name, found.id, changes={"before": before},
                 source=client_address(request))
    state.scheduler_wakeup.set()
    return Response(status_code=204)


@router.get("/quotas/{quota}/bindings", response_model=list[BindingOut], dependencies=[require(AUTHENTICATED)])
def list_bindings(quota: str, db: DB) -> list[BindingOut]:
    return [BindingOut(**b) for b in bindings.list_bindings(db, service.find_quota(db, quota).id)]


def _bind(db: Session, principal: Principal, request: Request, quota: str, kind: str, ref: str, add: bool) -> None:
    found = service.find_quota(db, quota)
    user = find_user(db, ref) if kind == "user" else None
    group = bindings.find_group(db, ref) if kind == "group" else None
    # A workspace is found in the quota's cluster: one of another cluster cannot be bound.
    workspace = workspaces.find_workspace(db, found.cluster_id, ref) if kind == "workspace" else None
    if add:
        bindings.bind(db, found, user=user, group=group, workspace=workspace)
    else:
        bindings.unbind(db, found, user=user, group=group, workspace=workspace)
    name = user.username if user else group.name if group else workspace.name
    audit.record(db, principal, "quota.bind" if add else "quota.unbind", "quota", found.name, found.id,
                 changes={"after" if add else "before": {kind: name}}, source=client_address(request))


@router.put("/quotas/{quota}/bindings/users/{user}", status_code=204)
def bind_user(quota: str, user: str, principal: Annotated[Principal, require(ADMIN, scope=quota_scope())], db: DB,
              request: Request) -> Response:
    _bind(db, principal, request, quota, "user", user, True)
    return Response(status_code=204)


@router.delete("/quotas/{quota}/bindings/users/{user}", status_code=204)
def unbind_user(quota: str, user: str, principal: Annotated[Principal, require(ADMIN, scope=quota_scope())], db: DB,
                request: Request) -> Response:
    _bind(db, principal, request, quota, "user", user, False)
    return Response(status_code=204)


@router.put("/quotas/{quota}/bindings/groups/{group}", status_code=204)
def bind_group(quota: str, group: str, principal: Annotated[Principal, require(ADMIN, scope=quota_scope())], db: DB,
               request: Request) -> Response:
    _bind(db, principal, request, quota, "group", group, True)
    return Response(status_code=204)


@router.delete("/quotas/{quota}/bindings/groups/{group}", status_code=204)
def unbind_group(quota: str, group: str, principal: Annotated[Principal, require(ADMIN, scope=quota_scope())],
                 db: DB, request: Request) -> Response:
    _bind(db, principal, request, quota, "group", group, False)
    return Response(status_code=204)


@router.put("/quotas/{quota}/bindings/workspaces/{workspace}", status_code=204)
def bind_workspace(quota: str, workspace: str, principal: Annotated[Principal, require(ADMIN, scope=quota_scope())],
                   db: DB, request: Request) -> Response:
    """PAI: the workspace's members may submit to the quota."""
    _bind(db, principal, request, quota, "workspace", workspace, True)
    return Response(status_code=204)


@router.delete("/quotas/{quota}/bindings/workspaces/{workspace}", status_code=204)
def unbind_workspace(quota: str, workspace: str,
                     principal: Annotated[Principal, require(ADMIN, scope=quota_scope())], db: DB,
                     request: Request) -> Response:
    _bind(db, principal, request, quota, "workspace", workspace, False)
    return Response(status_code=204)


def _include_submodules() -> None:
    import importlib
    import importlib.util

    for name in SUBMODULES:
        module = f"allotment.quotas.{name}"
        if importlib.util.find_spec(module) is not None:
            router.include_router(importlib.import_module(module).router)


_include_submodules()
