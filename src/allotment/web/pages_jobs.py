"""Jobs: the list with a state filter (users see their own; cluster managers and admins their clusters'), a job's
detail with the reason it waits and where it runs, and cancel. Submitting stays with the CLI and the API."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response

from allotment.api.deps import DB, State, client_address, require
from allotment.api.fields import IdPath, PageNumber
from allotment.audit import service as audit
from allotment.core.permissions import AUTHENTICATED, Principal
from allotment.errors import ValidationFailed
from allotment.web.console import field_errors, redirect, render
from allotment.web.paging import Page
from allotment.workloads import service as workloads
from allotment.workloads.models import FINAL_STATES, STATES
from allotment.workloads.schemas import JobOut

router = APIRouter()
Signed = Annotated[Principal, require(AUTHENTICATED)]


@router.get("/ui/jobs")
def jobs_page(request: Request, principal: Signed, db: DB, state: str = "", quota: str = "", owner: str = "",
              page: PageNumber = 1) -> Response:
    paging = Page.at(page)
    values = {"state": state, "quota": quota, "owner": owner}
    errors: dict[str, list[str]] = {}
    try:
        jobs, total = workloads.list_jobs(db, principal, state or None, quota or None, owner or None, paging.size,
                                          paging.offset)
    except ValidationFailed as exc:
        jobs, total, errors = [], 0, field_errors(exc.errors)
    names = workloads.names_for(db, jobs)
    query = urlencode({k: v for k, v in values.items() if v})
    return render(request, "jobs.html", {
        "jobs": [JobOut.of(j, names) for j in jobs], "values": values, "errors": errors, "states": STATES,
        "final_states": FINAL_STATES, "page": paging.with_total(total),
        "pager_base": f"/ui/jobs?{query}&" if query else "/ui/jobs?",
    }, status=422 if errors else 200)


@router.get("/ui/jobs/{job_id}")
def job_page(request: Request, principal: Signed, db: DB, job_id: IdPath) -> Response:
    job = workloads.find_job(db, principal, job_id)
    return render(request, "job.html", {"job": JobOut.of(job, workloads.names_for(db, [job])),
                                        "final_states": FINAL_STATES})


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
