"""Jobs: the list with filters by state, cluster, pool, quota and owner (users see their own; cluster managers and
admins their clusters'), wait and run times, cancel from a row or of every ticked job, and a table that refreshes
itself (htmx polls the page for the table alone while the tab is visible and nothing is ticked); a job's detail with
the reason it waits and where it runs (pool, nodes and GPUs) and a live tail of its output, cancel, and a submission
form beside the user's remaining allowance, with the job's shape (GPUs or a share of one, CPU and memory, nodes and
GPUs per node, the GPU models it accepts, a profile or a pinned pool): the same checks and audit record as
POST /api/v1/jobs.

The tail: the page shows the end of the log, and htmx asks /ui/jobs/{id}/log for what follows from the offset it
reached (every POLL_S seconds, at once while a backlog remains); each answer is the new text (escaped) and the next
poll, or no poll once the job has ended and its log is drained."""

from __future__ import annotations

import shlex
from datetime import datetime, timedelta
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import Response

from allotment.api.deps import DB, State, client_address, require
from allotment.api.fields import IdPath, Limit, PageNumber
from allotment.audit import service as audit
from allotment.core import limits
from allotment.core.permissions import AUTHENTICATED, Principal
from allotment.db import utcnow
from allotment.errors import DomainError, NotFound, ValidationFailed
from allotment.identity.service import find_user
from allotment.policies import service as policies
from allotment.vaults import job_supplies
from allotment.web import allowance_view
from allotment.web.console import field_errors, is_htmx, redirect, render, safe_next
from allotment.web.paging import Page, fetch_page
from allotment.workloads import logs
from allotment.workloads import service as workloads
from allotment.workloads.models import FINAL_STATES, STATES
from allotment.workloads.schemas import JobOut

router = APIRouter()
Signed = Annotated[Principal, require(AUTHENTICATED)]
TAIL_BYTES = 64 * 1024  # what the page shows at first, and the most one poll brings
POLL_S = 2
MAX_BULK = 200  # jobs one bulk cancel handles
LogOffset = Annotated[int, Query(ge=0, le=limits.MAX_AMOUNT)]


FILTERS = ("state", "quota", "owner", "cluster", "pool")
# The filter a lookup's "no <kind> '<name>'" refusal is about: shown under that filter, not as a full-page 404.
_NOT_FOUND_FIELD = {"quota": "quota", "user": "owner", "cluster": "cluster", "pool": "pool"}
REFRESH_S = 5


def _waited(job: JobOut, now: datetime) -> timedelta | None:
    """How long the job queued: until it was admitted (or ended without running), or until now while it waits."""
    until = job.admitted_at or job.started_at or job.finished_at or (now if job.state == "queued" else None)
    return until - job.submitted_at if until else None


def _ran(job: JobOut, now: datetime) -> timedelta | None:
    """How long it has run: from its start to its end, or to now while it runs."""
    if job.started_at is None:
        return None
    return (job.finished_at or now) - job.started_at


