"""Add, change and remove clusters and their engine settings (platform admins; removal also the cluster's admins, as
in the API). Every change goes through inventory's service, which checks each backend's settings and seals secrets.

Secrets are write-only: their input is always empty, with a note saying whether one is set; leaving it empty keeps
it, a checkbox clears it. Maps (pool -> partition, pool -> Ray resource) are edited as `POOL=NAME` lines.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from allotment.api.deps import DB, State, client_address, cluster_scope, require
from allotment.audit import service as audit
from allotment.core.permissions import PLATFORM_ADMIN, Principal, cluster
from allotment.errors import DomainError, FieldError, ValidationFailed
from allotment.inventory import engine_settings
from allotment.inventory import service as inventory
from allotment.web.console import redirect, render, url_segment

router = APIRouter()
Admin = Annotated[Principal, require(PLATFORM_ADMIN)]
ClusterAdmin = Annotated[Principal, require(cluster("admin"), cluster_scope())]
BACKENDS = inventory.BACKENDS
LABELS = {
    "rest_url": ("slurmrestd URL", "empty: run Slurm's commands (sbatch, squeue, scancel) instead"),
    "rest_user": ("User name of the token", "scontrol token username=NAME"),
    "token": ("slurmrestd token (JWT)", None),
    "log_dir": ("Log directory", "where jobs write their output, on a filesystem the compute nodes share"),
    "slurm_conf": ("SLURM_CONF", "without a URL: the slurm.conf the commands read"),
    "bin_dir": ("Slurm commands directory", "without a URL: default /usr/bin"),
    "state_dir": ("State directory", "the engine's run records; default LOG_DIR/.allot-slurm"),
    "work_dir": ("Jobs' working directory", "default: the log directory"),
    "partitions": ("Partitions", "one POOL=PARTITION a line; other pools go to their node's partition"),
    "default_partition": ("Default partition", "optional"),
    "accounts": ("Run jobs as", "one USER=ACCOUNT a line, * for everyone else; empty: the token's user"),
    "name_prefix": ("Job name prefix", "one per allotment sharing the Slurm cluster; default allot"),
    "address": ("Ray Jobs API address", "such as http://head:8265; may hold credentials"),
    "resources": ("Custom resources", "one POOL=RESOURCE a line"),
    "nodes_file": ("Nodes file", "YAML or JSON of virtual nodes; default: the server's ALLOT_SIMULATED_NODES"),
    "min_gpu_share": ("Smallest GPU share", "the finest share of a GPU a job may ask for: 0.01 (default) to 1 (Slurm)"),
}


async def form_values(request: Request) -> dict[str, str]:
    """The posted form as text fields (a sync page reads it through this dependency)."""
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


Form = Annotated[dict[str, str], Depends(form_values)]


def _map_text(value: Any) -> str:
    return "\n".join(f"{k}={v}" for k, v in (value or {}).items())


def _parse_map(name: str, text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ValidationFailed(f"engine.{name}: each line is POOL=NAME",
                                   [FieldError(f"engine.{name}", "each line is POOL=NAME")])
        out[key.strip()] = value.strip()
    return out


def engine_from_form(form: dict[str, str], backend: str, current: dict[str, Any] | None) -> dict[str, Any]:
    """The engine settings a form asks for: on an edit (`current`: the stored plain values) an emptied field
    resets its setting; an empty secret keeps the stored one unless its clear box is ticked."""
    out: dict[str, Any] = {}
    for name in engine_settings.SETTINGS[backend]:
        raw = form.get(name, "")
        if name in engine_settings.SECRETS:
            if form.get(f"clear_{name}"):
                out[name] = None
            elif raw:
                out[name] = raw
            continue
        value = _parse_map(name, raw) if name in engine_settings.MAPS else raw.strip()
        if value:
            out[name] = value
        elif current is not None and name in current:
            out[name] = None
    return out


def _by_field(errors: list[FieldError]) -> dict[str, list[str]]:
    """Messages by the form's input: engine.partitions.a100 goes under partitions."""
    grouped: dict[str, list[str]] = {}
    for error in errors:
        parts = error.field.split(".")
        key = parts[1] if parts[0] == "engine" and len(parts) > 1 else parts[0]
        grouped.setdefault(key, []).append(error.message)
    return grouped


def _form_context(backend: str, values: dict[str, Any], errors: dict, secrets_set: dict[str, bool],
                  found=None) -> dict[str, Any]:
    fields = [{"name": n, "label": LABELS[n][0], "hint": LABELS[n][1], "secret": n in engine_settings.SECRETS,
               "map": n in engine_settings.MAPS, "is_set": secrets_set.get(n, False)}
              for n in engine_settings.SETTINGS.get(backend, ())]
    return {"backend": backend, "backends": BACKENDS, "values": values, "errors": errors, "fields": fields,
            "cluster": found}


