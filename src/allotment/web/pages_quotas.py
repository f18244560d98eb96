"""Quotas (PAI's quota tree, Kueue's cluster queues): per cluster, the tree with, for every pool where a quota or its
children hold anything, a bar of in use against guarantee and limit; a warning when top-level guarantees exceed what
the pools hold. Cluster admins create, edit and delete quotas and scale several siblings at once (PAI's Scale
dialog, validated as a whole). Any signed-in principal may read quotas, as in the API.

Changes are the API's own route functions, called with a request body built from the form: the same validation,
service, audit record and scheduler wake-up, and the same authorisation decision declared on each page.
"""

from __future__ import annotations

import re
import time
from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError

from allotment.access import service as access_rules
from allotment.accounting import budgets
from allotment.api.deps import DB, State, cluster_scope, require
from allotment.core.permissions import AUTHENTICATED, QUOTA_ADMIN, Principal, Scope, allowed
from allotment.core.quantity import Quantity, format_raw
from allotment.core.quota_tree import validate_tree
from allotment.core.resources import ANY_POOL, ResourceKey
from allotment.errors import DomainError, FieldError
from allotment.inventory import service as inventory
from allotment.quotas import routes as quota_api
from allotment.quotas import service as quotas
from allotment.quotas.models import RECLAIM_VALUES, RESOURCE_NAMES, WITHIN_QUOTA_VALUES
from allotment.quotas.schemas import QuotaCreate, QuotaUpdate, ScaleIn
from allotment.quotas.tree import quota_specs
from allotment.quotas.views import QuotaViews
from allotment.web.console import redirect, render
from allotment.web.form_rows import by_field, kept, model_errors, number, remap, rows_of
from allotment.web.pages_cluster_settings import Form

router = APIRouter()
# Cluster admins and the built-in queue-admins group create, change and delete quotas.
ClusterAdmin = Annotated[Principal, require(QUOTA_ADMIN, cluster_scope())]
QuotaAdmin = Annotated[Principal, require(QUOTA_ADMIN, scope=quota_api.quota_scope())]
ENTRY_FIELDS = ("pool", "resource", "guarantee", "limit")
BLANK_ENTRIES = 2  # empty entry rows offered below a quota's own
RESOURCE_ORDER = {name: i for i, name in enumerate(RESOURCE_NAMES)}


def tree_order(items: list) -> list[tuple[int, object]]:
    """(depth, quota) pairs, parents before their children, siblings by name."""
    kids: dict[int | None, list] = {}
    for q in items:
        kids.setdefault(q.parent_id, []).append(q)
    ids = {q.id for q in items}
    out: list[tuple[int, object]] = []

    def walk(quota, depth: int) -> None:
        out.append((depth, quota))
        for child in sorted(kids.get(quota.id, []), key=lambda q: q.name):
            walk(child, depth + 1)

    for root in sorted((q for q in items if q.parent_id not in ids), key=lambda q: q.name):
        walk(root, 0)
    return out


def capacities(db, cluster_id: int) -> dict[tuple[str, str], int]:
    """What each pool holds, raw: (pool, resource) and (*, resource) for the whole cluster."""
    out: dict[tuple[str, str], int] = {}
    for cap in inventory.pool_capacities(db, cluster_id):
        amounts = {"gpu": cap.devices * 1000, "cpu": cap.cpu_milli, "memory": cap.memory_bytes}
        for resource, amount in amounts.items():
            if amount is not None:
                out[(cap.name, resource)] = amount
                out[(ANY_POOL, resource)] = out.get((ANY_POOL, resource), 0) + amount
    return out


def capacity_warnings(db, cluster_id: int, capacity: dict[tuple[str, str], int]) -> list[str]:
    """Core's finding that top-level quotas guarantee more than a pool holds (a warning here: pools may grow)."""
    held = {ResourceKey(*k): Quantity(v) for k, v in capacity.items()}
    return [e.message for e in validate_tree(quota_specs(db, cluster_id), held)
            if e.code == "guarantees_exceed_capacity"]


