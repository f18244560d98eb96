"""Accounting API: usage reports and live usage, the usage CSV export, users' hour quotas (Neu.ro), budgets on the
quota tree and usage recalculation. Every signed-in principal may ask for reports: the service narrows them to what
the caller may see (their own usage; every user's on clusters they manage; everything for platform admins)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session

from allotment.accounting import budgets, exports, recalculate, service
from allotment.accounting.schemas import (
    BudgetIn,
    BudgetList,
    BudgetOut,
    EngineCorrectionOut,
    HourQuotaAdd,
    HourQuotaIn,
    HourQuotaOut,
    HourQuotaReport,
    IntervalOut,
    LiveUsageList,
    PoolCapacityList,
    RecalculationOut,
    UsageReport,
)
from allotment.api.deps import DB, State, client_address, cluster_scope, require
from allotment.api.fields import IsoDateTime
from allotment.audit import service as audit
from allotment.core import budgets as core
from allotment.core.permissions import AUTHENTICATED, PLATFORM_ADMIN, Principal, cluster
from allotment.errors import FieldError, NotFound, ValidationFailed
from allotment.identity.service import find_user
from allotment.inventory.service import find_cluster
from allotment.quotas.routes import quota_scope
from allotment.quotas.service import find_quota

router = APIRouter(tags=["accounting"])
ADMIN = cluster("admin")

def _epoch(value: datetime | None, default: float) -> float:
    if value is None:
        return default
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


def _window(db: Session, principal: Principal, start: datetime | None, end: datetime | None,
            cluster_name: str | None, user: str | None, now: float) -> service.Window:
    month = datetime.fromtimestamp(now, UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    lo, hi = _epoch(start, month.timestamp()), _epoch(end, now)
    if hi <= lo:
        raise ValidationFailed("to must be after from", [FieldError("to", "must be after from")])
    visible, own = service.visible_to(principal)
    return service.Window(lo, hi, find_cluster(db, cluster_name).id if cluster_name else None,
                          find_user(db, user).id if user else None, visible, own)


From = Annotated[IsoDateTime | None, Query(alias="from", description="ISO 8601 date or time, inclusive (UTC when "
                                                                      "no zone is given); default: this month's start")]
To = Annotated[IsoDateTime | None, Query(alias="to", description="ISO 8601, exclusive; default: now")]
ClusterQ = Annotated[str | None, Query(alias="cluster", max_length=64, description="only this cluster")]
UserQ = Annotated[str | None, Query(alias="user", max_length=255, description="only this user's jobs")]


@router.get("/usage", response_model=UsageReport, response_model_by_alias=True)
def usage_report(principal: Annotated[Principal, require(AUTHENTICATED)], db: DB, start: From = None, end: To = None,
                 by: Annotated[str, Query(description=f"one of {', '.join(service.DIMENSIONS)}")] = "user",
                 cluster_name: ClusterQ = None, user: UserQ = None,
                 top: Annotated[int | None, Query(ge=1, le=10000, description="only the largest consumers")] = None,
                 ) -> UsageReport:
    """GPU-, CPU- and memory-hours per user, group, workspace, quota (a job counts on its quota and every ancestor),
    pool, device model, cluster, day or month; running jobs count up to now. Largest GPU use first."""
    now = time.time()
    w = _window(db, principal, start, end, cluster_name, user, now)
    items = service.rollup(db, by, w, now)
    if top is not None:
        items = items[:top]
    return UsageReport(by=by, start=datetime.fromtimestamp(w.start, UTC), end=datetime.fromtimestamp(w.end, UTC),
                       items=items, total=len(items))


@router.get("/usage/pools", response_model=PoolCapacityList)
def pool_capacity(principal: Annotated[Principal, require(AUTHENTICATED)], db: DB, start: From = None,
                  end: To = None, cluster_name: ClusterQ = None) -> PoolCapacityList:
    """Each pool's GPU-hours allocated to jobs against its capacity, per day (what the caller may see)."""
    now = time.time()
    w = _window(db, principal, start, end, cluster_name, None, now)
    if min(w.end, now) - w.start > 366 * 86400:
        raise ValidationFailed("from: a day-by-day report spans at most 366 days",
                               [FieldError("from", "at most 366 days before to")])
    items = service.pool_capacity(db, w, now)
    return PoolCapacityList(items=items, total=len(items))


@router.get("/usage/live", response_model=LiveUsageList)
def live_usage(principal: Annotated[Principal, require(AUTHENTICATED)], db: DB, cluster_name: ClusterQ = None,
               user: UserQ = None) -> LiveUsageList:
    """Jobs holding resources now, with what each has used so far."""
    now = time.time()
    w = _window(db, principal, None, None, cluster_name, user, now)
    items = service.live(db, w, now)
    return LiveUsageList(items=items, total=len(items))