def _values_of(found) -> tuple[dict[str, Any], dict[str, bool]]:
    shown = engine_settings.public_settings(found)
    values = {"name": found.name, "description": found.description or "", "backend": found.backend}
    secrets_set = {}
    for name, value in shown.items():
        if name in engine_settings.SECRETS:
            secrets_set[name] = value["set"]
        else:
            values[name] = _map_text(value) if name in engine_settings.MAPS else value
    return values, secrets_set


@router.get("/ui/clusters/new")
def new_cluster_form(request: Request, principal: Admin, backend: str = "local") -> Response:
    backend = backend if backend in BACKENDS else "local"
    return render(request, "cluster_form.html", _form_context(backend, {"backend": backend}, {}, {}))


@router.get("/ui/clusters/new/engine")
def engine_fields(request: Request, principal: Admin, db: DB, backend: str = "local", cluster: str = "") -> Response:
    """The engine fields of a backend (htmx swaps them in when the backend changes); a cluster's own values when it
    already has that backend."""
    backend = backend if backend in BACKENDS else "local"
    values: dict[str, Any] = {}
    secrets_set: dict[str, bool] = {}
    found = inventory.find_cluster(db, cluster) if cluster else None
    if found is not None and found.backend == backend:
        values, secrets_set = _values_of(found)
    return render(request, "_engine_fields.html", _form_context(backend, values, {}, secrets_set, found))


@router.post("/ui/clusters")
def create_cluster(request: Request, principal: Admin, db: DB, state: State, form: Form) -> Response:
    backend = form.get("backend", "local")
    values = dict(form)
    try:
        engine = engine_from_form(form, backend if backend in BACKENDS else "local", None)
        created = inventory.create_cluster_as_admin(db, form.get("name", "").strip(), backend, principal.id,
                                                    form.get("description", "").strip() or None, engine,
                                                    state.secret_key)
    except DomainError as exc:
        if not exc.errors:
            raise
        db.rollback()  # the page is answered normally, so the request would commit what was done before the error
        shown = backend if backend in BACKENDS else "local"
        context = _form_context(shown, values, _by_field(exc.errors), {}) | {"summary": exc.detail}
        return render(request, "cluster_form.html", context, status=exc.status)
    audit.record(db, principal, "cluster.create", "cluster", created.name, created.id,
                 changes={"after": {"backend": created.backend, "engine_settings": sorted(engine)}},
                 source=client_address(request))
    state.scheduler_wakeup.set()
    return redirect("/ui/clusters", notice=f"Cluster {created.name} added ({created.backend}); you are its admin.")


@router.get("/ui/clusters/{cluster}/settings")
def settings_form(request: Request, principal: Admin, db: DB, cluster: str) -> Response:
    found = inventory.find_cluster(db, cluster)
    values, secrets_set = _values_of(found)
    return render(request, "cluster_form.html", _form_context(found.backend, values, {}, secrets_set, found))


@router.post("/ui/clusters/{cluster}/settings")
def update_settings(request: Request, principal: Admin, db: DB, state: State, form: Form, cluster: str) -> Response:
    found = inventory.find_cluster(db, cluster)
    backend = form.get("backend", found.backend)
    same = backend == found.backend
    _, secrets_set = _values_of(found)
    try:
        engine = engine_from_form(form, backend if backend in BACKENDS else found.backend,
                                  engine_settings.plain_settings(found) if same else None)
        change = inventory.update_cluster(db, found, state.secret_key, backend=backend,
                                          description=form.get("description", "").strip() or None,
                                          description_set=True, engine=engine)
    except DomainError as exc:
        if not exc.errors:
            raise
        db.rollback()  # as above: nothing of a refused change is kept
        shown = backend if backend in BACKENDS else found.backend
        context = _form_context(shown, dict(form), _by_field(exc.errors), secrets_set if same else {}, found)
        return render(request, "cluster_form.html", context | {"summary": exc.detail}, status=exc.status)
    if change.any:
        audit.record(db, principal, "cluster.update", "cluster", found.name, found.id, changes=change.audit_changes(),
                     source=client_address(request))
        state.scheduler_wakeup.set()
    return redirect(f"/ui/clusters#{url_segment(found.name)}", notice=f"Cluster {found.name} saved.")


@router.post("/ui/clusters/{cluster}/remove")
def remove_cluster(request: Request, principal: ClusterAdmin, db: DB, state: State, cluster: str) -> Response:
    """Refused while the cluster has active jobs: the error page says how many and which."""
    found = inventory.find_cluster(db, cluster)
    inventory.delete_cluster(db, found)
    audit.record(db, principal, "cluster.delete", "cluster", found.name, found.id,
                 changes={"before": {"backend": found.backend}}, source=client_address(request))
    state.scheduler_wakeup.set()
    return redirect("/ui/clusters", notice=f"Cluster {found.name} removed.", request=request)
