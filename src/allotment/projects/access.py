"""The one place where projects, models, datasets and jobs' project links ask who may read or change them.

Every route, console page and the job submission path call `refusal` or `check`. The caller's role in the project's
workspace (core.projects.project_refusal) says how far it reaches by itself; the access rules (issue 15) on the
project, its ancestors and the one job, model or dataset then decide, through core.permissions.resource_refusal (the
one decision point, asked by access.service)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from allotment.access import service as rules
from allotment.core import access as levels
from allotment.core.permissions import Principal
from allotment.core.projects import project_refusal
from allotment.errors import Forbidden
from allotment.projects.models import Project
from allotment.workspaces import service as workspaces
from allotment.workspaces.models import Workspace


def refusal(session: Session, principal: Principal | None, workspace: Workspace, action: str,
            project: Project | None = None, obj: tuple[str, int] | None = None) -> str | None:
    """Why the principal may not `read` or `modify` in the workspace, or in the project when given, or the one job,
    model or dataset `obj` ((type, id)) of that project; None when it may."""
    role = workspaces.role_of(session, principal, workspace) if principal is not None else None
    read_why = project_refusal(principal, workspace.cluster_id, workspace.id, role, "read")
    modify_why = read_why or project_refusal(principal, workspace.cluster_id, workspace.id, role, "modify")
    if project is None:
        return read_why if action == "read" else modify_why
    role_level = levels.NONE if read_why else levels.READ if modify_why else levels.MODIFY
    if obj is None:
        target = rules.resource(session, "project", project.id, workspace.id, project.parent_id)
        label = f"project {project.name}"
    else:
        target = rules.resource(session, obj[0], obj[1], workspace.id, project.id)
        label = f"{obj[0]} {obj[1]}"
    return rules.refusal(session, principal, target, action, label, role_level,
                         read_why if role_level == levels.NONE else modify_why, workspace.cluster_id)


def check(session: Session, principal: Principal | None, workspace: Workspace, action: str,
          project: Project | None = None, obj: tuple[str, int] | None = None) -> None:
    why = refusal(session, principal, workspace, action, project, obj)
    if why:
        raise Forbidden(why)


def check_project(session: Session, principal: Principal | None, project: Project, action: str,
                  obj: tuple[str, int] | None = None) -> Workspace:
    """The project's workspace, once the principal may do `action` on the project (or on `obj` in it)."""
    workspace = session.get(Workspace, project.workspace_id)
    check(session, principal, workspace, action, project, obj)
    return workspace


def job_refusal(session: Session, principal: Principal, project_id: int, job_id: int, action: str) -> str | None:
    """Why the principal may not `action` (read | modify: cancel) job `job_id` of project `project_id` as a reader
    of the project under the access rules; None when it may. (Its owner, the cluster's managers and platform admins
    may anyway: workloads decides that first.)"""
    project = session.get(Project, project_id)
    if project is None:
        return f"you have no access to job {job_id}"
    workspace = session.get(Workspace, project.workspace_id)
    return refusal(session, principal, workspace, action, project, ("job", job_id))


def visible(session: Session, principal: Principal, items: list, kind: str = "project") -> list:
    """The projects (kind `project`), or jobs, models or datasets (anything with `id` and `project_id`), that the
    principal may read under the access rules, in their order; one query for all their rules."""
    if not items:
        return []
    project_ids = {i.id if kind == "project" else i.project_id for i in items} - {None}
    found = {p.id: p for p in session.scalars(select(Project).where(Project.id.in_(sorted(project_ids))))}
    spaces = {w.id: w for w in session.scalars(select(Workspace).where(
        Workspace.id.in_(sorted({p.workspace_id for p in found.values()}))))}
    roles = workspaces.member_roles(session, principal.id, principal.kind, set(principal.group_ids))
    role_levels, clusters = {}, {}
    for w in spaces.values():
        read_why = project_refusal(principal, w.cluster_id, w.id, roles.get(w.id), "read")
        modify_why = read_why or project_refusal(principal, w.cluster_id, w.id, roles.get(w.id), "modify")
        role_levels[w.id] = levels.NONE if read_why else levels.READ if modify_why else levels.MODIFY
        clusters[w.id] = w.cluster_id
    chains = {pid: rules.project_chain(session, pid) for pid in found}  # [itself, parent, ..., root]
    targets, kept = [], []
    for item in items:
        project = found.get(item.id if kind == "project" else item.project_id)
        if project is None:
            continue  # a job without a project: not the rules' to judge
        chain = chains[project.id][1:] if kind == "project" else chains[project.id]
        targets.append(levels.Resource(kind, item.id, project.workspace_id, chain))
        kept.append(item)
    allowed = rules.allowed_many(session, principal, targets, "read", role_levels, clusters)
    shown = {id(item) for item, ok in zip(kept, allowed, strict=True) if ok}
    return [i for i in items if id(i) in shown or (kind != "project" and i.project_id is None)]


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
