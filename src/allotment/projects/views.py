"""Projects, models and datasets as the API and the console show them: paths, counts and display names resolved in
a few queries for a whole listing."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from allotment.identity.models import User
from allotment.inventory.models import Cluster
from allotment.projects import artifacts
from allotment.projects import service as projects
from allotment.projects.models import Project
from allotment.workspaces.models import Workspace


def _names(session: Session, model, column, ids) -> dict[int, str]:
    ids = {i for i in ids if i is not None}
    if not ids:
        return {}
    return dict(session.execute(select(model.id, column).where(model.id.in_(ids))).all())


def workspace_labels(session: Session, workspace_ids: set[int]) -> dict[int, tuple[str, str]]:
    """Workspace id -> (workspace name, cluster name)."""
    if not workspace_ids:
        return {}
    rows = session.execute(select(Workspace.id, Workspace.name, Cluster.name).join(
        Cluster, Cluster.id == Workspace.cluster_id).where(Workspace.id.in_(workspace_ids)))
    return {wid: (name, cluster) for wid, name, cluster in rows}


def project_rows(session: Session, rows: list[tuple[Project, int]]) -> list[dict[str, Any]]:
    """Each (project, depth) as the API shows it, with its path, counts and direct sub-projects."""
    if not rows:
        return []
    ids = [p.id for p, _ in rows]
    workspace_ids = {p.workspace_id for p, _ in rows}
    paths = projects.paths(session, workspace_ids)
    labels = workspace_labels(session, workspace_ids)
    counts = projects.counts(session, ids)
    creators = _names(session, User, User.username, [p.created_by_id for p, _ in rows])
    children: dict[int, list[int]] = {}
    for child_id, parent_id in session.execute(select(Project.id, Project.parent_id)
                                               .where(Project.parent_id.in_(ids)).order_by(Project.name)):
        children.setdefault(parent_id, []).append(child_id)
    return [{"id": p.id, "name": p.name, "path": paths.get(p.id, p.name), "depth": depth, "parent_id": p.parent_id,
             "workspace": labels[p.workspace_id][0], "workspace_id": p.workspace_id,
             "cluster": labels[p.workspace_id][1], "description": p.description, "counts": counts[p.id],
             "created_by": creators.get(p.created_by_id), "created_at": p.created_at,
             "children": children.get(p.id, [])} for p, depth in rows]


def project_row(session: Session, project: Project) -> dict[str, Any]:
    depth = len(projects.ancestor_ids(session, project.id)) - 1
    return project_rows(session, [(project, depth)])[0]


def artifact_rows(session: Session, kind: str, rows: list[tuple[Any, int | None]]) -> list[dict[str, Any]]:
    """Each (entry, number of versions or None) as the API shows it."""
    if not rows:
        return []
    found = {p.id: p for p in session.scalars(select(Project).where(
        Project.id.in_({e.project_id for e, _ in rows})))}
    workspace_ids = {p.workspace_id for p in found.values()}
    paths = projects.paths(session, workspace_ids)
    labels = workspace_labels(session, workspace_ids)
    creators = _names(session, User, User.username, [e.created_by_id for e, _ in rows])
    out = []
    for entry, count in rows:
        workspace, cluster = labels[found[entry.project_id].workspace_id]
        out.append(artifacts.snapshot(entry, kind, paths.get(entry.project_id, ""), workspace, cluster, count,
                                      creators.get(entry.created_by_id)))
    return out
