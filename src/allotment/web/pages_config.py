"""A cluster's resource configuration (ClearML's Settings): pool cards (GPUs in use of the pool's total and the
execution priority of the profiles linked to it, reorderable), profile cards (allotment, pool links in order, queued
and running jobs, the policies in order, reorderable), the resource management switch, and the draft editor with
Save, Provision and Reset showing what the draft changes against what is provisioned.

The draft is edited as YAML, the format `allot config` reads and writes. Every action is the API's route function
(quotas/routes_config.py, routes_profiles.py) called with the body the API would get: the same checks, audit and
authorisation (cluster admins), and each error is shown next to the editor or control it is about.
"""

from __future__ import annotations

import difflib
from typing import Annotated

import yaml
from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy import select

from allotment.api.deps import DB, State, cluster_scope, require
from allotment.core.permissions import Principal, cluster
from allotment.errors import DomainError, FieldError, ValidationFailed
from allotment.inventory import service as inventory
from allotment.inventory.models import Device, Node
from allotment.inventory.pools import busy_devices, find_pool
from allotment.quotas import config, routes_config, routes_profiles
from allotment.quotas import profiles as profile_service
from allotment.quotas.schemas import ConfigDocument, NameOrder, SwitchIn
from allotment.web.console import redirect, render, url_segment
from allotment.web.form_rows import by_field, model_errors
from allotment.web.pages_cluster_settings import Form

router = APIRouter()
ClusterAdmin = Annotated[Principal, require(cluster("admin"), cluster_scope())]
DRAFT_FIELD = "draft"  # the editor's textarea: errors about the document are listed under it


def as_yaml(document: dict) -> str:
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, default_flow_style=False)


def draft_diff(provisioned: dict, draft: dict) -> list[dict]:
    """What the draft changes against what is provisioned, line by line (a unified diff of the two YAML texts)."""
    lines = difflib.unified_diff(as_yaml(provisioned).splitlines(), as_yaml(draft).splitlines(),
                                 "provisioned", "draft", n=2, lineterm="")
    out = []
    for line in lines:
        if line.startswith(("---", "+++")):
            continue
        kind = "hunk" if line.startswith("@@") else {"+": "added", "-": "removed"}.get(line[:1], "same")
        out.append({"kind": kind, "text": line})
    return out


def pool_cards(db, cluster_id: int) -> list[dict]:
    """Each pool: GPUs held by jobs of its total, and its linked profiles in execution order."""
    busy = set(busy_devices(db, cluster_id))
    used: dict[int, int] = {}
    for device_id, pool_id in db.execute(select(Device.id, Device.pool_id).join(Node, Node.id == Device.node_id)
                                         .where(Node.cluster_id == cluster_id)):
        used[pool_id] = used.get(pool_id, 0) + (device_id in busy)
    cards = []
    for cap in inventory.pool_capacities(db, cluster_id):
        total = cap.devices
        cards.append({"name": cap.name, "model": cap.device_model, "used": used.get(cap.pool_id, 0), "total": total,
                      "profiles": profile_service.pool_profile_order(db, cap.pool_id)})
    return cards


def page(request: Request, db, found, status: int = 200, draft_text: str | None = None,
         errors: dict | None = None, refusal: str | None = None) -> Response:
    state = config.status(db, found)
    # The editor starts from the draft, or from what is provisioned when there is none (config.get_draft's rule).
    shown = state["draft"] if state["has_draft"] else state["provisioned"]
    document = {k: shown.get(k, [] if k != "pool_profile_order" else {}) for k in
                ("quotas", "profiles", "pool_profile_order")}
    profiles = [routes_profiles.profile_out(db, p, found.name)
                for p in profile_service.list_profiles(db, found.id)]
    return render(request, "resource_config.html", {
        "cluster": found, "state": state, "pools": pool_cards(db, found.id), "profiles": profiles,
        "draft_text": draft_text if draft_text is not None else as_yaml(document),
        "diff": draft_diff(state["provisioned"], state["draft"]) if state["has_draft"] else [],
        "stale": state["draft_stale"], "errors": errors or {}, "refusal": refusal,
    }, status=status)


def back(found, notice: str, request: Request) -> Response:
    return redirect(f"/ui/clusters/{url_segment(found.name)}/configuration", notice=notice, request=request)


@router.get("/ui/clusters/{cluster}/configuration")
def configuration_page(request: Request, principal: ClusterAdmin, db: DB, cluster: str) -> Response:
    return page(request, db, inventory.find_cluster(db, cluster))


