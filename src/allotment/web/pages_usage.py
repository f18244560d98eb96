"""Usage: GPU-, CPU- and memory-hours by user, quota or pool (a chart of the top consumers and one over time), each
pool's allocated GPU-hours against its capacity over time (from the capacity history), the
caller's hour quotas with spent / quota / left, the quota budgets of the clusters they see, export links and, for
platform admins, the usage recalculation. What a caller sees is what the API shows them (accounting.service)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response

from allotment.accounting import budgets, recalculate, service
from allotment.api.deps import DB, client_address, require
from allotment.audit import service as audit
from allotment.core.permissions import AUTHENTICATED, PLATFORM_ADMIN, Principal
from allotment.inventory import service as inventory
from allotment.quotas import service as quotas
from allotment.web.console import redirect, render

router = APIRouter()
CHART_DIMENSIONS = ("user", "quota", "pool", "group", "workspace", "model", "cluster")


def _day(text: str, field: str, errors: dict[str, list[str]]) -> float | None:
    if not text.strip():
        return None
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        errors[field] = ["is not a date (use YYYY-MM-DD)"]
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


@router.get("/ui/usage")
def usage_page(request: Request, principal: Annotated[Principal, require(AUTHENTICATED)], db: DB, by: str = "user",
               start: str = "", end: str = "") -> Response:
    now = time.time()
    errors: dict[str, list[str]] = {}
    if by not in CHART_DIMENSIONS:
        errors["by"] = [f"one of {', '.join(CHART_DIMENSIONS)}"]
        by = "user"
    month = datetime.fromtimestamp(now, UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0).timestamp()
    lo, hi = _day(start, "start", errors) or month, _day(end, "end", errors) or now
    if hi <= lo:
        errors["end"] = ["must be after the start"]
        lo, hi = month, now
    visible, own = service.visible_to(principal)
    window = service.Window(lo, hi, visible_clusters=visible, own_id=own)
    rows = [] if errors else service.rollup(db, by, window, now)
    days = [] if errors else service.rollup(db, "day", window, now)
    pool_days = [] if errors else service.pool_capacity(db, window, now)
    clusters = inventory.visible_clusters(db, None if principal.is_platform_admin else set(principal.cluster_roles))
    mine = [{"cluster": c.name, **budgets.user_quota_report(db, c.id, principal.id, now)} for c in clusters]
    tree = []
    for c in clusters:
        for q in quotas.list_quotas(db, c.id):
            for status in budgets.quota_budgets(db, q, now):
                tree.append({"cluster": c.name, "quota": q.name, **status})
    query = urlencode({"from": datetime.fromtimestamp(lo, UTC).date().isoformat(),
                       "to": datetime.fromtimestamp(hi, UTC).isoformat()})
    return render(request, "usage.html", {
        "by": by, "dimensions": CHART_DIMENSIONS, "rows": rows[:50], "days": days, "mine": mine, "tree": tree,
        "values": {"start": start, "end": end}, "errors": errors, "pools": _pool_totals(pool_days),
        "chart": {"labels": [r["key"] for r in rows[:20]], "gpu": [r["gpu_hours"] for r in rows[:20]],
                  "cpu": [r["cpu_hours"] for r in rows[:20]], "days": [d["key"] for d in days],
                  "day_gpu": [d["gpu_hours"] for d in days], **_pool_series(pool_days)},
        "exports": {"usage": f"/api/v1/exports/usage.csv?{query}", "jobs": "/api/v1/exports/jobs.csv",
                    "policies": "/api/v1/exports/resource-policies.csv" if principal.is_platform_admin else None},
    }, status=422 if errors else 200)


def _pool_totals(pool_days: list[dict]) -> list[dict]:
    """Each pool's allocated GPU-hours against its capacity over the whole window (its capacity history)."""
    totals: dict[str, list[float]] = {}
    for d in pool_days:
        t = totals.setdefault(d["pool"], [0.0, 0.0])
        t[0] += d["allocated_gpu_hours"]
        t[1] += d["capacity_gpu_hours"]
    return [{"pool": pool, "allocated_gpu_hours": used, "capacity_gpu_hours": offered,
             "share": used / offered if offered else None} for pool, (used, offered) in totals.items()]


def _pool_series(pool_days: list[dict]) -> dict:
    """The chart of each pool's allocated share per day, in percent (a day without capacity has none)."""
    labels = sorted({d["day"] for d in pool_days})
    series: dict[str, dict[str, float | None]] = {}
    for d in pool_days:
        share = d["allocated_share"]
        series.setdefault(d["pool"], {})[d["day"]] = None if share is None else round(share * 100, 2)
    return {"pool_days": labels,
            "pool_share": [{"label": pool, "data": [by_day.get(day) for day in labels]}
                           for pool, by_day in series.items()]}


@router.post("/ui/usage/recalculate")
def recalculate_usage(request: Request, principal: Annotated[Principal, require(PLATFORM_ADMIN)], db: DB) -> Response:
    """Backend.AI's "recalculate usage" button: every correction is audited; the notice says how many."""
    done = recalculate.run(db, request.app.state.allot.extras, time.time())
    audit.record(db, principal, "usage.recalculate", "usage", "*", None, changes=done.audit_changes(),
                 source=client_address(request))
    corrections = done.corrections + [c.sentence() for c in done.engine_corrections]
    shown = "; ".join(corrections[:3]) + (" ..." if len(corrections) > 3 else "")
    return redirect("/ui/usage", f"Usage recalculated: {done.total} correction(s)"
                    + (f": {shown}" if corrections else ""), request)