def bars(views: QuotaViews, quota, capacity: dict[tuple[str, str], int]) -> list[dict]:
    """One bar per (pool, resource) where the quota has an entry or its subtree holds something."""
    entries = {(r.pool_id, r.resource): r for r in views.resources.get(quota.id, [])}
    use = views.usage.get(quota.id, {})
    keys = set(entries) | {k for k, amount in use.items() if k[0] is not None and amount}
    any_pool = {resource for pool_id, resource in entries if pool_id is None}
    out = []
    for pool_id, resource in keys:
        pool = ANY_POOL if pool_id is None else views.pools.get(pool_id, str(pool_id))
        entry = entries.get((pool_id, resource))
        in_use = use.get((pool_id, resource), 0)
        guarantee = entry.guarantee if entry else None
        limit = entry.limit if entry else None
        held = capacity.get((pool, resource))
        top = limit if limit is not None else max(guarantee or 0, in_use, held or 0, 1)
        out.append({
            "pool": pool, "resource": resource, "entry": entry is not None,
            "in_use": format_raw(in_use, resource),
            "guarantee": format_raw(guarantee, resource) if guarantee is not None else None,
            "limit": ("unlimited" if limit is None else format_raw(limit, resource)) if entry else None,
            "covered": resource in any_pool,
            "meter": {"value": min(in_use, top), "max": max(top, 1), "high": guarantee or None},
            "over_guarantee": guarantee is not None and in_use > guarantee,
        })
    return sorted(out, key=lambda b: (b["pool"] != ANY_POOL, b["pool"], RESOURCE_ORDER.get(b["resource"], 9)))


def scale_groups(views: QuotaViews, items: list) -> list[dict]:
    """The siblings under each parent (roots together), with every entry they can scale, numbered for the form."""
    by_parent: dict[int | None, list] = {}
    for q in items:
        by_parent.setdefault(q.parent_id, []).append(q)
    groups = []
    for parent_id, siblings in by_parent.items():
        rows = []
        for q in sorted(siblings, key=lambda q: q.name):
            for r in sorted(views.resources.get(q.id, []), key=lambda r: (r.pool_id or 0, r.resource)):
                pool = ANY_POOL if r.pool_id is None else views.pools.get(r.pool_id, str(r.pool_id))
                rows.append({"index": len(rows), "quota": q.name, "pool": pool, "resource": r.resource,
                             "guarantee": format_raw(r.guarantee, r.resource),
                             "limit": "unlimited" if r.limit is None else format_raw(r.limit, r.resource)})
        if rows:
            parent = views.names.get(parent_id) if parent_id is not None else None
            groups.append({"key": parent or "", "parent": parent, "rows": rows})
    return sorted(groups, key=lambda g: (g["parent"] is not None, g["parent"] or ""))


def cluster_view(db, principal: Principal, found, now: float) -> dict:
    items = quotas.list_quotas(db, found.id)
    readable = access_rules.readable_quotas(db, principal, [(q.id, q.cluster_id) for q in items])
    items = [q for q in items if q.id in readable]  # the access rules on quotas
    views = QuotaViews(db, items, principal)
    capacity = capacities(db, found.id)
    rows = [{"depth": depth, "quota": views.out(q), "bars": bars(views, q, capacity),
             "budgets": budgets.quota_budgets(db, q, now)} for depth, q in tree_order(items)]
    return {"cluster": found, "rows": rows, "warnings": capacity_warnings(db, found.id, capacity),
            "can_manage": allowed(principal, QUOTA_ADMIN, Scope(cluster_id=found.id)),
            "pools": [p.name for p in inventory.pool_capacities(db, found.id)],
            "scale_groups": scale_groups(views, items)}


def quotas_page_response(request: Request, principal: Principal, db, status: int = 200, **state) -> Response:
    """The quota page; `state` reopens a form that failed (create or scale) with its input and errors."""
    visible = inventory.visible_clusters(db, None if principal.is_platform_admin else set(principal.cluster_roles))
    now = time.time()
    clusters = [cluster_view(db, principal, c, now) for c in visible]
    return render(request, "quotas.html", {"clusters": clusters, "resources": RESOURCE_NAMES,
                                           "blank_entries": range(BLANK_ENTRIES + 1), **state}, status=status)


@router.get("/ui/quotas")
def quotas_page(request: Request, principal: Annotated[Principal, require(AUTHENTICATED)], db: DB) -> Response:
    return quotas_page_response(request, principal, db)


def entries_from(form: dict[str, str]) -> tuple[list[dict], list[int]]:
    """The resource entries a form lists; a row with neither guarantee nor limit is left out (removed)."""
    rows, index = kept(rows_of(form, "resources", ENTRY_FIELDS), lambda r: bool(r.get("guarantee") or r.get("limit")))
    return [{"resource": r.get("resource", ""), "pool": r.get("pool") or ANY_POOL,
             "guarantee": r.get("guarantee") or "0", "limit": r.get("limit") or None} for r in rows], index


NUMBERS = {"weight": float, "min_runtime_s": int}


