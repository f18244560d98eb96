"""Jobs API: submit (single and batch), list, show, cancel, and read a job's output (logs). Any signed-in principal;
the service narrows who may submit to which quota and who sees which jobs, and core.permissions.JOB_READER who may
read a job's output. Submitting and cancelling wake the scheduler."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import fields
from operator import attrgetter
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from allotment.accounting import budgets
from allotment.api.deps import DB, State, client_address, require
from allotment.api.fields import IdPath, Limit, Offset, SchemaPattern
from allotment.audit import service as audit
from allotment.core import limits
from allotment.core.permissions import AUTHENTICATED, Principal
from allotment.scheduler.gcpause import gc_paused
from allotment.vaults import job_supplies
from allotment.workloads import logs, service
from allotment.workloads.models import STATES
from allotment.workloads.schemas import JobBatchIn, JobBatchOut, JobIn, JobList, JobLogEvent, JobLogOut, JobOut

router = APIRouter(tags=["jobs"])
Signed = Annotated[Principal, require(AUTHENTICATED)]


# The request's fields the service reads as they are (the body's own values, not a copy: model_dump would copy
# every job of a batch of hundreds once more), in the order of JobRequest's fields, which end with env and sealed_env.
_AS_GIVEN = tuple(f.name for f in fields(service.JobRequest))[:-2]
assert tuple(f.name for f in fields(service.JobRequest))[-2:] == ("env", "sealed_env")
_given = attrgetter(*_AS_GIVEN)


def _request(db: DB, principal: Principal, state: State, body: JobIn, prefix: str = "") -> service.JobRequest:
    """The service's request, with the variables of the storage targets the job names (vaults/job_supplies.py)."""
    if not body.targets:  # by position: a batch builds hundreds
        return service.JobRequest(*_given(body), body.env)
    env, sealed = job_supplies.environment_with_targets(db, principal, state.secret_key, body.targets, body.env,
                                                        prefix)
    return service.JobRequest(*_given(body), env, sealed)


@router.post("/jobs", response_model=JobOut, status_code=201)
def submit(body: JobIn, principal: Signed, db: DB, state: State, request: Request) -> JobOut:
    job = service.submit(db, principal, _request(db, principal, state, body))
    job.config_file = job_supplies.config_text(db, job.owner_id)
    if state.settings.budget_when_spent == "refuse":  # otherwise such a job waits (accounting/gate.py)
        budgets.refuse_if_spent(db, [job.id], time.time())
    audit.record(db, principal, "job.submit", "job", body.name or f"job {job.id}", job.id,
                 changes={"after": {"quota": body.quota, "gpu": str(body.gpu or ""), "profile": body.profile,
                                    "env": job_supplies.audit_env(db, job.owner_id, job_supplies.job_env(job, state.secret_key))}},
                 source=client_address(request))
    state.scheduler_wakeup.set()
    return JobOut.of(job, service.names_for(db, [job]))


@router.post("/jobs/batch", response_model=JobBatchOut, status_code=201)
def submit_batch(body: JobBatchIn, principal: Signed, db: DB, state: State, request: Request) -> JobBatchOut:
    """All or nothing: every job is validated first (errors name jobs.N.field); returns the new ids in order."""
    config = job_supplies.config_text(db, principal.id)  # every job of a batch has the caller as its owner
    with gc_paused():  # thousands of short-lived objects, no cycles among them (scheduler/gcpause.py)
        ids = service.submit_batch(db, principal, [_request(db, principal, state, j, f"jobs.{i}.")
                                                   for i, j in enumerate(body.jobs)], config_file=config)
    if state.settings.budget_when_spent == "refuse":
        budgets.refuse_if_spent(db, ids, time.time())
    audit.record(db, principal, "job.submit_batch", "job", f"{len(ids)} jobs", ids[0],
                 changes={"after": {"count": len(ids), "first_id": ids[0], "last_id": ids[-1]}},
                 source=client_address(request))
    state.scheduler_wakeup.set()
    return JobBatchOut(ids=ids, total=len(ids))


_ONE_STATE = f"(?:{'|'.join(STATES)}) *"
# What service.list_jobs reads: job states separated by commas, with spaces around them; the service checks it and names
# the unknown states and the known ones, the schema states it.
STATE_FILTER_REGEX = f"^ *(?:{_ONE_STATE})?(?:, *(?:{_ONE_STATE})?)*$"
StateFilter = Annotated[str | None, Query(description="one or more job states, comma-separated"),
                        SchemaPattern(STATE_FILTER_REGEX)]


