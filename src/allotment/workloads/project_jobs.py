"""The jobs of projects, for the projects domain: counts, the unfinished ones (a forced project deletion refuses
while there are any), a project's latest jobs, and detaching the jobs of deleted projects (they stay, without one)."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from allotment.workloads.models import ACTIVE_STATES, Job


def count_by_project(session: Session, project_ids: Collection[int]) -> dict[int, int]:
    if not project_ids:
        return {}
    rows = session.execute(select(Job.project_id, func.count()).where(Job.project_id.in_(list(project_ids)))
                           .group_by(Job.project_id))
    return {project_id: count for project_id, count in rows}


def unfinished(session: Session, project_ids: Collection[int], limit: int = 20) -> list[Job]:
    """Queued, admitted, running or preempted jobs of the projects, oldest first."""
    if not project_ids:
        return []
    return list(session.scalars(select(Job).where(Job.project_id.in_(list(project_ids)),
                                                  Job.state.in_(ACTIVE_STATES)).order_by(Job.id).limit(limit)))


def latest(session: Session, project_id: int, limit: int = 50) -> list[Job]:
    return list(session.scalars(select(Job).where(Job.project_id == project_id).order_by(Job.id.desc())
                                .limit(limit)))


def detach(session: Session, project_ids: Collection[int]) -> int:
    """The jobs of these projects lose their project (the projects are being deleted); how many did."""
    if not project_ids:
        return 0
    result = session.execute(update(Job).where(Job.project_id.in_(list(project_ids))).values(project_id=None)
                             .execution_options(synchronize_session=False))
    return result.rowcount or 0