def parse_draft(text: str) -> ConfigDocument:
    """The editor's YAML as the API's request body; YAML mistakes are named by line and column."""
    try:
        loaded = yaml.safe_load(text) if text.strip() else {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise _invalid(f"{where}{getattr(exc, 'problem', None) or exc}") from None
    if not isinstance(loaded, dict):
        raise _invalid("must be a mapping with quotas, profiles and pool_profile_order")
    loaded.pop("based_on_version", None)
    loaded.pop("stale", None)
    return ConfigDocument.model_validate(loaded)


def _invalid(message: str) -> ValidationFailed:
    return ValidationFailed(f"{DRAFT_FIELD}: {message}", [FieldError(DRAFT_FIELD, message)])


@router.post("/ui/clusters/{cluster}/configuration/draft")
def save_draft(request: Request, principal: ClusterAdmin, db: DB, form: Form, cluster: str) -> Response:
    found = inventory.find_cluster(db, cluster)
    text = form.get(DRAFT_FIELD, "")
    try:
        body = parse_draft(text)
        routes_config.save_draft(found.name, body, principal, db, request)
    except (ValidationError, DomainError) as exc:
        errors = model_errors(exc) if isinstance(exc, ValidationError) else exc.errors
        if isinstance(exc, DomainError) and not errors:
            raise
        db.rollback()
        return page(request, db, inventory.find_cluster(db, cluster), 422, text, by_field(errors))
    return back(found, "Draft saved; nothing changes until it is provisioned.", request)


@router.post("/ui/clusters/{cluster}/configuration/provision")
def provision(request: Request, principal: ClusterAdmin, db: DB, state: State, cluster: str) -> Response:
    """Applies the saved draft. A refusal (a stale draft, a quota that cannot go) is shown beside the buttons; the
    document's own errors are listed under the editor with the field each is about."""
    found = inventory.find_cluster(db, cluster)
    try:
        routes_config.provision(found.name, principal, db, state, request)
    except DomainError as exc:
        db.rollback()
        found = inventory.find_cluster(db, cluster)
        if exc.errors:
            return page(request, db, found, exc.status, errors=by_field(exc.errors))
        return page(request, db, found, exc.status, refusal=exc.detail)
    return back(found, "Draft provisioned: the configuration is live.", request)


@router.post("/ui/clusters/{cluster}/configuration/reset")
def reset(request: Request, principal: ClusterAdmin, db: DB, cluster: str) -> Response:
    found = inventory.find_cluster(db, cluster)
    routes_config.reset(found.name, principal, db, request)
    return back(found, "Draft dropped; the editor shows the provisioned configuration.", request)


@router.post("/ui/clusters/{cluster}/configuration/enabled")
def switch(request: Request, principal: ClusterAdmin, db: DB, state: State, form: Form, cluster: str) -> Response:
    found = inventory.find_cluster(db, cluster)
    enabled = form.get("enabled") == "true"
    routes_config.switch(found.name, SwitchIn(enabled=enabled), principal, db, state, request)
    return back(found, "Resource management enabled." if enabled else
                "Resource management paused: queued jobs wait, running ones keep running.", request)


def moved(order: list[str], name: str, direction: str) -> list[str]:
    """`order` with `name` one place earlier (up) or later (down)."""
    if name not in order:
        return order
    i = order.index(name)
    j = i - 1 if direction == "up" else i + 1
    if not 0 <= j < len(order):
        return order
    out = list(order)
    out[i], out[j] = out[j], out[i]
    return out


@router.post("/ui/clusters/{cluster}/configuration/pools/{pool}/order")
def move_profile_in_pool(request: Request, principal: ClusterAdmin, db: DB, state: State, form: Form, cluster: str,
                         pool: str) -> Response:
    """One step of a pool's execution priority: the profile named moves up or down."""
    found = inventory.find_cluster(db, cluster)
    target = find_pool(db, found.id, pool)
    order = moved(profile_service.pool_profile_order(db, target.id), form.get("profile", ""), form.get("move", ""))
    routes_profiles.set_pool_profile_order(found.name, target.name, NameOrder(names=order), principal, db, state,
                                           request)
    return back(found, f"Pool {target.name} runs {', '.join(order)} in that order.", request)


@router.post("/ui/clusters/{cluster}/configuration/profiles/{profile}/order")
def move_policy_in_profile(request: Request, principal: ClusterAdmin, db: DB, state: State, form: Form,
                           cluster: str, profile: str) -> Response:
    """One step of a profile's policy order: the quota named moves up or down (served earlier or later)."""
    found = inventory.find_cluster(db, cluster)
    target = profile_service.find_profile(db, found.id, profile)
    order = moved(profile_service.profile_policies(db, target.id), form.get("policy", ""), form.get("move", ""))
    routes_profiles.set_profile_policies(found.name, target.name, NameOrder(names=order), principal, db, state,
                                         request)
    return back(found, f"Profile {target.name} serves {', '.join(order)} in that order.", request)