@router.get("/jobs", response_model=JobList)
def list_jobs(principal: Signed, db: DB, state: StateFilter = None,
              quota: str | None = None, owner: str | None = None, limit: Limit(1000) = 50,
              offset: Offset = 0, cluster: str | None = None,
              pool: str | None = Query(None, description="the pool a job was pinned to or placed in")) -> JobList:
    """Users see their own jobs; cluster managers and admins every job of their clusters."""
    jobs, total = service.list_jobs(db, principal, state, quota, owner, limit, offset, cluster=cluster, pool=pool)
    names = service.names_for(db, jobs)
    return JobList(items=[JobOut.of(j, names) for j in jobs], total=total)


@router.get("/jobs/{job_id}", response_model=JobOut)
def get_job(job_id: IdPath, principal: Signed, db: DB, state: State) -> JobOut:
    """A queued job's reason comes from the scheduler's state of now when the loop runs in this process (stored
    reasons of jobs queued behind their group's head are refreshed only when the reason's code changes)."""
    job = service.find_job(db, principal, job_id)
    out = JobOut.of(job, service.names_for(db, [job]))
    if logs.readable(db, principal, job):  # those who may read its output, where its values could be printed anyway
        out.environment = job_supplies.masked_env(db, job.owner_id, job_supplies.job_env(job, state.secret_key))
    scheduler = state.extras.get("scheduler")
    if job.state == "queued" and scheduler is not None:
        live = scheduler.explain(job.cluster_id, job.id)
        if live is not None:
            out.reason_code, out.reason = live
    return out


@router.post("/jobs/{job_id}/cancel", response_model=JobOut)
def cancel(job_id: IdPath, principal: Signed, db: DB, state: State, request: Request) -> JobOut:
    job = service.find_job(db, principal, job_id)
    before = job.state
    service.cancel(db, principal, job)
    audit.record(db, principal, "job.cancel", "job", job.name or f"job {job.id}", job.id,
                 changes=audit.diff({"state": before}, {"state": job.state}), source=client_address(request))
    state.scheduler_wakeup.set()
    return JobOut.of(job, service.names_for(db, [job]))


NDJSON = "application/x-ndjson"
LogOffset = Annotated[int, Query(ge=0, le=limits.MAX_AMOUNT, description="the byte offset to read from: 0, or the "
                                                                         "next_offset of the previous answer")]
LogLimit = Annotated[int, Query(ge=1, le=logs.MAX_CHUNK, description="at most this many bytes (up to 3 more to "
                                                                      "finish a UTF-8 character)")]
Follow = Annotated[bool, Query(description="stream the output as it is written, as application/x-ndjson lines "
                                           "(JobLogEvent), until the job has ended and its log is drained")]


@router.get("/jobs/{job_id}/logs", response_model=JobLogOut, responses={200: {
    "description": "A chunk of the output (application/json, JobLogOut); with follow=true a stream of "
                   "JobLogEvent lines (application/x-ndjson)",
    "content": {NDJSON: {"schema": JobLogEvent.model_json_schema()}}}})
def job_logs(job_id: IdPath, principal: Signed, db: DB, state: State, offset: LogOffset = 0,
             limit: LogLimit = logs.DEFAULT_CHUNK, follow: Follow = False) -> JobLogOut | StreamingResponse:
    """A job's output from any engine, by byte offset. Its owner, its cluster's managers and admins and platform
    admins may read it; to others the job does not exist (404, as GET /jobs/{id}). A job that has not started, or a
    simulated one, has an empty log with a note saying why. A follow ends after an hour at most, or when the server
    stops (event `resume`): follow again from its next_offset."""
    job = logs.find_readable_job(db, principal, job_id)
    if not follow:
        return JobLogOut(**vars(logs.read_job_log(db, state.settings, job, offset, limit)))
    source = logs.job_log_source(db, state.settings, job)
    exists = source.path is not None and source.path.is_file()
    start = {"event": "start", "next_offset": offset, "state": job.state,
             "note": logs.log_note(state.settings, job, source, exists)}
    events = logs.follow_log(source, offset, logs.state_reader(state.sessions, job.id),
                             stopping=state.extras.get("stopping"),
                             hidden=job_supplies.hidden_values(db, job.owner_id, job_supplies.job_env(job, state.secret_key)))
    # The stream runs on the event loop after this function returned: the request's session is closed by then.
    return StreamingResponse(_ndjson(start, events), media_type=NDJSON,
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


async def _ndjson(first: dict, events: AsyncIterator[dict]) -> AsyncIterator[bytes]:
    yield _line(first)
    async for event in events:
        yield _line(event)


def _line(event: dict) -> bytes:
    return (json.dumps({k: v for k, v in event.items() if v is not None}, ensure_ascii=False) + "\n").encode()
