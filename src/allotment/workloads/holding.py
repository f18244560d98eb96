"""The jobs that hold resources now (admitted or running), as a statement other domains put in their own: the usage
report's live jobs are the open intervals of these (accounting/service.py). Read through the index of active jobs,
which holds the queue, not the history."""

from __future__ import annotations

from sqlalchemy import Select, select

from allotment.workloads.models import HOLDING_STATES, Job, active


def holding_job_ids() -> Select:
    return select(Job.id).where(active(*HOLDING_STATES))