def quota_fields(form: dict[str, str]) -> dict:
    """The quota's own fields as the API's body takes them; blank numbers and choices are left to the model's
    defaults (on a change: left as they are)."""
    body: dict = {"name": form.get("name", "").strip(), "description": form.get("description", "").strip() or None,
                  "parent": form.get("parent", "").strip() or None}
    for key in ("weight", "min_runtime_s", "reclaim", "within_quota_preemption"):
        if form.get(key, "").strip():
            body[key] = number(form[key].strip(), NUMBERS[key]) if key in NUMBERS else form[key].strip()
    body["child_preemption"] = bool(form.get("child_preemption"))
    # Lists are comma-separated; an empty pool list is every pool, an empty class list every class.
    body["pools"] = names(form.get("pools", ""))
    body["allowed_priority_classes"] = names(form.get("allowed_priority_classes", "")) or None
    return body


def names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


@router.post("/ui/clusters/{cluster}/quotas")
def create_quota(request: Request, principal: ClusterAdmin, db: DB, state: State, form: Form,
                 cluster: str) -> Response:
    entries, index = entries_from(form)
    try:
        body = QuotaCreate(**quota_fields(form), resources=entries)
        quota_api.create_quota(cluster, body, principal, db, state, request)
    except (ValidationError, DomainError) as exc:
        errors = model_errors(exc) if isinstance(exc, ValidationError) else exc.errors
        if isinstance(exc, DomainError) and not errors:
            raise
        db.rollback()
        return quotas_page_response(request, principal, db, 422 if isinstance(exc, ValidationError) else exc.status,
                                    create={"cluster": cluster, "form": form,
                                            "errors": by_field(remap(errors, "resources", index))})
    return redirect("/ui/quotas", notice=f"Quota {body.name} created.", request=request)


@router.post("/ui/clusters/{cluster}/quotas/scale")
def scale_quotas(request: Request, principal: ClusterAdmin, db: DB, state: State, form: Form,
                 cluster: str) -> Response:
    """PAI's Scale dialog: the rows whose guarantee or limit changed are scaled together, or none is."""
    fields = ("quota", "pool", "resource", "guarantee", "limit", "was_guarantee", "was_limit")
    rows, index = kept(rows_of(form, "changes", fields),
                       lambda r: r.get("guarantee") != r.get("was_guarantee") or r.get("limit") != r.get("was_limit"))
    changes = [{"quota": r.get("quota", ""), "pool": r.get("pool") or None, "resource": r.get("resource") or "gpu",
                "guarantee": r.get("guarantee", ""),
                "limit": (r.get("limit") or "unlimited") if r.get("limit") != r.get("was_limit") else None}
               for r in rows]
    try:
        body = ScaleIn(changes=changes)
        quota_api.scale_quotas(cluster, body, principal, db, state, request)
    except (ValidationError, DomainError) as exc:
        errors = model_errors(exc) if isinstance(exc, ValidationError) else exc.errors
        if isinstance(exc, DomainError) and not errors:
            raise
        db.rollback()
        return quotas_page_response(request, principal, db, 422 if isinstance(exc, ValidationError) else exc.status,
                                    scale={"cluster": cluster, "group": form.get("group", ""), "form": form,
                                           "errors": by_field(beside_rows(remap(errors, "changes", index), rows,
                                                                          index))})
    names = ", ".join(sorted({c["quota"] for c in changes}))
    return redirect("/ui/quotas", notice=f"Scaled {names}.", request=request)


def beside_rows(errors: list, rows: list[dict[str, str]], index: list[int]) -> list:
    """The tree's findings about a scale (field `resources`) put beside the inputs they are about: a finding that
    names a changed quota goes under that row's guarantee (or limit, when it is about limits and the limit changed);
    one about the siblings as a whole (their sum against the parent) goes under every changed guarantee."""
    out = []
    for error in errors:
        if error.field != "resources":
            out.append(error)
            continue
        named = [(i, r) for i, r in zip(index, rows, strict=True)
                 if re.search(rf"\bquota {re.escape(r.get('quota', ''))}\b", error.message)
                 and not error.message.startswith("children of")]
        for i, row in named or list(zip(index, rows, strict=True)):
            limit = "limit" in error.message and row.get("limit") != row.get("was_limit")
            out.append(FieldError(f"changes.{i}.{'limit' if limit else 'guarantee'}", error.message))
    return out


