"""Projects of a workspace: a tree (core.projects says how deep it may grow and what makes a cycle). Names are unique
among siblings and never look like a sibling's. A project owns jobs, registered models and registered datasets
(projects/artifacts.py).

Deleting a project that holds sub-projects, models, datasets or jobs is refused (409) naming what it holds. Forced,
it deletes the project with its sub-projects and their models and datasets (entries only: no file is touched); the
jobs of the deleted projects stay, without a project. Even forced it is refused while any of those jobs is
unfinished (queued, admitted, running or preempted), so no work in flight loses its project."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from allotment.core import projects as tree
from allotment.core.names import as_id, confusable_with, name_problems
from allotment.errors import Conflict, FieldError, NotFound, ValidationFailed, invalid
from allotment.projects.models import DatasetEntry, ModelEntry, Project
from allotment.workloads import project_jobs
from allotment.workspaces.models import Workspace


def parent_map(session: Session, workspace_id: int) -> dict[int, int | None]:
    """Every project of the workspace with its parent (None for roots): the tree in one query."""
    rows = session.execute(select(Project.id, Project.parent_id).where(Project.workspace_id == workspace_id))
    return {project_id: parent_id for project_id, parent_id in rows}


def ancestor_ids(session: Session, project_id: int) -> list[int]:
    """The project's id and its ancestors' ids, nearest first: [project, parent, ..., root]. At most
    core.projects.MAX_DEPTH lookups. Empty when no such project."""
    chain: list[int] = []
    current: int | None = project_id
    while current is not None and current not in chain and len(chain) <= tree.MAX_DEPTH:
        parent = session.execute(select(Project.parent_id).where(Project.id == current)).first()
        if parent is None:
            break
        chain.append(current)
        current = parent[0]
    return chain


def ancestors(session: Session, project: Project) -> list[Project]:
    """The project and its ancestors, nearest first: [project, parent, ..., root] (what access inheritance walks)."""
    ids = ancestor_ids(session, project.id)
    found = {p.id: p for p in session.scalars(select(Project).where(Project.id.in_(ids)))}
    return [found[i] for i in ids]


def path(session: Session, project: Project) -> str:
    """The project's path from its root, e.g. 'detection/yolo'."""
    return "/".join(p.name for p in reversed(ancestors(session, project)))


def paths(session: Session, workspace_ids: set[int]) -> dict[int, str]:
    """Every project of these workspaces with its path, in one query."""
    rows = session.execute(select(Project.id, Project.parent_id, Project.name)
                           .where(Project.workspace_id.in_(workspace_ids))).all() if workspace_ids else []
    parents = {r.id: r.parent_id for r in rows}
    names = {r.id: r.name for r in rows}
    return {r.id: tree.path_of(parents, names, r.id) for r in rows}


def get_project(session: Session, project_id: int | str) -> Project:
    project = session.get(Project, as_id(project_id)) if as_id(project_id) else None
    if project is None:
        raise NotFound(f"no project {project_id}")
    return project


def find_by_path(session: Session, workspace_id: int, project_path: str) -> Project | None:
    """A project of the workspace by its path ('detection/yolo'); None when nothing matches."""
    found: Project | None = None
    for name in tree.split_path(project_path):
        parent = Project.parent_id.is_(None) if found is None else Project.parent_id == found.id
        found = session.scalar(select(Project).where(Project.workspace_id == workspace_id, parent,
                                                     Project.name == name))
        if found is None:
            return None
    return found


