"""The configuration a replay runs against, as core sees it (`SimConfig`), and the ways to get one.

- From a resource-configuration document (quotas/config.py's format: the provisioned configuration, the draft, or a
  file in the same shape) over the cluster's pools: `from_document`.
- For the Philly trace: one GPU pool, one quota per virtual cluster (`philly`).

`to_json` / `from_json` carry a SimConfig between the server and the CLI, which replays on its own CPU.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from allotment.core.model import FULL_DEVICE, Device, Node, Pool, Profile, SchedulerConfig
from allotment.core.quantity import UNLIMITED, Quantity, parse_quantity
from allotment.core.quota_tree import QuotaLimits, QuotaSpec, Reclaim, validate_tree
from allotment.core.resources import ANY_POOL, ResourceKey
from allotment.errors import FieldError, ValidationFailed
from allotment.simulation.budgets import BudgetSpec


@dataclass
class SimConfig:
    """Quotas, pools and profiles as core takes them, the priority classes (name -> value, and the default one),
    the quotas restricted to some pools (DKube), the scheduler's settings and the quota tree's budgets."""

    quotas: list[QuotaSpec]
    pools: list[Pool]
    profiles: list[Profile] = field(default_factory=list)
    priorities: dict[str, int] = field(default_factory=dict)
    default_class: str | None = None
    allowed_pools: dict[str, tuple[str, ...]] = field(default_factory=dict)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    budgets: dict[str, list[BudgetSpec]] = field(default_factory=dict)  # quota -> its GPU/CPU-hour budgets

    def gpu_pools(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.pools if p.devices)

    def pools_for(self, quota: str, gpu: int, pinned: str | None) -> tuple[str, ...]:
        """The pools a job may try, in pool order: its pin, else those its quota may use (GPU pools for a GPU job)."""
        allowed = self.allowed_pools.get(quota)
        if pinned:
            return (pinned,)
        names = tuple(p.name for p in self.pools if (not gpu or p.devices) and (not allowed or p.name in allowed))
        return names or tuple(p.name for p in self.pools if not allowed or p.name in allowed)


def _limit(text: Any, resource: str, where: str, errors: list[FieldError]) -> Quantity | None:
    if text is None or text == "":
        return None
    try:
        return parse_quantity(text, resource)
    except ValueError as exc:
        errors.append(FieldError(where, str(exc)))
        return None


def from_document(doc: Mapping[str, Any], pools: Sequence[Pool], base: SimConfig | None = None) -> SimConfig:
    """A configuration document (quotas/config.py) over ``pools``; priority classes and scheduler settings from
    ``base``. Every problem is one field error (422) naming where it is; the tree is validated as core does."""
    errors: list[FieldError] = []
    pool_names = {p.name for p in pools}
    specs: list[QuotaSpec] = []
    allowed: dict[str, tuple[str, ...]] = {}
    quotas = doc.get("quotas")
    if not isinstance(quotas, list):
        raise ValidationFailed("the configuration has no list 'quotas'", [FieldError("quotas", "a list is required")])
    for i, q in enumerate(quotas):
        where = f"quotas[{i}]"
        if not isinstance(q, Mapping) or not isinstance(q.get("name"), str):
            errors.append(FieldError(f"{where}.name", "each quota needs a name"))
            continue
        resources: dict[ResourceKey, QuotaLimits] = {}
        for j, r in enumerate(q.get("resources") or []):
            rw = f"{where}.resources[{j}]"
            pool, resource = r.get("pool") or ANY_POOL, r.get("resource")
            if resource not in ("gpu", "cpu", "memory"):
                errors.append(FieldError(f"{rw}.resource", f"unknown resource {resource!r}"))
                continue
            if pool != ANY_POOL and pool not in pool_names:
                errors.append(FieldError(f"{rw}.pool", f"no pool {pool!r} in the cluster"))
                continue
            guarantee = _limit(r.get("guarantee", "0"), resource, f"{rw}.guarantee", errors) or Quantity(0)
            limit = _limit(r.get("limit", "unlimited"), resource, f"{rw}.limit", errors) or UNLIMITED
            lending = _limit(r.get("lending_limit"), resource, f"{rw}.lending_limit", errors)
            resources[ResourceKey(pool, resource)] = QuotaLimits(guarantee, limit, lending)
        try:
            specs.append(QuotaSpec(
                id=q["name"], parent_id=q.get("parent"), weight=float(q.get("weight", 1.0)), resources=resources,
                child_preemption=bool(q.get("child_preemption", False)), reclaim=q.get("reclaim") or "never",
                within_quota_preemption=q.get("within_quota_preemption") or "never",
                min_runtime_s=float(q.get("min_runtime_s") or 0),
                allowed_priority_classes=q.get("allowed_priority_classes")))
        except (ValueError, TypeError) as exc:
            errors.append(FieldError(where, str(exc)))
            continue
        kept = [p for p in q.get("pools") or [] if p in pool_names]
        if kept:
            allowed[q["name"]] = tuple(kept)
    for e in validate_tree(specs):
        errors.append(FieldError("quotas", e.message))
    order = {k: tuple(v) for k, v in (doc.get("pool_profile_order") or {}).items()}
    profiles = []
    for i, p in enumerate(doc.get("profiles") or []):
        requests = {}
        for resource in ("gpu", "cpu", "memory"):
            amount = _limit(p.get(resource), resource, f"profiles[{i}].{resource}", errors)
            if amount:
                requests[resource] = amount
        links = [link.get("pool") for link in p.get("pools") or []]
        profiles.append(Profile(p.get("name", ""), requests, tuple(x for x in links if x in pool_names),
                                tuple(p.get("policies") or ()), bool(p.get("unordered", False))))
    if errors:
        raise ValidationFailed("the configuration cannot be replayed: " + "; ".join(
            f"{e.field}: {e.message}" for e in errors[:10]), errors)
    pools_out = [Pool(p.name, p.devices, p.cpu, p.memory, order.get(p.name, ()), p.nodes) for p in pools]
    base = base or SimConfig([], [])
    names = {s.id for s in specs}
    budgets = {q: list(b) for q, b in base.budgets.items() if q in names}  # a document has none: the live ones
    return SimConfig(specs, pools_out, profiles, dict(base.priorities), base.default_class, allowed, base.scheduler,
                     budgets)


def philly(capacities: Mapping[str, int], vcs: Sequence[str], share: float = 0.25, isolated: bool = False,
           scheduler: SchedulerConfig | None = None, pool: str = "gpu") -> SimConfig:
    """Philly as one GPU pool holding each virtual cluster's capacity x ``share`` (the trace's own load then meets
    a cluster that is scarce enough to queue). Shared: each virtual cluster guarantees its capacity x ``share``,
    borrows without limit and reclaims from any borrower; one without a capacity row guarantees nothing. Isolated:
    each one is a partition of that size (guarantee = limit), without borrowing."""
    sizes = {vc: round(capacities.get(vc, 0) * share * 1000) for vc in vcs}
    specs = []
    for vc in vcs:
        gpus = Quantity(sizes[vc])
        if isolated:
            specs.append(QuotaSpec(id=vc, resources={(pool, "gpu"): QuotaLimits(gpus, gpus)}))
        else:
            specs.append(QuotaSpec(id=vc, resources={(pool, "gpu"): QuotaLimits(gpus, UNLIMITED)},
                                   reclaim=Reclaim.ANY))
    total = sum(sizes.values()) // 1000
    devices = tuple(Device(f"d{i}", FULL_DEVICE, FULL_DEVICE, "") for i in range(total))
    return SimConfig(specs, [Pool(pool, devices)], scheduler=scheduler or SchedulerConfig())


# --- transport -------------------------------------------------------------------------------------------------------

def _q(value: Quantity | None) -> int | None:
    return None if value is None or value == UNLIMITED else value.raw


def _unq(raw: int | None, default: Quantity | None = UNLIMITED) -> Quantity | None:
    return default if raw is None else Quantity(raw)


def to_json(cfg: SimConfig) -> dict[str, Any]:
    return {
        "quotas": [{"id": s.id, "parent": s.parent_id, "weight": s.weight, "child_preemption": s.child_preemption,
                    "reclaim": str(s.reclaim), "within_quota_preemption": str(s.within_quota_preemption),
                    "min_runtime_s": s.min_runtime_s,
                    "allowed_priority_classes": (None if s.allowed_priority_classes is None
                                                 else sorted(s.allowed_priority_classes)),
                    "resources": [[k.pool, k.resource, lim.guarantee.raw, _q(lim.limit), _q(lim.lending_limit)]
                                  for k, lim in s.resources.items()]} for s in cfg.quotas],
        "pools": [{"name": p.name, "cpu": _q(p.cpu), "memory": _q(p.memory), "profile_order": list(p.profile_order),
                   "devices": [[d.id, d.free.raw, d.capacity.raw, d.node] for d in p.devices],
                   "nodes": [[n.name, _q(n.cpu), _q(n.memory)] for n in p.nodes]} for p in cfg.pools],
        "profiles": [{"name": p.name, "requests": {k: v.raw for k, v in p.requests.items()}, "pools": list(p.pools),
                      "policy_order": list(p.policy_order), "best_fit": p.best_fit} for p in cfg.profiles],
        "priorities": cfg.priorities, "default_class": cfg.default_class,
        "allowed_pools": {k: list(v) for k, v in cfg.allowed_pools.items()},
        "budgets": {q: [[b.resource, b.period, b.amount_s, b.granted_at] for b in bs] for q, bs in cfg.budgets.items()},
        "scheduler": {"starvation_age_s": cfg.scheduler.starvation_age_s,
                      "preemption_delay_s": cfg.scheduler.preemption_delay_s,
                      "gpu_share_step": cfg.scheduler.gpu_share_step},
    }


def from_json(data: Mapping[str, Any]) -> SimConfig:
    quotas = [QuotaSpec(id=q["id"], parent_id=q["parent"], weight=q["weight"], child_preemption=q["child_preemption"],
                        reclaim=q["reclaim"], within_quota_preemption=q["within_quota_preemption"],
                        min_runtime_s=q["min_runtime_s"], allowed_priority_classes=q["allowed_priority_classes"],
                        resources={ResourceKey(pool, res): QuotaLimits(Quantity(g), _unq(lim), _unq(lend, None))
                                   for pool, res, g, lim, lend in q["resources"]})
              for q in data["quotas"]]
    pools = [Pool(p["name"], tuple(Device(i, Quantity(f), Quantity(c), n) for i, f, c, n in p["devices"]),
                  _unq(p["cpu"]), _unq(p["memory"]), tuple(p["profile_order"]),
                  tuple(Node(n, _unq(c), _unq(m)) for n, c, m in p["nodes"])) for p in data["pools"]]
    profiles = [Profile(p["name"], {k: Quantity(v) for k, v in p["requests"].items()}, tuple(p["pools"]),
                        tuple(p["policy_order"]), p["best_fit"]) for p in data["profiles"]]
    s = data["scheduler"]
    return SimConfig(quotas, pools, profiles, dict(data["priorities"]), data["default_class"],
                     {k: tuple(v) for k, v in data["allowed_pools"].items()},
                     SchedulerConfig(starvation_age_s=s["starvation_age_s"],
                                     preemption_delay_s=s["preemption_delay_s"], gpu_share_step=s["gpu_share_step"]),
                     {q: [BudgetSpec(*b) for b in bs] for q, bs in data.get("budgets", {}).items()})
