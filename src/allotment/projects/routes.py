"""Projects API (ClearML projects): /projects, a tree of projects per workspace that own jobs, models and datasets.
Models and datasets: routes_artifacts.py.

Every route asks projects.access (the one place that decides who reads and changes projects) and every change is
audited. Projects are named in URLs by id; bodies and filters also take a project's path in its workspace."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from sqlalchemy.orm import Session

from allotment.api.deps import DB, client_address, require
from allotment.api.fields import IdPath, Limit
from allotment.audit import service as audit
from allotment.core.names import as_id
from allotment.core.permissions import AUTHENTICATED, Principal
from allotment.errors import FieldError, NotFound
from allotment.inventory.service import find_cluster
from allotment.projects import access, routes_artifacts, views
from allotment.projects import service as projects
from allotment.projects.models import Project
from allotment.projects.schemas import ProjectCreate, ProjectDeleted, ProjectList, ProjectOut, ProjectUpdate
from allotment.workloads import project_jobs
from allotment.workloads import service as jobs_service
from allotment.workloads.schemas import JobList, JobOut
from allotment.workspaces import service as workspaces
from allotment.workspaces.models import Workspace

router = APIRouter(tags=["projects"])
Signed = Annotated[Principal, require(AUTHENTICATED)]
Filter = Annotated[str | None, Query(max_length=256)]


def load_workspace(db: Session, cluster: str, workspace: str) -> Workspace:
    return workspaces.find_workspace(db, find_cluster(db, cluster).id, workspace)


def load_project(db: Session, principal: Principal, project_id: int, action: str) -> tuple[Project, Workspace]:
    project = projects.get_project(db, project_id)
    return project, access.check_project(db, principal, project, action)


def _parent(db: Session, workspace: Workspace, ref: str | None) -> Project | None:
    """The parent a body names: an id, or a path in the workspace; None for the top."""
    if ref is None or not ref.strip():
        return None
    found = projects.find_by_path(db, workspace.id, ref)
    if found is None and as_id(ref.strip()):
        found = db.get(Project, as_id(ref.strip()))
    if found is None or found.workspace_id != workspace.id:
        message = f"no project '{ref.strip()}' in workspace {workspace.name}"
        error = NotFound(f"parent: {message}")
        error.errors = [FieldError("parent", message)]  # a reference to nothing: 404, naming the field
        raise error
    return found


def _label(db: Session, project: Project, workspace: Workspace) -> str:
    return f"{workspace.name}/{projects.path(db, project)}"


@router.get("/projects", response_model=ProjectList)
def list_projects(principal: Signed, db: DB, cluster: Filter = None, workspace: Filter = None,
                  path: Annotated[str | None, Query(max_length=1024, description="the project at this path in "
                                                    "each workspace (detection/yolo)")] = None,
                  search: Annotated[str | None, Query(max_length=256, description="in names and descriptions; "
                                                      "matches are shown with their ancestors")] = None) -> ProjectList:
    """The projects of the workspaces the caller may read (of one cluster or workspace when given), in tree order;
    with `path`, the project at that path in each of them."""
    if workspace is not None:
        target = load_workspace(db, cluster or "local", workspace)
        access.check(db, principal, target, "read")
        ids = {target.id}
    else:
        cluster_id = find_cluster(db, cluster).id if cluster else None
        ids = access.readable_workspaces(db, principal, cluster_id)
    if path is not None:
        found = [p for p in (projects.find_by_path(db, w, path) for w in sorted(ids)) if p is not None]
        rows = [views.project_row(db, p) for p in access.visible(db, principal, found)]
    else:
        listed = projects.list_projects(db, ids, search)
        shown = {p.id for p in access.visible(db, principal, [p for p, _ in listed])}  # the access rules
        rows = views.project_rows(db, [(p, n) for p, n in listed if p.id in shown])
    return ProjectList(items=[ProjectOut(**r) for r in rows], total=len(rows))


@router.post("/projects", response_model=ProjectOut, status_code=201)
def create_project(body: ProjectCreate, principal: Signed, db: DB, request: Request) -> ProjectOut:
    """Members of the workspace from `member` up create projects (viewers read only)."""
    target = load_workspace(db, body.cluster, body.workspace)
    access.check(db, principal, target, "modify")
    parent = _parent(db, target, body.parent)
    if parent is not None:
        access.check(db, principal, target, "modify", parent)  # a sub-project changes its parent
    project = projects.create_project(db, target, body.name, parent, body.description, created_by_id=principal.id)
    row = views.project_row(db, project)
    audit.record(db, principal, "project.create", "project", f"{target.name}/{row['path']}", project.id,
                 changes={"after": {"path": row["path"], "description": project.description}},
                 source=client_address(request))
    return ProjectOut(**row)


@router.get("/projects/{project_id}", response_model=ProjectOut)
def get_project(project_id: IdPath, principal: Signed, db: DB) -> ProjectOut:
    project, _ = load_project(db, principal, project_id, "read")
    return ProjectOut(**views.project_row(db, project))


@router.patch("/projects/{project_id}", response_model=ProjectOut)
def update_project(project_id: IdPath, body: ProjectUpdate, principal: Signed, db: DB,
                   request: Request) -> ProjectOut:
    """Rename, describe or move (with its sub-projects, jobs, models and datasets) within the workspace."""
    project, workspace = load_project(db, principal, project_id, "modify")
    before = {"path": projects.path(db, project), "description": project.description}
    if "parent" in body.model_fields_set:
        parent = _parent(db, workspace, body.parent)
        if parent is not None:
            access.check(db, principal, workspace, "modify", parent)  # moving under it changes it
        projects.move_project(db, project, parent)
    if body.name is not None:
        projects.rename_project(db, project, body.name)
    if "description" in body.model_fields_set:
        projects.describe_project(db, project, body.description)
    after = {"path": projects.path(db, project), "description": project.description}
    audit.record(db, principal, "project.update", "project", f"{workspace.name}/{after['path']}", project.id,
                 changes=audit.diff(before, after), source=client_address(request))
    return ProjectOut(**views.project_row(db, project))


@router.delete("/projects/{project_id}", response_model=ProjectDeleted)
def delete_project(project_id: IdPath, principal: Signed, db: DB, request: Request,
                   force: Annotated[bool, Query(description="also delete its sub-projects, models and datasets; its "
                                                            "jobs stay without a project (refused while any is "
                                                            "unfinished)")] = False) -> ProjectDeleted:
    """Refused (409) while the project holds sub-projects, models, datasets or jobs, naming them, unless forced."""
    project, workspace = load_project(db, principal, project_id, "modify")
    label = _label(db, project, workspace)
    held = projects.delete_project(db, project, force)
    out = ProjectDeleted(deleted_projects=held.subprojects + 1, deleted_model_versions=held.models,
                         deleted_dataset_versions=held.datasets, detached_jobs=held.jobs)
    audit.record(db, principal, "project.delete", "project", label, project_id,
                 changes={"before": {"path": label, "held": held.words()}, "force": force},
                 source=client_address(request))
    return out


@router.get("/projects/{project_id}/jobs", response_model=JobList)
def project_jobs_list(project_id: IdPath, principal: Signed, db: DB, limit: Limit(500) = 50) -> JobList:
    """The project's latest jobs (not its sub-projects'), newest first: whoever may read the project sees them
    (their output stays with their owners and the cluster's managers)."""
    project, _ = load_project(db, principal, project_id, "read")
    found = access.visible(db, principal, project_jobs.latest(db, project.id, limit), "job")
    names = jobs_service.names_for(db, found)
    total = project_jobs.count_by_project(db, [project.id]).get(project.id, 0)
    return JobList(items=[JobOut.of(j, names) for j in found], total=total)


router.include_router(routes_artifacts.router)
