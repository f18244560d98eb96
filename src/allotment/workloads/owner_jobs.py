"""A user's unfinished jobs when their account or their access changes: what deactivation must list, and the
cancellations that follow a deactivation with `stop_jobs` or the loss of access to a cluster.

Every cancellation goes through service.cancel (queued and preempted jobs end at once; admitted and running ones are
marked for the scheduler, which has their engine stop them) and is audited as `job.cancel`, like a user's own, with
the reason kept on the job.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from allotment.audit import service as audit
from allotment.core.permissions import Principal
from allotment.inventory.models import Cluster
from allotment.workloads import service
from allotment.workloads.models import ACTIVE_STATES, HOLDING_STATES, PREEMPTED, QUEUED, Job, active

WAITING_STATES = (QUEUED, PREEMPTED)


def jobs_of(session: Session, owner_id: int, states: tuple[str, ...], cluster_id: int | None = None) -> list[Job]:
    query = select(Job).where(Job.owner_id == owner_id, active(*states))
    if cluster_id is not None:
        query = query.where(Job.cluster_id == cluster_id)
    return list(session.scalars(query.order_by(Job.id)))


def holding_jobs(session: Session, owner_id: int) -> list[Job]:
    """The owner's admitted and running jobs: those that hold GPUs now (deactivation refuses while there are any)."""
    return jobs_of(session, owner_id, HOLDING_STATES)


def describe(session: Session, jobs: list[Job]) -> list[str]:
    """'job 12 (bert, running on local)' for each job, for refusals and audit records."""
    clusters = dict(session.execute(select(Cluster.id, Cluster.name)
                                    .where(Cluster.id.in_({j.cluster_id for j in jobs}))).all()) if jobs else {}
    return [f"job {j.id} ({j.name + ', ' if j.name else ''}{j.state} on {clusters.get(j.cluster_id, j.cluster_id)})"
            for j in jobs]


def _cancel(session: Session, actor: Principal, jobs: list[Job], reason: str, source: str | None) -> list[Job]:
    for job in jobs:
        before = job.state
        service.cancel(session, actor, job)
        job.reason = f"{job.reason} ({reason})"
        audit.record(session, actor, "job.cancel", "job", job.name or f"job {job.id}", job.id,
                     changes={"before": {"state": before}, "after": {"state": job.state, "reason": reason}},
                     source=source)
    session.flush()
    return jobs


def stop_all(session: Session, actor: Principal, owner_id: int, reason: str, source: str | None) -> list[Job]:
    """Cancel every unfinished job of the owner (deactivation with stop_jobs)."""
    return _cancel(session, actor, jobs_of(session, owner_id, ACTIVE_STATES), reason, source)


def cancel_waiting(session: Session, actor: Principal, owner_id: int, cluster_id: int | None, reason: str,
                   source: str | None) -> list[Job]:
    """Cancel the owner's jobs that wait for admission (queued, or preempted and about to be requeued), on one
    cluster or on all (None): after losing access they must not start. Jobs already running keep running."""
    return _cancel(session, actor, jobs_of(session, owner_id, WAITING_STATES, cluster_id), reason, source)
