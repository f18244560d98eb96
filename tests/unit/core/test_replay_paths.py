"""Short cuts the what-if replay leans on: they must answer exactly what the plain computation answers."""

from __future__ import annotations

import random
from types import SimpleNamespace

import pytest
from core_testkit import gpu_pool, job, quota

import allotment.core.state as state_module
from allotment.core.admission import SchedulerState
from allotment.core.devices import DevicePool
from allotment.core.model import Preempt, SchedulerConfig
from allotment.core.preemption import _devices_could_fit


def plain_could_fit(dp: DevicePool, amount: int, candidates, pool: str) -> bool:
    """Add up every candidate's shares first, then look (whole GPUs: devices that become completely free)."""
    freed: dict[str, int] = {}
    for run in candidates:
        if run.pool == pool:
            for dev, x in run.shares:
                freed[dev] = freed.get(dev, 0) + x
    if amount < 1000:
        return any(f >= amount for f in dp.free.values()) or any(
            dp.free[d] + x >= amount for d, x in freed.items())
    whole = sum(1 for d, f in dp.free.items() if f == dp.cap[d] == 1000)
    whole += sum(1 for d, x in freed.items() if dp.free[d] < dp.cap[d] == 1000 and dp.free[d] + x >= 1000)
    return whole >= amount // 1000


@pytest.mark.parametrize("seed", range(40))
def test_devices_could_fit_stops_early_with_the_plain_answer(seed):
    rng = random.Random(seed)
    caps = [rng.choice([1000, 1000, 1000, 500]) for _ in range(rng.randint(1, 12))]
    devices = [(f"d{i}", c, c, f"n{i // 4}") for i, c in enumerate(caps)]
    dp = DevicePool("p", devices)
    runs = []
    for k in range(rng.randint(0, 10)):  # running jobs holding shares of the devices (some in another pool)
        shares = []
        for d, (_, _, c, _) in enumerate(devices):
            left = dp.free[f"d{d}"]
            if left and rng.random() < 0.3:
                x = rng.choice([x for x in (250, 500, 1000, c) if x <= left])
                shares.append((f"d{d}", x))
        if shares:
            dp.take(shares)
            runs.append(SimpleNamespace(pool=rng.choice(["p", "p", "p", "other"]), shares=tuple(shares), id=f"r{k}"))
    for _ in range(20):
        amount = rng.choice([250, 500, 750, 1000, 2000, 3000, 5000, 8000])
        candidates = rng.sample(runs, rng.randint(0, len(runs)))
        assert _devices_could_fit(dp, amount, candidates, "p") == plain_could_fit(dp, amount, candidates, "p")


def cohort_state() -> SchedulerState:
    specs = [quota("root", gpu_in={"a": 8}), quota("x", "root", gpu_in={"a": (4, 8)}, reclaim="any"),
             quota("y", "root", gpu_in={"a": (4, 8)}, reclaim="any")]
    return SchedulerState(specs, [gpu_pool("a", 8)], config=SchedulerConfig(starvation_age_s=None))


def test_a_shape_whose_queue_emptied_reuses_what_its_group_was_built_from():
    state = cohort_state()
    state.add_job(job("x1", "x", gpus=2))
    first = state._queued["x1"].group
    assert state.remove_job("x1")
    assert state._groups == {}  # the group went with its last job
    state.add_job(job("x2", "x", gpus=2))
    second = state._queued["x2"].group
    assert second is not first
    assert second.options is first.options and second.terms is first.terms
    state.add_job(job("y1", "y", gpus=2))  # another quota, same request: built apart
    assert state._queued["y1"].group.options is not first.options


def test_refilled_shapes_decide_as_groups_built_afresh():
    """Jobs of a few shapes queue, run, finish and are preempted; a state that builds every group afresh (nothing
    kept) takes the same decisions."""
    rng = random.Random(5)
    kept, afresh = cohort_state(), cohort_state()
    now, n, preemptions = 0.0, 0, 0
    submitted = {}
    for _ in range(40):
        for _ in range(rng.randint(1, 3)):
            n += 1
            new = submitted[f"j{n}"] = job(f"j{n}", rng.choice("xy"), gpus=rng.choice([1, 2, 4]), at=now)
            afresh._group_parts.clear()
            kept.add_job(new)
            afresh.add_job(new)
        decisions = kept.cycle(now)
        assert [repr(d) for d in decisions] == [repr(d) for d in afresh.cycle(now)]
        for d in decisions:
            if isinstance(d, Preempt):  # requeued as the scheduler loop does, with its original submission
                afresh._group_parts.clear()
                again = submitted[d.victim_id]
                preemptions += 1
                kept.add_job(again)
                afresh.add_job(again)
        for jid in sorted(kept.running_ids()):
            if rng.random() < 0.5:
                assert kept.job_finished(jid) == afresh.job_finished(jid)
        now += 10.0
    assert preemptions  # requeued preempted jobs (in their backoff: groups of their own) were part of it


def test_kept_shapes_are_bounded(monkeypatch):
    monkeypatch.setattr(state_module, "MAX_KEPT_SHAPES", 3)
    state = cohort_state()
    for n in range(10):
        state.add_job(job(f"j{n}", "x", gpus=1 + n % 5))
        assert state.remove_job(f"j{n}")
        assert len(state._group_parts) <= 3
