"""Projects in the console (ClearML's projects page): the tree of the caller's workspaces' projects with their jobs,
models and datasets, a search, and a form to create a project; one project's page with its sub-projects, latest
jobs, models and datasets (with their versions), and forms to create a sub-project, register a model or a dataset,
rename, describe or move it, and delete it. Each action calls the API's route function, so the page asks the same
decision (projects.access) and writes the same audit record."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import Response
from pydantic import ValidationError

from allotment.api.deps import DB, require
from allotment.core.permissions import AUTHENTICATED, Principal
from allotment.errors import DomainError, NotFound, invalid
from allotment.projects import access, artifacts, routes, routes_artifacts, views
from allotment.projects import service as projects
from allotment.projects.schemas import ArtifactCreate, ProjectCreate, ProjectUpdate
from allotment.web.console import field_errors, redirect, render
from allotment.workspaces.models import Workspace

router = APIRouter()
Me = Annotated[Principal, require(AUTHENTICATED)]
KINDS = {"model": "models", "dataset": "datasets"}


def _errors(exc: DomainError | ValidationError) -> tuple[int, dict[str, list[str]]]:
    """A form's field messages; an error that names no field (403, 404) is the console's error page."""
    if isinstance(exc, ValidationError):
        return 422, {str(e["loc"][0]) if e["loc"] else "form": [e["msg"]] for e in exc.errors()}
    if not exc.errors:
        raise exc
    return exc.status, field_errors(exc.errors)


def _writable(db, principal: Principal) -> list[dict[str, Any]]:
    """The workspaces where the caller may create projects, for the create form's choice."""
    ids = access.readable_workspaces(db, principal)
    found = [w for w in db.query(Workspace).filter(Workspace.id.in_(ids)).order_by(Workspace.name)
             if access.refusal(db, principal, w, "modify") is None] if ids else []
    labels = views.workspace_labels(db, {w.id for w in found})
    return [{"id": w.id, "name": w.name, "cluster": labels[w.id][1]} for w in found]


def _home(request: Request, principal: Principal, db, search: str = "", status: int = 200, **extra) -> Response:
    listed = routes.list_projects(principal, db, search=search.strip() or None).items
    by_workspace: dict[str, list] = {}
    for project in listed:
        by_workspace.setdefault(f"{project.cluster}/{project.workspace}", []).append(project)
    context = {"groups": by_workspace, "search": search, "writable": _writable(db, principal),
               "values": {}, "errors": {}}
    context.update(extra)
    return render(request, "projects/list.html", context, status=status)


@router.get("/ui/projects")
def projects_page(request: Request, principal: Me, db: DB,
                  search: Annotated[str, Query(max_length=256)] = "") -> Response:
    return _home(request, principal, db, search)


@router.post("/ui/projects")
def create_project(request: Request, principal: Me, db: DB, workspace: Annotated[str, Form()] = "",
                   name: Annotated[str, Form()] = "", description: Annotated[str, Form()] = "") -> Response:
    target = db.get(Workspace, int(workspace)) if workspace.isdigit() else None
    values = {"workspace": workspace, "name": name, "description": description}
    if target is None:
        return _home(request, principal, db, status=422, errors={"workspace": ["choose a workspace"]},
                     values=values)
    try:
        body = ProjectCreate(cluster=str(target.cluster_id), workspace=str(target.id), name=name.strip(),
                             description=description.strip() or None)
        created = routes.create_project(body, principal, db, request)
    except (DomainError, ValidationError) as exc:
        status, errors = _errors(exc)
        return _home(request, principal, db, status=status, errors=errors, values=values)
    return redirect(f"/ui/projects/{created.id}", notice=f"Project {created.path} created.", request=request)


def _detail(request: Request, principal: Principal, db, project_id: int, status: int = 200, **extra) -> Response:
    shown = routes.get_project(project_id, principal, db)
    project = projects.get_project(db, project_id)
    workspace = db.get(Workspace, project.workspace_id)
    chain = list(reversed(projects.ancestors(db, project)))
    entries = {kind: views.artifact_rows(db, kind, _readable(db, principal, kind, project.id)) for kind in KINDS}
    others = [(p.id, p.path) for p in routes.list_projects(principal, db, workspace=str(workspace.id),
                                                           cluster=str(workspace.cluster_id)).items
              if p.id != project.id and not p.path.startswith(shown.path + "/")]
    context = {"project": shown, "chain": chain, "children": [views.project_row(db, c) for c in access.visible(
                   db, principal, [projects.get_project(db, c) for c in shown.children])],
               "jobs": routes.project_jobs_list(project_id, principal, db, 20).items,
               "models": entries["model"], "datasets": entries["dataset"], "others": others,
               "may_modify": access.refusal(db, principal, workspace, "modify", project) is None,
               "values": {}, "errors": {}, "failed": None}
    context.update(extra)
    return render(request, "projects/detail.html", context, status=status)


