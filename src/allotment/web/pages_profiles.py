"""Profiles (ClearML resource profiles) of a cluster: the allotment a job asks for by name, the pools it is tried in
(in order, or as an unordered set taking the best fit), the quotas queued on it. Cluster users read them; cluster
admins create, change, relink and delete them. Every change is the API's route function (quotas/routes_profiles.py)
called with the body the API would get, so both check, audit and authorise the same way."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import TypeAdapter, ValidationError

from allotment.api.deps import DB, State, cluster_scope, require
from allotment.core.permissions import QUOTA_ADMIN, Principal, Scope, allowed, cluster
from allotment.errors import DomainError
from allotment.inventory import service as inventory
from allotment.quotas import profiles as service
from allotment.quotas import routes_profiles as api
from allotment.quotas.schemas import PoolLinkIn, ProfileCreate, ProfileUpdate
from allotment.web.console import redirect, render, url_segment
from allotment.web.form_rows import by_field, failure, kept, remap, rows_of
from allotment.web.pages_cluster_settings import Form

router = APIRouter()
Reader = Annotated[Principal, require(cluster("user"), cluster_scope())]
# Cluster admins and the built-in queue-admins group create, change and delete profiles.
Admin = Annotated[Principal, require(QUOTA_ADMIN, cluster_scope())]
LINK_ROWS = 3  # empty pool rows offered below a profile's links
LINKS = TypeAdapter(list[PoolLinkIn])


def base(cluster_name: str) -> str:
    return f"/ui/clusters/{url_segment(cluster_name)}/profiles"


def pool_names(db, cluster_id: int) -> list[str]:
    return [cap.name for cap in inventory.pool_capacities(db, cluster_id)]


def links_from(form: dict[str, str]) -> tuple[list[dict], list[int]]:
    """The pool rows a form lists, in order; a row without a pool is left out."""
    rows, index = kept(rows_of(form, "pools", ("pool", "name")), lambda r: bool(r.get("pool")))
    return [{"pool": r["pool"], "name": r.get("name") or None} for r in rows], index


def fields_from(form: dict[str, str]) -> dict:
    """The profile's own fields as the API takes them; a blank amount is none of it (0)."""
    return {"name": form.get("name", "").strip(), "description": form.get("description", "").strip() or None,
            **{k: form.get(k, "").strip() or "0" for k in ("gpu", "cpu", "memory")},
            "unordered": bool(form.get("unordered"))}


def list_page(request: Request, principal: Principal, db, cluster: str, status: int = 200,
              values: dict | None = None, errors: dict | None = None) -> Response:
    found = inventory.find_cluster(db, cluster)
    profiles = [api.profile_out(db, p, found.name) for p in service.list_profiles(db, found.id)]
    return render(request, "profiles.html", {
        "cluster": found, "profiles": profiles, "pools": pool_names(db, found.id),
        "can_manage": allowed(principal, QUOTA_ADMIN, Scope(cluster_id=found.id)),
        "values": values or {"gpu": "1"}, "errors": errors or {}, "link_rows": range(LINK_ROWS)}, status=status)


@router.get("/ui/clusters/{cluster}/profiles")
def profiles_page(request: Request, principal: Reader, db: DB, cluster: str) -> Response:
    return list_page(request, principal, db, cluster)


@router.post("/ui/clusters/{cluster}/profiles")
def create_profile(request: Request, principal: Admin, db: DB, state: State, form: Form, cluster: str) -> Response:
    links, index = links_from(form)
    try:
        body = ProfileCreate(**fields_from(form), pools=links)
        api.create_profile(cluster, body, principal, db, state, request)
    except (ValidationError, DomainError) as exc:
        errors = failure(exc, "name")
        if errors is None:
            raise
        db.rollback()
        return list_page(request, principal, db, cluster, 422 if isinstance(exc, ValidationError) else exc.status,
                         dict(form), by_field(remap(errors, "pools", index)))
    return redirect(base(cluster), notice=f"Profile {body.name} created.", request=request)


def detail_page(request: Request, principal: Principal, db, cluster: str, profile: str, status: int = 200,
                values: dict | None = None, errors: dict | None = None, refusal: str | None = None) -> Response:
    found = inventory.find_cluster(db, cluster)
    out = api.profile_out(db, service.find_profile(db, found.id, profile), found.name)
    shown = {"name": out.name, "description": out.description or "", "gpu": out.gpu, "cpu": out.cpu,
             "memory": out.memory, "unordered": "on" if out.unordered else ""}
    for i, link in enumerate(out.pools):
        shown |= {f"pools.{i}.pool": link.pool, f"pools.{i}.name": link.name or ""}
    return render(request, "profile.html", {
        "cluster": found, "profile": out, "pools": pool_names(db, found.id), "values": values or shown,
        "errors": errors or {}, "refusal": refusal, "link_rows": range(len(out.pools) + LINK_ROWS),
        "can_manage": allowed(principal, QUOTA_ADMIN, Scope(cluster_id=found.id))}, status=status)


@router.get("/ui/clusters/{cluster}/profiles/{profile}")
def profile_page(request: Request, principal: Reader, db: DB, cluster: str, profile: str) -> Response:
    return detail_page(request, principal, db, cluster, profile)


@router.post("/ui/clusters/{cluster}/profiles/{profile}")
def update_profile(request: Request, principal: Admin, db: DB, state: State, form: Form, cluster: str,
                   profile: str) -> Response:
    """Its fields and, in the same step, its pool links in the order given."""
    links, index = links_from(form)
    fields = fields_from(form)
    try:
        api.update_profile(cluster, profile, ProfileUpdate(**fields), principal, db, state, request)
        api.set_profile_pools(cluster, fields["name"] or profile, LINKS.validate_python(links), principal, db,
                              state, request)
    except (ValidationError, DomainError) as exc:
        errors = failure(exc, "name")
        if errors is None:
            raise
        db.rollback()
        if isinstance(exc, ValidationError):  # the pool list's model errors are numbered from the list itself
            errors = [type(e)(f"pools.{e.field}" if e.field[:1].isdigit() else e.field, e.message) for e in errors]
        return detail_page(request, principal, db, cluster, profile,
                           422 if isinstance(exc, ValidationError) else exc.status, dict(form),
                           by_field(remap(errors, "pools", index)))
    name = fields["name"] or profile
    return redirect(f"{base(cluster)}/{url_segment(name)}", notice=f"Profile {name} saved.", request=request)


@router.post("/ui/clusters/{cluster}/profiles/{profile}/delete")
def delete_profile(request: Request, principal: Admin, db: DB, state: State, cluster: str,
                   profile: str) -> Response:
    """Refused while jobs use it: the refusal is shown on its page, in the service's words."""
    try:
        api.delete_profile(cluster, profile, principal, db, state, request)
    except DomainError as exc:
        if exc.status != 409:
            raise
        db.rollback()
        return detail_page(request, principal, db, cluster, profile, 409, refusal=exc.detail)
    return redirect(base(cluster), notice=f"Profile {profile} deleted.", request=request)
