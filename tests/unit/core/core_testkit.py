"""Small builders so that rule tables read like the scenarios they describe."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import count

from allotment.core.admission import SchedulerState
from allotment.core.model import (
    Admit,
    Decision,
    Device,
    Pool,
    Preempt,
    Profile,
    QueuedJob,
    RunningJob,
    SchedulerConfig,
    Wait,
)
from allotment.core.quantity import Quantity, parse_quantity
from allotment.core.quota_tree import QuotaLimits, QuotaSpec


def gpu(n: float | str) -> Quantity:
    return parse_quantity(n, "gpu")


def cpu(n: float | str) -> Quantity:
    return parse_quantity(n, "cpu")


def mem(text: str) -> Quantity:
    return parse_quantity(text, "memory")


def lim(resource: str, guarantee: float | str = 0, limit: float | str = "unlimited",
        lending: float | str | None = None) -> QuotaLimits:
    return QuotaLimits.parse(resource, guarantee, limit, lending)


def quota(qid: str, parent: str | None = None, *, gpu_in: dict | None = None, cpu_in: dict | None = None,
          **kwargs) -> QuotaSpec:
    """quota("a", gpu_in={"p": (guarantee, limit[, lending])}) - limits per pool for gpu and/or cpu."""
    resources = {}
    for resource, table in (("gpu", gpu_in or {}), ("cpu", cpu_in or {})):
        for pool, values in table.items():
            if not isinstance(values, tuple):
                values = (values,)
            resources[(pool, resource)] = lim(resource, *values)
    return QuotaSpec(qid, parent, resources=resources, **kwargs)


def gpu_pool(name: str, devices: int, *, nodes: int = 1, cpu_total: float | str = "unlimited",
             profile_order: Sequence[str] = ()) -> Pool:
    per_node = max(1, -(-devices // nodes))
    return Pool(
        name,
        tuple(Device(f"{name}-d{i}", node=f"{name}-n{i // per_node}") for i in range(devices)),
        cpu=cpu(cpu_total),
        profile_order=tuple(profile_order),
    )


def cpu_pool(name: str, cores: float) -> Pool:
    return Pool(name, (), cpu=cpu(cores))


_seq = count(1)


def job(jid: str, q: str, *, gpus: float = 0, cores: float = 0, pools: Sequence[str] = (), priority: int = 0,
        at: float = 0.0, seq: int | None = None, profile: str | None = None, cls: str | None = None) -> QueuedJob:
    requests = {}
    if gpus:
        requests["gpu"] = gpu(gpus)
    if cores:
        requests["cpu"] = cpu(cores)
    return QueuedJob(jid, q, priority, next(_seq) if seq is None else seq, at, requests, tuple(pools), profile, cls)


def start(state: SchedulerState, jid: str, q: str, pool: str, *, gpus: float = 0, cores: float = 0,
          priority: int = 0, at: float = 0.0) -> None:
    """Record a running job, picking devices the simple way (whole jobs: free devices; fractions: first fit)."""
    requests = {}
    shares: list[tuple[str, Quantity]] = []
    if gpus:
        requests["gpu"] = gpu(gpus)
        free = state.device_free(pool)
        amount = gpu(gpus).raw
        if amount >= 1000:
            whole = [d for d, f in free.items() if f.raw == 1000][: amount // 1000]
            assert len(whole) == amount // 1000, f"not enough free devices in {pool} for {jid}"
            shares = [(d, gpu(1)) for d in whole]
        else:
            dev = next(d for d, f in free.items() if f.raw >= amount)
            shares = [(dev, gpu(gpus))]
    if cores:
        requests["cpu"] = cpu(cores)
    state.add_running(RunningJob(jid, q, priority, at, pool, requests, tuple(shares)), take_devices=True)


def state_of(quotas: Iterable, pools: Iterable, profiles: Iterable[Profile] = (), *,
             age: float | None = None, **config) -> SchedulerState:
    return SchedulerState(list(quotas), list(pools), list(profiles), SchedulerConfig(starvation_age_s=age, **config))


def admitted(decisions: Iterable[Decision]) -> dict[str, str]:
    """job id -> pool, in decision order."""
    return {d.job_id: d.pool for d in decisions if isinstance(d, Admit)}


def waits(decisions: Iterable[Decision]) -> dict[str, Wait]:
    return {d.job_id: d for d in decisions if isinstance(d, Wait)}


def preempted(decisions: Iterable[Decision]) -> list[str]:
    return [d.victim_id for d in decisions if isinstance(d, Preempt)]


def preemptions(decisions: Iterable[Decision]) -> list[Preempt]:
    return [d for d in decisions if isinstance(d, Preempt)]