def span_text(span: timedelta | None) -> str:
    """"45 s", "12 min", "3 h 05 min", "2 d 4 h"; an em dash when there is none."""
    if span is None:
        return "—"
    seconds = max(0, int(span.total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours = minutes // 60
    if hours < 24:
        return f"{hours} h {minutes % 60:02d} min"
    return f"{hours // 24} d {hours % 24} h"


@router.get("/ui/jobs")
def jobs_page(request: Request, principal: Signed, db: DB, state: str = "", quota: str = "", owner: str = "",
              cluster: str = "", pool: str = "", page: PageNumber = 1) -> Response:
    """The list; an htmx poll from the page itself (HX-Target jobs-rows) gets only the table, for the refresh."""
    paging = Page.at(page)
    values = {"state": state, "quota": quota, "owner": owner, "cluster": cluster, "pool": pool}
    errors: dict[str, list[str]] = {}
    try:
        jobs, paging = fetch_page(page, lambda limit, offset: workloads.list_jobs(
            db, principal, state or None, quota or None, owner or None, limit, offset, cluster=cluster or None,
            pool=pool or None))
    except ValidationFailed as exc:
        jobs, errors = [], field_errors(exc.errors)
    except NotFound as exc:
        kind = exc.detail.split(" ")[1] if exc.detail.startswith("no ") else ""
        jobs, errors = [], {_NOT_FOUND_FIELD.get(kind, "request"): [exc.detail]}
    names = workloads.names_for(db, jobs)
    now = utcnow()
    rows = [JobOut.of(j, names) for j in jobs]
    query = urlencode({k: v for k, v in values.items() if v})
    context = {
        "jobs": rows, "waits": {j.id: span_text(_waited(j, now)) for j in rows},
        "runs": {j.id: span_text(_ran(j, now)) for j in rows}, "values": values, "errors": errors,
        "states": STATES, "final_states": FINAL_STATES, "page": paging, "refresh_s": REFRESH_S,
        "pager_base": f"/ui/jobs?{query}&" if query else "/ui/jobs?",
        "refresh_url": f"/ui/jobs?{urlencode({k: v for k, v in values.items() if v} | {'page': paging.number})}",
    }
    status = 422 if errors else 200
    if is_htmx(request) and request.headers.get("hx-target") == "jobs-rows":
        return render(request, "_jobs_table.html", context, status=status)
    return render(request, "jobs.html", context, status=status)


JobIds = Annotated[list[int], Form(default_factory=list)]


@router.post("/ui/jobs/cancel")
def cancel_jobs(request: Request, principal: Signed, db: DB, state: State, job_ids: JobIds,
                only: Annotated[int | None, Form()] = None, back: Annotated[str, Form()] = "/ui/jobs") -> Response:
    """Cancel the checked jobs (or `only` the one whose row button was pressed), each through the same service,
    audit record and wake-up as POST /api/v1/jobs/{id}/cancel; one line per job says what became of it."""
    wanted = [only] if only is not None else list(dict.fromkeys(job_ids))
    if not wanted:
        return redirect(safe_next(back), notice="No job was selected: tick the jobs to cancel.")
    results = []
    for job_id in wanted[:MAX_BULK]:
        try:  # both refuse before changing anything (unknown or hidden job; one that has ended)
            job = workloads.find_job(db, principal, job_id)
            before = job.state
            workloads.cancel(db, principal, job)
        except DomainError as exc:
            results.append(f"Job {job_id}: {exc.detail}.")
            continue
        audit.record(db, principal, "job.cancel", "job", job.name or f"job {job.id}", job.id,
                     changes=audit.diff({"state": before}, {"state": job.state}), source=client_address(request))
        results.append(f"Job {job_id} cancelled." if job.state == "cancelled"
                       else f"Job {job_id} is being stopped.")
    if len(wanted) > MAX_BULK:
        results.append(f"Only the first {MAX_BULK} were handled; select fewer at a time.")
    state.scheduler_wakeup.set()
    return redirect(safe_next(back), notice=" ".join(results), request=request)


def _submit_page(request: Request, db: DB, principal: Principal, values: dict, errors: dict | None = None,
                 status: int = 200) -> Response:
    """The form, with the signed-in user's remaining allowance under their resource policy beside it and the
    sliders stopping at what remains (the service still checks every submission)."""
    allowance = policies.allowance(db, find_user(db, principal.id))
    return render(request, "job_new.html", {
        "values": values, "errors": errors or {}, "allowance": allowance,
        "indicator": allowance_view.indicator(allowance), "slider_max": allowance_view.slider_max(allowance),
    }, status=status)


@router.get("/ui/jobs/new")
def new_job_page(request: Request, principal: Signed, db: DB) -> Response:
    return _submit_page(request, db, principal, {})


@router.post("/ui/jobs/new")
def submit_job(request: Request, principal: Signed, db: DB, state: State, quota: Annotated[str, Form()] = "",
               command: Annotated[str, Form()] = "", gpu: Annotated[str, Form()] = "",
               cpu: Annotated[str, Form()] = "", memory: Annotated[str, Form()] = "",
               nodes: Annotated[str, Form()] = "", gpus_per_node: Annotated[str, Form()] = "",
               gpu_models: Annotated[str, Form()] = "", profile: Annotated[str, Form()] = "",
               pool: Annotated[str, Form()] = "", priority_class: Annotated[str, Form()] = "",
               time_limit: Annotated[str, Form()] = "", name: Annotated[str, Form()] = "") -> Response:
    """The form's text as the API reads it (the service checks every field and names the field of each problem)."""
    values = {"quota": quota, "command": command, "gpu": gpu, "cpu": cpu, "memory": memory, "nodes": nodes,
              "gpus_per_node": gpus_per_node, "gpu_models": gpu_models, "profile": profile, "pool": pool,
              "priority_class": priority_class, "time_limit": time_limit, "name": name}
    errors: dict[str, list[str]] = {}
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        argv, errors["command"] = [], [f"cannot be read as a command line ({exc})"]
    count = None
    if nodes.strip():
        count = int(nodes) if nodes.strip().isdigit() and len(nodes.strip()) < 6 else None
        if count is None:
            errors["nodes"] = ["must be a whole number such as 2"]
    if errors:
        return _submit_page(request, db, principal, values, errors, 422)
    text = {k: (v.strip() or None) for k, v in values.items() if k not in ("command", "nodes")}
    try:
        job = workloads.submit(db, principal, workloads.JobRequest(command=argv, nodes=count, **text))
        job.config_file = job_supplies.config_text(db, job.owner_id)
    except DomainError as exc:
        if not exc.errors:
            raise
        # Refusals about the form's fields are the form's errors, shown under them (422) whatever the API answers
        # (a quota the user may not use is 403 there): the page itself is open to every signed-in user.
        return _submit_page(request, db, principal, values, field_errors(exc.errors), 422)
    audit.record(db, principal, "job.submit", "job", job.name or f"job {job.id}", job.id,
                 changes={"after": {"quota": quota, "gpu": gpu, "profile": profile or None}},
                 source=client_address(request))
    state.scheduler_wakeup.set()
    return redirect(f"/ui/jobs/{job.id}", notice=f"Job {job.id} submitted: {job.reason}.")


@router.get("/ui/jobs/{job_id}")
def job_page(request: Request, principal: Signed, db: DB, state: State, job_id: IdPath) -> Response:
    job = workloads.find_job(db, principal, job_id)
    log, start = None, 0
    may_read = logs.readable(db, principal, job)
    if may_read:
        start = max(0, logs.log_size(logs.job_log_source(db, state.settings, job)) - TAIL_BYTES)
        log = logs.read_job_log(db, state.settings, job, start, TAIL_BYTES)
    environment = job_supplies.masked_env(db, job.owner_id, job_supplies.job_env(job, state.secret_key)) if may_read else None
    return render(request, "job.html", {"job": JobOut.of(job, workloads.names_for(db, [job])), "environment": environment,
                                        "final_states": FINAL_STATES, "log": log, "log_cut": start > 0,
                                        "tail_kib": TAIL_BYTES // 1024, "poll_s": POLL_S})


@router.get("/ui/jobs/{job_id}/log")
def job_log_fragment(request: Request, principal: Signed, db: DB, state: State, job_id: IdPath,
                     offset: LogOffset = 0, limit: Limit(TAIL_BYTES) = TAIL_BYTES) -> Response:
    """What the job wrote from `offset` on, and the next poll (htmx replaces the previous poll with it)."""
    job = logs.find_readable_job(db, principal, job_id)
    log = logs.read_job_log(db, state.settings, job, offset, limit)
    return render(request, "_job_log_chunk.html", {"log": log, "poll_s": POLL_S, "oob_note": True})


@router.post("/ui/jobs/{job_id}/cancel")
def cancel_job(request: Request, principal: Signed, db: DB, state: State, job_id: IdPath) -> Response:
    job = workloads.find_job(db, principal, job_id)
    before = job.state
    workloads.cancel(db, principal, job)
    # The same record and wake-up as POST /api/v1/jobs/{id}/cancel.
    audit.record(db, principal, "job.cancel", "job", job.name or f"job {job.id}", job.id,
                 changes=audit.diff({"state": before}, {"state": job.state}), source=client_address(request))
    state.scheduler_wakeup.set()
    message = (f"Job {job.id} cancelled." if job.state == "cancelled"
               else f"Job {job.id} is being stopped; it ends cancelled once the backend has stopped it.")
    return redirect(f"/ui/jobs/{job.id}", notice=message, request=request)
