"""Scenario files: Kueue's scheduler-performance generator format, unchanged, plus allotment's extensions.

Kueue's format (test/performance/scheduler/configs/*/generator.yaml):

    cohorts:                         # each cohort becomes a parent quota
      - className: cohort
        count: 5
        queuesSets:                  # each queue becomes a child quota of its cohort
          - className: cq
            count: 6
            nominalQuota: 20         # guarantee (cpu unless `resource` says otherwise)
            borrowingLimit: 100      # limit = nominal + borrowingLimit (absent: unlimited)
            reclaimWithinCohort: Any # Never | LowerPriority | Any
            withinClusterQueue: LowerPriority
            workloadsSets:
              - count: 350
                creationIntervalMs: 100
                workloads:
                  - {className: small, runtimeMs: 200, priority: 50, request: 1}

Semantics as in Kueue's generator: a cohort's capacity is the sum of its queues' nominal quotas; each workloads set
creates, `count` times, each of its workloads one after the other, waiting `creationIntervalMs` before each one; the
sets of all queues run concurrently from time zero.

Extensions (all optional): top-level `resource` (default cpu), `pool` (default "default"), `lendingLimit` on a queues
set, `weight`, and `children:` inside a queues set entry for deeper trees (same shape as queuesSets).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

RECLAIM = {"never": "never", "lowerpriority": "lower_priority", "any": "any"}
WITHIN = {"never": "never", "lowerpriority": "lower_priority", "lowerorneweqrpriority": "lower_priority"}


class ScenarioError(ValueError):
    pass


@dataclass
class QuotaPlan:
    name: str
    parent: str | None
    guarantee: float
    limit: float | None  # None: unlimited
    lending_limit: float | None = None
    reclaim: str = "never"
    within_quota_preemption: str = "never"
    weight: float = 1.0


@dataclass(order=True)
class JobPlan:
    at_ms: float
    quota: str = field(compare=False)
    job_class: str = field(compare=False)
    priority: int = field(compare=False)
    request: float = field(compare=False)
    runtime_ms: float = field(compare=False)


@dataclass
class Scenario:
    name: str
    resource: str
    pool: str
    capacity: float
    quotas: list[QuotaPlan]
    jobs: list[JobPlan]

    @property
    def ideal_work(self) -> float:
        """Resource-seconds of work, for the zero-overhead lower bound."""
        return sum(j.request * j.runtime_ms / 1000 for j in self.jobs)


def _num(value: Any, what: str) -> float:
    try:
        return float(str(value).strip())
    except ValueError as exc:
        raise ScenarioError(f"{what}: '{value}' is not a number") from exc


def _policy(value: Any, table: dict[str, str], what: str) -> str:
    if value is None:
        return "never"
    key = str(value).replace("_", "").replace("-", "").lower()
    if key not in table:
        raise ScenarioError(f"{what}: unknown policy '{value}' (expected one of Never, LowerPriority, Any)")
    return table[key]


def _queues(entries: list[dict], parent: str, quotas: list[QuotaPlan], jobs: list[JobPlan], path: str) -> float:
    """Add the queues under `parent`; return the sum of their nominal quotas."""
    total = 0.0
    for si, qset in enumerate(entries or []):
        where = f"{path}.queuesSets[{si}]"
        cls = qset.get("className", "cq")
        count = int(qset.get("count", 1))
        nominal = _num(qset.get("nominalQuota", 0), f"{where}.nominalQuota")
        borrowing = qset.get("borrowingLimit")
        lending = qset.get("lendingLimit")
        for qi in range(count):
            name = f"{cls}-{si}-{qi}-{parent}"
            children = qset.get("children")
            quota = QuotaPlan(
                name=name,
                parent=parent,
                guarantee=nominal,
                limit=None if borrowing is None else nominal + _num(borrowing, f"{where}.borrowingLimit"),
                lending_limit=None if lending is None else _num(lending, f"{where}.lendingLimit"),
                reclaim=_policy(qset.get("reclaimWithinCohort"), RECLAIM, f"{where}.reclaimWithinCohort"),
                within_quota_preemption=_policy(qset.get("withinClusterQueue"), WITHIN, f"{where}.withinClusterQueue"),
                weight=_num(qset.get("weight", 1), f"{where}.weight"),
            )
            quotas.append(quota)
            if children:
                _queues(children, name, quotas, jobs, f"{where}.children")
            _workloads(qset.get("workloadsSets") or [], name, jobs, where)
        total += nominal * count
    return total


def _workloads(sets: list[dict], quota: str, jobs: list[JobPlan], where: str) -> None:
    for wi, wset in enumerate(sets):
        interval = _num(wset.get("creationIntervalMs", 0), f"{where}.workloadsSets[{wi}].creationIntervalMs")
        templates = wset.get("workloads") or []
        t = 0.0
        for _ in range(int(wset.get("count", 1))):
            for tpl in templates:
                t += interval
                jobs.append(JobPlan(
                    at_ms=t,
                    quota=quota,
                    job_class=str(tpl.get("className", "default")),
                    priority=int(tpl.get("priority", 0)),
                    request=_num(tpl.get("request", 1), f"{where}.workloads.request"),
                    runtime_ms=_num(tpl.get("runtimeMs", 0), f"{where}.workloads.runtimeMs"),
                ))


def parse(data: dict[str, Any], name: str = "scenario") -> Scenario:
    if not isinstance(data, dict) or not data.get("cohorts"):
        raise ScenarioError("a scenario needs at least one entry under `cohorts`")
    quotas: list[QuotaPlan] = []
    jobs: list[JobPlan] = []
    capacity = 0.0
    for ci, cset in enumerate(data["cohorts"]):
        for k in range(int(cset.get("count", 1))):
            cohort = f"{cset.get('className', 'cohort')}-{k}"
            plan = QuotaPlan(name=cohort, parent=None, guarantee=0.0, limit=None)
            quotas.append(plan)
            plan.guarantee = _queues(cset.get("queuesSets") or [], cohort, quotas, jobs, f"cohorts[{ci}]")
            plan.limit = plan.guarantee  # Kueue's cohorts do not borrow from each other
            capacity += plan.guarantee
    jobs.sort()
    return Scenario(name=name, resource=str(data.get("resource", "cpu")), pool=str(data.get("pool", "default")),
                    capacity=capacity, quotas=quotas, jobs=jobs)


def load(path: str | Path) -> Scenario:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path}: not valid YAML ({exc})") from exc
    return parse(data, path.stem)