def resolve(session: Session, cluster_id: int, ref: str | int, field: str = "project") -> Project:
    """A project named by its id or by WORKSPACE/PATH ('vision/detection/yolo') in the cluster: 404 naming the field
    when nothing matches (a reference to nothing, whatever its form), 422 only when it is blank."""
    text = str(ref).strip()
    if as_id(text):
        project = session.get(Project, as_id(text))
        if project is None:
            raise _missing(field, f"no project {text}")
        return project
    if not text:
        raise invalid(field, "give a project: its id or WORKSPACE/PATH, e.g. vision/detection")
    workspace_name, sep, project_path = text.partition("/")
    if not sep or not tree.split_path(project_path):
        raise _missing(field, f"no project '{text}': give its id or WORKSPACE/PATH, e.g. vision/detection")
    workspace_id = session.scalar(select(Workspace.id).where(Workspace.cluster_id == cluster_id,
                                                             Workspace.name == workspace_name.strip()))
    if workspace_id is None:
        raise _missing(field, f"no workspace '{workspace_name.strip()}' in this cluster")
    project = find_by_path(session, workspace_id, project_path)
    if project is None:
        raise _missing(field, f"no project '{project_path.strip('/')}' in workspace {workspace_name.strip()}")
    return project


def _missing(field: str, message: str) -> NotFound:
    error = NotFound(f"{field}: {message}")
    error.errors = [FieldError(field, message)]
    return error


def _check_name(session: Session, workspace_id: int, parent_id: int | None, name: str,
                own_id: int | None = None) -> str:
    name = (name or "").strip()
    problems = name_problems(name, "project")
    if problems:
        raise ValidationFailed(f"name: {problems[0]}", [FieldError("name", p) for p in problems])
    parent = Project.parent_id.is_(None) if parent_id is None else Project.parent_id == parent_id
    siblings = {pid: sibling for pid, sibling in session.execute(
        select(Project.id, Project.name).where(Project.workspace_id == workspace_id, parent)) if pid != own_id}
    taken = name if name in siblings.values() else confusable_with(name, siblings.values())
    if taken is not None:
        where = "at the top of the workspace" if parent_id is None else "under the same parent"
        message = (f"a project named {name} already exists {where}" if taken == name else
                   f"{name} could be taken for the project {taken} {where}: choose a name that looks different")
        raise Conflict(message, [FieldError("name", message)])
    return name


def _check_placement(session: Session, workspace_id: int, project_id: int | None, parent: Project | None) -> None:
    if parent is not None and parent.workspace_id != workspace_id:
        raise invalid("parent", f"project {parent.id} is in another workspace: projects nest within one workspace")
    problem = tree.placement_problem(parent_map(session, workspace_id), project_id,
                                     parent.id if parent is not None else None)
    if problem:
        raise invalid("parent", problem)


def _save(session: Session, project: Project) -> None:
    """Write the project; a sibling of the same name written at the same moment (the unique indexes catch what the
    check before could not see) is the same 409 as one that existed before."""
    try:
        with session.begin_nested():
            session.add(project)
            session.flush()
    except IntegrityError:
        message = f"a project named {project.name} was just created under the same parent"
        raise Conflict(message, [FieldError("name", message)]) from None


def create_project(session: Session, workspace: Workspace, name: str, parent: Project | None = None,
                   description: str | None = None, created_by_id: int | None = None) -> Project:
    parent_id = parent.id if parent is not None else None
    _check_placement(session, workspace.id, None, parent)
    project = Project(workspace_id=workspace.id, parent_id=parent_id,
                      name=_check_name(session, workspace.id, parent_id, name), description=description,
                      created_by_id=created_by_id)
    _save(session, project)
    return project


def rename_project(session: Session, project: Project, name: str) -> None:
    project.name = _check_name(session, project.workspace_id, project.parent_id, name, project.id)
    _save(session, project)


def describe_project(session: Session, project: Project, description: str | None) -> None:
    project.description = description
    session.flush()


def move_project(session: Session, project: Project, parent: Project | None) -> None:
    """Put the project (with its sub-projects) under `parent`, or at the top of its workspace when None."""
    _check_placement(session, project.workspace_id, project.id, parent)
    parent_id = parent.id if parent is not None else None
    _check_name(session, project.workspace_id, parent_id, project.name, project.id)
    project.parent_id = parent_id
    _save(session, project)


@dataclass
class Contents:
    """What a project holds directly (sub-projects) and in its whole subtree (itself included)."""

    subprojects: int
    models: int
    datasets: int
    jobs: int
    subtree: list[int]

    def words(self) -> list[str]:
        counts = (("sub-project", self.subprojects), ("model version", self.models),
                  ("dataset version", self.datasets), ("job", self.jobs))
        return [f"{n} {what}{'s' if n != 1 else ''}" for what, n in counts if n]


