"""Simulate before Provision: replay the cluster's last N days of jobs against the draft (or the live configuration)
and compare it with another configuration, with charts of queueing by quota and utilisation over time.

The replay runs in the background on the server (simulation.service); the page polls its progress with htmx and
shows the result when it is done. Managers and admins of the cluster (and platform admins), as in the API.
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from allotment.api.deps import DB, State, cluster_scope, require
from allotment.core.permissions import Principal, cluster
from allotment.errors import DomainError
from allotment.inventory.service import find_cluster
from allotment.quotas import config as resource_config
from allotment.simulation import report, service
from allotment.web.console import redirect, render, url_segment

router = APIRouter()
Manager = Annotated[Principal, require(cluster("manager"), cluster_scope())]
SERIES = 48  # utilisation chart steps
CHOICES = ("draft", "current")
MAX_DAYS = 366


def _chart(result: dict) -> dict:
    """What simulation.js draws: mean and p95 queueing by quota for each configuration, and utilisation over time."""
    runs = [("config", result["config"])] + ([("against", result["against"])] if result.get("against") else [])
    quotas = list(result["config"]["quotas"])
    out: dict = {"quotas": quotas, "queue": {}, "utilisation": {}}
    for name, r in runs:
        out["queue"][name] = [r["quotas"].get(q, {}).get("queueing_s", {}).get("mean", 0) for q in quotas]
        for pool, p in r["pools"].items():
            out["utilisation"].setdefault(pool, {})[name] = [round(v * 100, 1) for v in p.get("series", [])]
        window = r["window"]
        out["start"], out["end"] = window["from"], window["end"]
    return out


def _view(run: service.Run, labels: dict[str, str]) -> dict:
    view = run.view()
    result = view.get("result")
    if result:
        view["summary"] = {k: report.summary_line(result[k]) for k in ("config", "against") if result.get(k)}
        view["quota_rows"] = report.quota_rows(result["config"])
        view["columns"] = [label for label, _ in report.QUOTA_COLUMNS]
        view["side_by_side"] = report.side_by_side(result["config"], result["against"]) if result.get(
            "against") else []
        view["chart"] = _chart(result)
        view["labels"] = labels
    return view


def _labels(meta: dict | None) -> dict[str, str]:
    meta = meta or {}
    return {"config": meta.get("config_label", "config"), "against": meta.get("against_label", "against")}


@router.get("/ui/clusters/{cluster}/simulate")
def simulate_page(request: Request, principal: Manager, db: DB, state: State, cluster: str,
                  run: int | None = None) -> Response:
    found = find_cluster(db, cluster)
    status = resource_config.status(db, found)
    shown = None
    if run is not None:
        found_run = service.runs_of(state.extras).get(found.id, run)
        shown = _view(found_run, _labels(found_run.result))
    return render(request, "simulate.html", {
        "cluster": found, "has_draft": status["has_draft"], "draft_stale": status["draft_stale"], "run": shown,
        "values": {"days": 30, "config": "draft" if status["has_draft"] else "current", "against": "current"},
        "errors": {}})


@router.get("/ui/clusters/{cluster}/simulate/runs/{run_id}")
def run_fragment(request: Request, principal: Manager, db: DB, state: State, cluster: str, run_id: int) -> Response:
    """The run's progress (polled while it runs) or its result."""
    found = find_cluster(db, cluster)
    found_run = service.runs_of(state.extras).get(found.id, run_id)
    return render(request, "_simulation_run.html", {"cluster": found,
                                                     "run": _view(found_run, _labels(found_run.result))})


@router.post("/ui/clusters/{cluster}/simulate")
def start(request: Request, principal: Manager, db: DB, state: State, cluster: str,
          days: Annotated[str, Form()] = "30", config: Annotated[str, Form()] = "draft",
          against: Annotated[str, Form()] = "current") -> Response:
    found = find_cluster(db, cluster)
    errors: dict[str, list[str]] = {}
    try:
        n_days = int(days)
        if not 1 <= n_days <= MAX_DAYS:
            raise ValueError
    except ValueError:
        errors["days"] = [f"a whole number of days from 1 to {MAX_DAYS}"]
        n_days = 30
    if config not in CHOICES:
        errors["config"] = ["draft or current"]
    if against not in (*CHOICES, "none"):
        errors["against"] = ["draft, current or none"]
    if not errors:
        try:
            cfg = service.configuration(db, found, state.settings, config)
            other = None if against == "none" else service.configuration(db, found, state.settings, against,
                                                                         "against")
        except DomainError as exc:
            errors["config"] = [str(exc)]
    if errors:
        status = resource_config.status(db, found)
        return render(request, "simulate.html", {
            "cluster": found, "has_draft": status["has_draft"], "draft_stale": status["draft_stale"], "run": None,
            "values": {"days": days, "config": config, "against": against}, "errors": errors}, status=422)
    now = time.time()
    jobs, skipped = service.history(db, found, now - n_days * 86400.0, now, now)
    who = principal.actor_username or principal.username
    run = service.runs_of(state.extras).start(found, who, cfg, other, jobs, SERIES, {
        "skipped": skipped, "days": n_days, "config_label": config,
        "against_label": against if other is not None else None})
    return redirect(f"/ui/clusters/{url_segment(found.name)}/simulate?run={run.id}", None, request)
