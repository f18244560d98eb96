"""Projects of a workspace: a tree (core.projects says how deep and what makes a cycle). Names are unique among
siblings. A project owns jobs, registered models and registered datasets (projects/artifacts.py).

Deleting a project that holds sub-projects, models, datasets or jobs is refused (409) naming what it holds. Forced,
it deletes the project with its sub-projects and their models and datasets (entries only: no file is touched), and
the jobs of the deleted projects stay, without a project; still refused while any of those jobs is unfinished, so no
running work loses its project under it."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from allotment.core import projects as tree
from allotment.core.names import as_id
from allotment.projects.models import Project


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
    """The project's path from its root, e.g. 'vision/detection/yolo'."""
    return "/".join(p.name for p in reversed(ancestors(session, project)))


def get_project(session: Session, project_id: int) -> Project:
    from allotment.errors import NotFound

    project = session.get(Project, project_id)
    if project is None:
        raise NotFound(f"no project {project_id}")
    return project


def count_children(session: Session, project_id: int) -> int:
    return session.scalar(select(func.count()).select_from(Project).where(Project.parent_id == project_id)) or 0


def find_in_workspace(session: Session, workspace_id: int, ref: str | int) -> Project | None:
    """A project of the workspace by path ('a/b'), or by id; None when nothing matches."""
    text = str(ref).strip()
    parent_id: int | None = None
    found: Project | None = None
    names = tree.split_path(text)
    for name in names:
        found = session.scalar(select(Project).where(Project.workspace_id == workspace_id,
                                                     Project.parent_id.is_(None) if parent_id is None
                                                     else Project.parent_id == parent_id,
                                                     Project.name == name))
        if found is None:
            break
        parent_id = found.id
    if found is None and as_id(text):
        found = session.scalar(select(Project).where(Project.workspace_id == workspace_id,
                                                     Project.id == as_id(text)))
    return found