def contents(session: Session, project: Project) -> Contents:
    subtree = [project.id, *tree.descendant_ids(parent_map(session, project.workspace_id), project.id)]

    def count(model) -> int:
        return session.scalar(select(func.count()).select_from(model).where(model.project_id.in_(subtree))) or 0

    return Contents(subprojects=len(subtree) - 1, models=count(ModelEntry), datasets=count(DatasetEntry),
                    jobs=sum(project_jobs.count_by_project(session, subtree).values()), subtree=subtree)


def counts(session: Session, project_ids: list[int]) -> dict[int, dict[str, int]]:
    """Direct counts per project (its own jobs, model and dataset names), for listings: three queries."""
    result = {pid: {"jobs": 0, "models": 0, "datasets": 0, "subprojects": 0} for pid in project_ids}
    if not project_ids:
        return result
    for key, model in (("models", ModelEntry), ("datasets", DatasetEntry)):
        rows = session.execute(select(model.project_id, func.count(func.distinct(model.name)))
                               .where(model.project_id.in_(project_ids)).group_by(model.project_id))
        for pid, n in rows:
            result[pid][key] = n
    for pid, n in project_jobs.count_by_project(session, project_ids).items():
        result[pid]["jobs"] = n
    for pid, n in session.execute(select(Project.parent_id, func.count()).where(Project.parent_id.in_(project_ids))
                                  .group_by(Project.parent_id)):
        result[pid]["subprojects"] = n
    return result


def delete_project(session: Session, project: Project, force: bool = False) -> Contents:
    """Delete the project (see the module's docstring for what force does); what it held."""
    held = contents(session, project)
    if held.words() and not force:
        message = (f"project {project.name} holds {', '.join(held.words())}: move or delete them first, or delete "
                   f"with force (sub-projects, models and datasets go with it; jobs stay without a project)")
        raise Conflict(message, [FieldError("project", message)])
    running = project_jobs.unfinished(session, held.subtree)
    if running:
        listed = ", ".join(f"job {j.id} ({j.state})" for j in running)
        message = f"project {project.name} has unfinished jobs: {listed}; cancel them or wait for them to end"
        raise Conflict(message, [FieldError("project", message)])
    project_jobs.detach(session, held.subtree)
    from allotment.access.service import forget_object  # access reads projects through this service

    forget_object(session, "project", held.subtree)  # the deleted projects' and entries' access rules go too
    for kind, model in (("model", ModelEntry), ("dataset", DatasetEntry)):
        forget_object(session, kind, session.scalars(select(model.id).where(model.project_id.in_(held.subtree))))
        session.execute(delete(model).where(model.project_id.in_(held.subtree))
                        .execution_options(synchronize_session=False))
    # Children before parents: the deepest first, so no row is ever left pointing at a deleted parent.
    for project_id in reversed(held.subtree):
        session.execute(delete(Project).where(Project.id == project_id).execution_options(synchronize_session=False))
    session.expunge(project)
    return held


def list_projects(session: Session, workspace_ids: set[int], search: str | None = None) -> list[tuple[Project, int]]:
    """The projects of these workspaces in tree order with their depth (0 for roots); with `search`, those whose
    name or description contains it (case-insensitive), with their ancestors so the tree still reads."""
    if not workspace_ids:
        return []
    projects = list(session.scalars(select(Project).where(Project.workspace_id.in_(workspace_ids))
                                    .order_by(Project.workspace_id, Project.name, Project.id)))
    by_id = {p.id: p for p in projects}
    parents = {p.id: p.parent_id for p in projects}
    keep = set(by_id)
    if search:
        needle = search.strip().lower()
        hits = [p.id for p in projects if needle in p.name.lower() or needle in (p.description or "").lower()]
        keep = {a for hit in hits for a in tree.ancestor_ids(parents, hit)}
    return [(by_id[pid], depth) for pid, depth in tree.flatten(parents, [p.id for p in projects]) if pid in keep]