def _readable(db, principal: Principal, kind: str, project_id: int) -> list:
    """The project's latest entries of `kind` that the access rules let the caller read."""
    latest = artifacts.list_latest(db, kind, [project_id])
    shown = {id(e) for e in access.visible(db, principal, [e for e, _ in latest], kind)}
    return [(e, n) for e, n in latest if id(e) in shown]


@router.get("/ui/projects/{project_id}")
def project_page(request: Request, principal: Me, db: DB, project_id: int) -> Response:
    return _detail(request, principal, db, project_id)


@router.post("/ui/projects/{project_id}/subprojects")
def create_subproject(request: Request, principal: Me, db: DB, project_id: int, name: Annotated[str, Form()] = "",
                      description: Annotated[str, Form()] = "") -> Response:
    parent = projects.get_project(db, project_id)
    try:
        body = ProjectCreate(cluster=str(db.get(Workspace, parent.workspace_id).cluster_id),
                             workspace=str(parent.workspace_id), name=name.strip(), parent=str(parent.id),
                             description=description.strip() or None)
        created = routes.create_project(body, principal, db, request)
    except (DomainError, ValidationError) as exc:
        status, errors = _errors(exc)
        return _detail(request, principal, db, project_id, status=status, errors=errors, failed="sub",
                       values={"name": name, "description": description})
    return redirect(f"/ui/projects/{created.id}", notice=f"Project {created.path} created.", request=request)


@router.post("/ui/projects/{project_id}/edit")
def edit_project(request: Request, principal: Me, db: DB, project_id: int, name: Annotated[str, Form()] = "",
                 description: Annotated[str, Form()] = "", parent: Annotated[str, Form()] = "") -> Response:
    current = projects.get_project(db, project_id)
    fields: dict[str, Any] = {"name": name.strip() or None, "description": description.strip() or None}
    if (str(current.parent_id or "")) != parent.strip():
        fields["parent"] = parent.strip() or None
    try:
        done = routes.update_project(project_id, ProjectUpdate(**fields), principal, db, request)
    except (DomainError, ValidationError) as exc:
        status, errors = _errors(exc)
        return _detail(request, principal, db, project_id, status=status, errors=errors, failed="edit",
                       values={"name": name, "description": description, "parent": parent})
    return redirect(f"/ui/projects/{project_id}", notice=f"Project {done.path} saved.", request=request)


@router.post("/ui/projects/{project_id}/delete")
def delete_project(request: Request, principal: Me, db: DB, project_id: int,
                   force: Annotated[str, Form()] = "") -> Response:
    try:
        done = routes.delete_project(project_id, principal, db, request, force=force == "on")
    except DomainError as exc:
        status, errors = _errors(exc)
        return _detail(request, principal, db, project_id, status=status, errors=errors, failed="delete")
    kept = f" {done.detached_jobs} job(s) kept without a project." if done.detached_jobs else ""
    return redirect("/ui/projects", notice=f"Project deleted.{kept}", request=request)


def _metadata(text: str) -> dict[str, Any] | None:
    """The metadata field: a JSON object, or nothing."""
    if not text.strip():
        return None
    try:
        found = json.loads(text)
    except ValueError as exc:
        raise invalid("metadata", f"is not JSON: {exc}") from None
    if not isinstance(found, dict):
        raise invalid("metadata", 'must be a JSON object, e.g. {"framework": "pytorch"}')
    return found


def _kind(plural: str) -> str:
    kind = next((k for k, p in KINDS.items() if p == plural), None)
    if kind is None:
        raise NotFound(f"no page /ui/projects/.../{plural}: use models or datasets")
    return kind


@router.post("/ui/projects/{project_id}/{plural}")
def register_entry(request: Request, principal: Me, db: DB, project_id: int, plural: str,
                   name: Annotated[str, Form()] = "", uri: Annotated[str, Form()] = "",
                   metadata: Annotated[str, Form()] = "", description: Annotated[str, Form()] = "") -> Response:
    kind = _kind(plural)
    register = routes_artifacts.ROUTES[kind]["register"]
    try:
        body = ArtifactCreate(project=str(project_id), name=name.strip(), uri=uri.strip(),
                              metadata=_metadata(metadata), description=description.strip() or None)
        entry = register(body, principal, db, request)
    except (DomainError, ValidationError) as exc:
        status, errors = _errors(exc)
        return _detail(request, principal, db, project_id, status=status, errors=errors, failed=kind,
                       values={"name": name, "uri": uri, "metadata": metadata, "description": description})
    return redirect(f"/ui/projects/{project_id}", notice=f"{kind.capitalize()} {entry.name} version "
                                                         f"{entry.version} registered.", request=request)


@router.post("/ui/projects/{project_id}/{plural}/{entry_id}/delete")
def delete_entry(request: Request, principal: Me, db: DB, project_id: int, plural: str, entry_id: int) -> Response:
    kind = _kind(plural)
    done = routes_artifacts.ROUTES[kind]["delete"](entry_id, principal, db, request)
    return redirect(f"/ui/projects/{project_id}", notice=f"{kind.capitalize()} {done.name}: deleted version "
                                                         f"{', '.join(map(str, done.deleted_versions))}.",
                    request=request)
