"""The one place where projects, models, datasets and jobs' project links ask who may read or change them.

Every route, console page and the job submission path call `refusal` or `check`; core.projects.project_refusal
decides from the caller's role in the project's workspace."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from allotment.core.permissions import Principal
from allotment.core.projects import project_refusal
from allotment.errors import Forbidden
from allotment.projects.models import Project
from allotment.workspaces import service as workspaces
from allotment.workspaces.models import Workspace


def refusal(session: Session, principal: Principal | None, workspace: Workspace, action: str,
            project: Project | None = None) -> str | None:
    """Why the principal may not `read` or `modify` in the workspace (the project, when given, is what the access
    rules of issue 15 will narrow it to); None when it may."""
    role = workspaces.role_of(session, principal, workspace) if principal is not None else None
    return project_refusal(principal, workspace.cluster_id, workspace.id, role, action)


def check(session: Session, principal: Principal | None, workspace: Workspace, action: str,
          project: Project | None = None) -> None:
    why = refusal(session, principal, workspace, action, project)
    if why:
        raise Forbidden(why)


def check_project(session: Session, principal: Principal | None, project: Project, action: str) -> Workspace:
    """The project's workspace, once the principal may do `action` on the project."""
    workspace = session.get(Workspace, project.workspace_id)
    check(session, principal, workspace, action, project)
    return workspace


def readable_workspaces(session: Session, principal: Principal, cluster_id: int | None = None) -> set[int]:
    """Ids of the workspaces whose projects the principal may read (of one cluster, when given)."""
    query = select(Workspace)
    if cluster_id is not None:
        query = query.where(Workspace.cluster_id == cluster_id)
    roles = workspaces.member_roles(session, principal.id, principal.kind, set(principal.group_ids))
    found = set()
    for workspace in session.scalars(query):
        if project_refusal(principal, workspace.cluster_id, workspace.id, roles.get(workspace.id), "read") is None:
            found.add(workspace.id)
    return found


def project_for_job(session: Session, principal: Principal, cluster_id: int,
                    ref: str | int) -> tuple[int | None, str | None, str | None]:
    """The project a job submitted to cluster `cluster_id` names (its id or WORKSPACE/PATH), as (project id, None,
    None); or (None, problem, message) with problem `missing` (no such project: 404), `forbidden` (the submitter
    may not add jobs to it: 403) or `invalid` (it cannot be the job's project: 422)."""
    from allotment.errors import DomainError
    from allotment.projects.service import resolve

    try:
        project = resolve(session, cluster_id, ref)
    except DomainError as exc:
        message = exc.errors[0].message if exc.errors else exc.detail
        return None, "missing" if exc.status == 404 else "invalid", message
    workspace = session.get(Workspace, project.workspace_id)
    if workspace.cluster_id != cluster_id:
        return None, "invalid", (f"project {project.id} is in another cluster's workspace: a job's project is in its "
                                 f"quota's cluster")
    why = refusal(session, principal, workspace, "modify", project)
    if why:
        return None, "forbidden", f"you may not add jobs to project {project.id}: {why}"
    return project.id, None, None