def entry_rows(out) -> list[dict]:
    """A quota's entries as the edit form shows them, then blank rows to add more."""
    rows = [{"pool": r.pool, "resource": r.resource, "guarantee": r.guarantee, "limit": r.limit}
            for r in out.resources]
    return rows + [{"pool": ANY_POOL, "resource": "gpu", "guarantee": "", "limit": ""}] * BLANK_ENTRIES


def edit_values(out) -> dict[str, str]:
    values = {"name": out.name, "parent": out.parent or "", "description": out.description or "",
              "weight": f"{out.weight:g}", "min_runtime_s": str(out.min_runtime_s), "reclaim": out.reclaim,
              "within_quota_preemption": out.within_quota_preemption,
              "child_preemption": "on" if out.child_preemption else "", "pools": ", ".join(out.pools),
              "allowed_priority_classes": ", ".join(out.allowed_priority_classes or [])}
    for i, row in enumerate(entry_rows(out)):
        values.update({f"resources.{i}.{k}": v for k, v in row.items()})
    return values


def edit_page(request: Request, db, found, values: dict[str, str] | None = None, errors: dict | None = None,
              status: int = 200, refusal: str | None = None) -> Response:
    out = QuotaViews(db, [found]).out(found)
    others = [q.name for q in quotas.list_quotas(db, found.cluster_id) if q.id != found.id]
    rows = len([k for k in (values or {}) if k.startswith("resources.") and k.endswith(".resource")])
    return render(request, "quota_edit.html", {
        "quota": out, "values": values or edit_values(out), "errors": errors or {}, "parents": others,
        "pools": [p.name for p in inventory.pool_capacities(db, found.cluster_id)], "resources": RESOURCE_NAMES,
        "entry_count": range(max(rows, len(out.resources) + BLANK_ENTRIES)), "refusal": refusal,
        "reclaim_values": RECLAIM_VALUES, "within_values": WITHIN_QUOTA_VALUES}, status=status)


@router.get("/ui/quotas/{quota}")
def quota_page(request: Request, principal: QuotaAdmin, db: DB, quota: str) -> Response:
    return edit_page(request, db, quotas.find_quota(db, quota))


@router.post("/ui/quotas/{quota}")
def update_quota(request: Request, principal: QuotaAdmin, db: DB, state: State, form: Form, quota: str) -> Response:
    """The whole quota as the form shows it: scalars, parent (blank = a root) and its entries, which replace the
    stored ones (a row emptied is an entry removed)."""
    found = quotas.find_quota(db, quota)
    entries, index = entries_from(form)
    fields = quota_fields(form)
    try:
        current = {(r.pool, r.resource) for r in QuotaViews(db, [found]).out(found).resources}
        wanted = {(e["pool"], e["resource"]) for e in entries}
        patches = [{**e, "limit": e["limit"] or "unlimited"} for e in entries]
        patches += [{"resource": res, "pool": pool, "remove": True} for pool, res in sorted(current - wanted)]
        body = QuotaUpdate(**fields, resources=patches)
        quota_api.update_quota(found.name, body, principal, db, state, request)
    except (ValidationError, DomainError) as exc:
        errors = model_errors(exc) if isinstance(exc, ValidationError) else exc.errors
        if isinstance(exc, DomainError) and not errors:
            raise
        db.rollback()
        return edit_page(request, db, quotas.find_quota(db, quota), dict(form),
                         by_field(remap(errors, "resources", index)),
                         422 if isinstance(exc, ValidationError) else exc.status)
    return redirect("/ui/quotas", notice=f"Quota {fields['name']} saved.", request=request)


@router.post("/ui/quotas/{quota}/delete")
def delete_quota(request: Request, principal: QuotaAdmin, db: DB, state: State, quota: str) -> Response:
    """Refused while it has children or active jobs: the refusal is shown on its page, in the service's words."""
    found = quotas.find_quota(db, quota)
    try:
        quota_api.delete_quota(found.name, principal, db, state, request)
    except DomainError as exc:
        if exc.status != 409:
            raise
        db.rollback()
        return edit_page(request, db, quotas.find_quota(db, quota), status=409, refusal=exc.detail)
    return redirect("/ui/quotas", notice=f"Quota {found.name} deleted.", request=request)



def _include_workflow_pages() -> None:
    """The configuration, profile, priority class and pool pages are mounted with the quota pages they belong with."""
    import importlib

    for name in WORKFLOW_PAGES:
        router.include_router(importlib.import_module(f"allotment.web.{name}").router)


WORKFLOW_PAGES = ["pages_config", "pages_profiles", "pages_priorities", "pages_cluster_pools"]
_include_workflow_pages()