@router.get("/exports/usage.csv", response_class=StreamingResponse)
def export_usage(principal: Annotated[Principal, require(AUTHENTICATED)], db: DB, request: Request,
                 start: From = None, end: To = None, cluster_name: ClusterQ = None, user: UserQ = None,
                 filename: exports.FileName = None) -> StreamingResponse:
    """Every usage interval of the window the caller may see, oldest first, streamed (bounded memory)."""
    now = time.time()
    w = _window(db, principal, start, end, cluster_name, user, now)
    return StreamingResponse(_streamed(request, w, now), media_type="text/csv; charset=utf-8",
                             headers=exports.attachment(filename or "usage.csv"))


def _streamed(request: Request, w: service.Window, now: float) -> Iterator[str]:
    with request.app.state.allot.sessions() as db:
        yield from service.csv_lines(db, w, now)


# -- users' hour quotas (Neu.ro) ------------------------------------------------------------------------------------
def _quota_out(user: str, cluster_name: str, q: budgets.HourQuota) -> HourQuotaOut:
    gpu, cpu = core.minutes_text(q.gpu_s), core.minutes_text(q.cpu_s)
    return HourQuotaOut(user=user, cluster=cluster_name, gpu=gpu, cpu=cpu,
                        lines=[f"New quotas for {user} on cluster {cluster_name}:", f"GPU: {gpu}", f"CPU: {cpu}"])


@router.get("/clusters/{cluster}/user-quotas/{user}", response_model=HourQuotaReport)
def show_user_quota(cluster: str, user: str, principal: Annotated[Principal, require(AUTHENTICATED)],
                    db: DB) -> HourQuotaReport:
    """What the user spent on the cluster, the quota and what is left. The user, the cluster's managers and admins
    and platform admins may ask."""
    c, u = find_cluster(db, cluster), find_user(db, user)
    budgets.check_reader(principal, c.id, u.id)
    report = budgets.user_quota_report(db, c.id, u.id, time.time())
    return HourQuotaReport(user=u.username, cluster=c.name, **report)


@router.put("/clusters/{cluster}/user-quotas/{user}", response_model=HourQuotaOut)
def set_user_quota(cluster: str, user: str, body: HourQuotaIn,
                   principal: Annotated[Principal, require(ADMIN, scope=cluster_scope())], db: DB,
                   request: Request) -> HourQuotaOut:
    """Set the user's GPU- and CPU-hour quota; an amount left out is unlimited (Neu.ro's set-user-quota)."""
    c, u = find_cluster(db, cluster), find_user(db, user)
    q = budgets.set_user_quota(db, c.id, u.id, budgets.amount("gpu", body.gpu), budgets.amount("cpu", body.cpu))
    audit.record(db, principal, "user_quota.set", "user", u.username, u.id,
                 changes={"cluster": c.name, "gpu_s": q.gpu_s, "cpu_s": q.cpu_s}, source=client_address(request))
    return _quota_out(u.username, c.name, q)


@router.post("/clusters/{cluster}/user-quotas/{user}/add", response_model=HourQuotaOut)
def add_user_quota(cluster: str, user: str, body: HourQuotaAdd,
                   principal: Annotated[Principal, require(ADMIN, scope=cluster_scope())], db: DB,
                   request: Request) -> HourQuotaOut:
    """Add hours to the user's current quota (Neu.ro's add-user-quota); an unlimited quota stays unlimited."""
    c, u = find_cluster(db, cluster), find_user(db, user)
    gpu, cpu = budgets.amount("gpu", body.gpu), budgets.amount("cpu", body.cpu)
    if gpu is None and cpu is None:
        raise ValidationFailed("give the hours to add", [FieldError("gpu", "give gpu or cpu hours to add")])
    q = budgets.add_user_quota(db, c.id, u.id, gpu, cpu)
    audit.record(db, principal, "user_quota.add", "user", u.username, u.id,
                 changes={"cluster": c.name, "added_gpu_s": gpu, "added_cpu_s": cpu, "gpu_s": q.gpu_s,
                          "cpu_s": q.cpu_s}, source=client_address(request))
    return _quota_out(u.username, c.name, q)


@router.put("/clusters/{cluster}/user-quota-default", response_model=HourQuotaOut)
def set_default_user_quota(cluster: str, body: HourQuotaIn,
                           principal: Annotated[Principal, require(ADMIN, scope=cluster_scope())], db: DB,
                           request: Request) -> HourQuotaOut:
    """The quota of the cluster's users who have none of their own (built in: 100 GPU hours, unlimited CPU)."""
    c = find_cluster(db, cluster)
    q = budgets.set_user_quota(db, c.id, None, budgets.amount("gpu", body.gpu), budgets.amount("cpu", body.cpu))
    audit.record(db, principal, "user_quota.default", "cluster", c.name, c.id,
                 changes={"gpu_s": q.gpu_s, "cpu_s": q.cpu_s}, source=client_address(request))
    return _quota_out("every user", c.name, q)


