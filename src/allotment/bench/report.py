"""Figures of a benchmark run, computed from the jobs' own timestamps as the API reports them.

- wall time: from the start of submission to the end of the last job;
- utilisation: resource-seconds the jobs ran divided by capacity times wall time;
- time to admission (Kueue's measure): admitted_at - submitted_at of each job's last admission, per job class
  (labels.class) and per quota: mean, p50, p99, count.
"""

from __future__ import annotations

from datetime import datetime
from statistics import fmean
from typing import Any

from allotment.bench.scenario import Scenario


def _t(value: str | None) -> float | None:
    return datetime.fromisoformat(value).timestamp() if value else None


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list (0 for an empty one)."""
    if not sorted_values:
        return 0.0
    rank = max(1, min(len(sorted_values), round(q / 100.0 * len(sorted_values) + 0.4999)))
    return sorted_values[rank - 1]


def admission_stats(values: list[float]) -> dict[str, float | int]:
    """Mean, p50 and p99 time to admission (ms) and the count; the same figures for every report."""
    values = sorted(values)
    return {
        "mean_admission_ms": round(fmean(values), 1) if values else 0.0,
        "p50_admission_ms": round(percentile(values, 50), 1),
        "p99_admission_ms": round(percentile(values, 99), 1),
        "count": len(values),
    }


def _amount(job: dict, resource: str) -> float:
    text = str(job.get(resource) or "0")
    try:
        return float(text)
    except ValueError:  # memory with a unit: not a benchmark resource we size in numbers
        return 0.0


def compute(scenario: Scenario, jobs: list[dict], started_at: float, resource: str, capacity: float,
            quota_names: dict[str, str] | None = None) -> dict[str, Any]:
    back = {v: k for k, v in (quota_names or {}).items()}
    finished = [j for j in jobs if j["state"] in ("succeeded", "failed")]
    ends = [_t(j["finished_at"]) for j in jobs if j["finished_at"]]
    wall_s = (max(ends) - started_at) if ends else 0.0
    busy = 0.0
    classes: dict[str, list[float]] = {}
    quotas: dict[str, dict[str, Any]] = {}
    preemptions = 0
    for j in jobs:
        begin, end = _t(j["started_at"]), _t(j["finished_at"])
        amount = _amount(j, resource)
        if begin is not None and end is not None:
            busy += amount * max(end - begin, 0.0)
        admitted, submitted = _t(j["admitted_at"]), _t(j["submitted_at"])
        quota = back.get(j["quota"], j["quota"])
        entry = quotas.setdefault(quota, {"jobs": 0, "waits": [], "resource_seconds": 0.0, "preemptions": 0})
        entry["jobs"] += 1
        entry["preemptions"] += j.get("preemptions") or 0
        preemptions += j.get("preemptions") or 0
        if begin is not None and end is not None:
            entry["resource_seconds"] += amount * max(end - begin, 0.0)
        if admitted is not None and submitted is not None:
            wait_ms = max(admitted - submitted, 0.0) * 1000.0
            classes.setdefault(str((j.get("labels") or {}).get("class", "default")), []).append(wait_ms)
            entry["waits"].append(wait_ms)
    lags = []
    by_id = sorted(jobs, key=lambda j: j["id"])
    for plan, job in zip(scenario.jobs, by_id):
        submitted = _t(job["submitted_at"])
        if submitted is not None:
            lags.append(max(submitted - (started_at + plan.at_ms / 1000.0), 0.0) * 1000.0)
    last_creation_s = max((p.at_ms for p in scenario.jobs), default=0.0) / 1000.0
    return {
        "scenario": scenario.name,
        "wall_ms": round(wall_s * 1000.0, 1),
        "jobs": len(jobs),
        "finished": len(finished),
        "utilisation": round(busy / (capacity * wall_s), 4) if capacity and wall_s else 0.0,
        "resource": resource,
        "capacity": capacity,
        "classes": {name: admission_stats(v) for name, v in sorted(classes.items())},
        "quotas": {name: {"jobs": e["jobs"], **admission_stats(e["waits"]), "resource_seconds": round(e["resource_seconds"], 1),
                          "preemptions": e["preemptions"]} for name, e in sorted(quotas.items())},
        "preemptions": preemptions,
        "submission_lag_ms": {"mean": round(fmean(lags), 1) if lags else 0.0,
                              "max": round(max(lags), 1) if lags else 0.0},
        "lower_bound_ms": round(max(last_creation_s, scenario.ideal_work / capacity if capacity else 0.0) * 1000, 1),
    }