# -- budgets on the quota tree --------------------------------------------------------------------------------------
def _budget_out(quota: str, status: dict) -> BudgetOut:
    return BudgetOut(quota=quota, **status)


@router.get("/quotas/{quota}/budgets", response_model=BudgetList, dependencies=[require(AUTHENTICATED)])
def list_budgets(quota: str, db: DB) -> BudgetList:
    """The quota's GPU- and CPU-hour budgets with spent / budget / left in the current period (its subtree's use)."""
    q = find_quota(db, quota)
    items = [_budget_out(q.name, s) for s in budgets.quota_budgets(db, q, time.time())]
    return BudgetList(items=items, total=len(items))


@router.put("/quotas/{quota}/budgets/{resource}", response_model=BudgetOut)
def set_budget(quota: str, resource: str, body: BudgetIn,
               principal: Annotated[Principal, require(ADMIN, scope=quota_scope())], db: DB, state: State,
               request: Request) -> BudgetOut:
    """Set the quota's budget of `resource` (gpu or cpu) hours per period."""
    q = find_quota(db, quota)
    now = time.time()
    row = budgets.set_budget(db, q, resource, body.period, budgets.amount("amount", body.amount), now)
    audit.record(db, principal, "quota.budget.set", "quota", q.name, q.id,
                 changes={"resource": resource, "period": row.period, "amount_s": row.amount_s},
                 source=client_address(request))
    state.scheduler_wakeup.set()
    return _budget_out(q.name, budgets.budget_status(db, q, row, now))


@router.delete("/quotas/{quota}/budgets/{resource}", status_code=204)
def delete_budget(quota: str, resource: str,
                  principal: Annotated[Principal, require(ADMIN, scope=quota_scope())], db: DB, state: State,
                  request: Request) -> Response:
    q = find_quota(db, quota)
    if not budgets.delete_budget(db, q, resource):
        raise NotFound(f"quota {q.name} has no {resource} budget")
    audit.record(db, principal, "quota.budget.delete", "quota", q.name, q.id, changes={"resource": resource},
                 source=client_address(request))
    state.scheduler_wakeup.set()
    return Response(status_code=204)


# -- recalculation --------------------------------------------------------------------------------------------------
def _interval(c, state: str, end: float | None) -> IntervalOut:
    hours = c.held_s(end) / 3600
    return IntervalOut(state=state, end=None if end is None else datetime.fromtimestamp(end, UTC), hours=hours,
                       gpu_hours=hours * c.gpu_milli / 1000, cpu_hours=hours * c.cpu_milli / 1000)


def _recalculation_out(cluster: str | None, done: recalculate.Recalculation) -> RecalculationOut:
    engine = [EngineCorrectionOut(cluster=c.cluster, job=c.job_id, outcome=c.outcome,
                                  interval_start=datetime.fromtimestamp(c.interval_start, UTC),
                                  before=_interval(c, c.before_state, None),
                                  after=_interval(c, c.after_state, c.after_end), text=c.sentence())
              for c in done.engine_corrections]
    return RecalculationOut(cluster=cluster, corrections=done.corrections, engines=done.engines,
                            engine_corrections=engine, total=done.total)


@router.post("/usage/recalculate", response_model=RecalculationOut)
def recalculate_all(principal: Annotated[Principal, require(PLATFORM_ADMIN)], db: DB, state: State,
                    request: Request) -> RecalculationOut:
    """Bring every cluster's usage records in line with the jobs' recorded intervals and the engines' own records;
    lists each correction (an engine's with the interval before and after)."""
    done = recalculate.run(db, state.extras, time.time())
    audit.record(db, principal, "usage.recalculate", "usage", "*", None, changes=done.audit_changes(),
                 source=client_address(request))
    return _recalculation_out(None, done)


@router.post("/clusters/{cluster}/usage/recalculate", response_model=RecalculationOut)
def recalculate_cluster(cluster: str, principal: Annotated[Principal, require(ADMIN, scope=cluster_scope())],
                        db: DB, state: State, request: Request) -> RecalculationOut:
    c = find_cluster(db, cluster)
    done = recalculate.run(db, state.extras, time.time(), c.id)
    audit.record(db, principal, "usage.recalculate", "cluster", c.name, c.id, changes=done.audit_changes(),
                 source=client_address(request))
    return _recalculation_out(c.name, done)


router.include_router(exports.router)  # resource policies' and jobs' CSV exports
