"""The what-if replay driver (allotment.simulation.replay): virtual time that follows the core's next_due, and each
measure the report gives, on small traces whose right answer can be worked out by hand."""

from __future__ import annotations

import pytest

from allotment.core.model import FULL_DEVICE, Device, Node, Pool, SchedulerConfig
from allotment.core.quantity import UNLIMITED, Quantity
from allotment.core.quota_tree import QuotaLimits, QuotaSpec
from allotment.errors import ValidationFailed
from allotment.simulation import report
from allotment.simulation.budgets import BudgetSpec
from allotment.simulation.config import SimConfig, from_document, from_json, philly, to_json
from allotment.simulation.replay import percentile, replay, run_replays
from allotment.simulation.traces import TraceJob

GPU = 1000


def pool(gpus: int, name: str = "gpu") -> Pool:
    return Pool(name, tuple(Device(f"{name}{i}", FULL_DEVICE, FULL_DEVICE, "") for i in range(gpus)))


def quota(name: str, guarantee: int, limit: int | None = None, reclaim: str = "never") -> QuotaSpec:
    lim = UNLIMITED if limit is None else Quantity(limit * GPU)
    return QuotaSpec(id=name, resources={("gpu", "gpu"): QuotaLimits(Quantity(guarantee * GPU), lim)},
                     reclaim=reclaim)


def cfg(quotas, gpus: int, delay: float = 0.0, age: float | None = None) -> SimConfig:
    return SimConfig(quotas, [pool(gpus)], scheduler=SchedulerConfig(starvation_age_s=age, preemption_delay_s=delay))


def job(at: float, duration: float, q: str, gpus: int = 1, **kw) -> TraceJob:
    return TraceJob(at, duration, q, gpus * GPU, **kw)


def test_fifo_on_one_gpu_queueing_and_completion_times():
    out = replay(cfg([quota("a", 0)], 1), [job(0, 100, "a"), job(0, 100, "a"), job(50, 10, "a")])
    a = out["quotas"]["a"]
    assert a["jobs_run"] == 3
    # waits: 0, 100 (behind the first), 150 (from 50 to 200)
    assert a["queueing_s"]["mean"] == pytest.approx(250 / 3, abs=0.1)
    assert a["queueing_s"]["p99"] == 150
    assert a["jct_s"]["mean"] == pytest.approx((100 + 200 + 160) / 3, abs=0.1)
    assert a["gpu_hours_used"] == pytest.approx(210 / 3600, abs=0.05)


def test_a_preemption_delay_ends_on_time_on_a_sparse_trace():
    """Nothing happens between the reclaiming job's arrival (t=10) and the borrower's end (t=1000): only the core's
    next_due can tell the replay to run a cycle when the 30 s delay ends."""
    quotas = [quota("x", 2, reclaim="any"), quota("y", 0)]
    out = replay(cfg(quotas, 2, delay=30.0), [job(0, 1000, "y", 2), job(10, 100, "x", 1)])
    x, y = out["quotas"]["x"], out["quotas"]["y"]
    assert x["queueing_s"]["mean"] == 30.0  # not 990
    assert y["preemptions"] == 1
    assert out["totals"]["max_preemptions_per_job"] == 1


def test_preempted_work_is_counted_lost_and_the_victim_runs_again():
    quotas = [quota("x", 2, reclaim="any"), quota("y", 0)]
    trace = [job(0, 36000, "y"), job(0, 36000, "y"), job(3600, 3600, "x", 2)]
    out = replay(cfg(quotas, 2), trace)
    y = out["quotas"]["y"]
    assert y["preemptions"] == 2
    assert y["gpu_hours_lost"] == 2.0  # two 1-GPU runs cut after one hour each
    assert y["jobs_run"] == 2  # both start again once x is done and finish
    assert y["gpu_hours_used"] == 22.0  # 2 x 10 h finished + 2 h lost
    assert y["queueing_s"]["mean"] == 3600.0  # queued from the preemption (1 h) to x's end (2 h)


def test_time_below_guarantee_with_a_fitting_job_queued():
    """x guarantees 2 GPUs but cannot reclaim: its 1-GPU job waits from 100 s until y's borrowers end at 500 s."""
    quotas = [quota("x", 2), quota("y", 0)]
    out = replay(cfg(quotas, 4), [job(0, 500, "y", 4), job(100, 50, "x", 1)], grace_s=60)
    below = out["quotas"]["x"]["below_guarantee"]
    assert below == [{"pool": "gpu", "guarantee_gpu": 2.0, "seconds": 400.0, "beyond_grace_s": 340.0,
                      "longest_s": 400.0, "spells": 1}]
    assert out["totals"]["below_guarantee_beyond_grace_s"] == 340.0


def test_a_queued_job_larger_than_the_guarantee_does_not_count_as_fitting():
    quotas = [quota("x", 2), quota("y", 0)]
    out = replay(cfg(quotas, 4), [job(0, 500, "y", 4), job(100, 50, "x", 3)])
    assert out["quotas"]["x"]["below_guarantee"][0]["seconds"] == 0.0


def test_unknown_quota_is_refused_and_counted_not_queued_forever():
    out = replay(cfg([quota("a", 0)], 1), [job(0, 10, "a"), job(0, 10, "ghost")])
    assert out["quotas"]["ghost"]["refused"] == {"unknown_quota": 1}
    assert out["totals"]["refused"] == 1 and out["totals"]["queued_at_end"] == 0
    assert out["quotas"]["a"]["jobs_run"] == 1


def test_a_job_that_never_fits_is_reported_queued_at_the_end():
    out = replay(cfg([quota("a", 0, limit=1)], 4), [job(0, 10, "a", 2)])
    assert out["totals"]["queued_at_end"] == 1 and out["totals"]["jobs_run"] == 0


def test_pool_utilisation_over_the_submission_window_and_series():
    out = replay(cfg([quota("a", 0)], 2), [job(0, 1000, "a"), job(1000, 10, "a")], series=4)
    assert out["pools"]["gpu"]["utilisation"] == 0.5  # one of two GPUs busy from the first submission to the end
    assert out["pools"]["gpu"]["series"] == [0.5, 0.5, 0.5, 0.5]


def test_series_steps_that_floats_cannot_split_exactly_add_up_to_the_utilisation():
    trace = [job(0.1 * i, 0.7 + (i % 5) * 0.3, "a") for i in range(200)]
    out = replay(cfg([quota("a", 0)], 3), trace, series=7)
    gpu = out["pools"]["gpu"]
    assert sum(gpu["series"]) / 7 == pytest.approx(gpu["utilisation"], abs=1e-3)


def test_progress_runs_to_one():
    seen = []
    replay(cfg([quota("a", 0)], 1), [job(i, 1, "a") for i in range(10_000)], progress=seen.append)
    assert seen[-1] == 1.0 and all(0 <= f <= 1 for f in seen) and len(seen) > 2


def test_side_by_side_differences():
    trace = [job(0, 100, "a"), job(0, 100, "a")]
    result = run_replays(cfg([quota("a", 0)], 1), cfg([quota("a", 0)], 4), trace)
    assert result["differences"]["quotas"]["a"]["queue mean s"] == -50.0
    assert result["differences"]["pools"]["gpu"] == pytest.approx(-0.5)  # 4 GPUs for two 1-GPU jobs: half as busy
    rows = report.side_by_side(result["config"], result["against"])
    assert ["a", "queue mean s", 50.0, 0.0, "-50"] in rows


def test_percentile_nearest_rank():
    values = list(range(1, 101))
    assert (percentile(values, 50), percentile(values, 95), percentile(values, 99)) == (50, 95, 99)
    assert percentile([], 50) == 0.0


def test_philly_configuration_shared_and_isolated():
    shared = philly({"a": 64, "b": 32}, ["a", "b", "c"], share=0.25)
    assert len(shared.pools[0].devices) == 24
    g = {s.id: s.resources[("gpu", "gpu")] for s in shared.quotas}
    assert (g["a"].guarantee.raw, g["b"].guarantee.raw, g["c"].guarantee.raw) == (16000, 8000, 0)
    assert g["a"].limit == UNLIMITED
    isolated = philly({"a": 64}, ["a"], share=0.25, isolated=True)
    lim = isolated.quotas[0].resources[("gpu", "gpu")]
    assert lim.guarantee == lim.limit == Quantity(16000)


def test_configuration_travels_as_json_unchanged():
    base = philly({"a": 64}, ["a", "b"], share=0.5)
    base.budgets = {"a": [BudgetSpec("gpu", "weekly", 3600, 5.0)]}
    assert from_json(to_json(base)) == base


def test_document_errors_name_the_field():
    doc = {"quotas": [{"name": "a", "resources": [{"pool": "nope", "resource": "gpu", "guarantee": "1"}]},
                      {"name": "b", "resources": [{"pool": "gpu", "resource": "gpu", "guarantee": "x"}]}]}
    with pytest.raises(ValidationFailed) as err:
        from_document(doc, [pool(2)])
    fields = {e.field for e in err.value.errors}
    assert fields == {"quotas[0].resources[0].pool", "quotas[1].resources[0].guarantee"}


def test_document_quota_pools_restrict_where_its_jobs_run():
    doc = {"quotas": [{"name": "a", "pools": ["small"], "resources": []}]}
    built = from_document(doc, [pool(4, "big"), pool(1, "small")])
    out = replay(built, [job(0, 100, "a"), job(0, 100, "a")])
    assert out["quotas"]["a"]["queueing_s"]["p99"] == 100  # the second waits for the one GPU of pool small


def budgeted(budget: BudgetSpec, gpus: int) -> SimConfig:
    out = cfg([quota("a", 0)], gpus)
    out.budgets = {"a": [budget]}
    return out


def test_a_spent_budget_holds_new_jobs_and_lets_running_ones_finish():
    """One GPU-hour, once: j1 and j2 together spend it at 3,500 s; j3 arrives after and is held for good."""
    trace = [job(0, 7200, "a"), job(100, 100, "a"), job(4000, 10, "a")]
    out = replay(budgeted(BudgetSpec("gpu", "once", 3600), 4), trace)
    a = out["quotas"]["a"]
    assert a["jobs_run"] == 2 and out["totals"]["held_at_end"] == 1
    assert a["budgets"] == [{"resource": "gpu", "period": "once", "budget_hours": 1.0, "spent_hours": 2.0,
                             "most_spent_in_a_period_hours": 2.0, "periods_run_out": 1, "jobs_held": 1}]


def test_a_budget_running_out_holds_the_jobs_already_queued():
    """One GPU, budget 100 GPU-seconds: j2 queues behind j1; the budget runs out at 100 s, before j1 ends at 200 s."""
    out = replay(budgeted(BudgetSpec("gpu", "once", 100), 1), [job(0, 200, "a"), job(0, 50, "a")])
    assert out["quotas"]["a"]["jobs_run"] == 1 and out["totals"]["held_at_end"] == 1


def test_a_weekly_budget_lets_held_jobs_go_when_the_week_begins():
    monday = 1793577600.0  # 2026-11-02 00:00 UTC
    trace = [job(monday, 7200, "a"), job(monday + 3 * 3600, 60, "a")]
    out = replay(budgeted(BudgetSpec("gpu", "weekly", 3600), 2), trace)
    a = out["quotas"]["a"]
    assert a["jobs_run"] == 2
    assert a["queueing_s"]["p99"] == 7 * 86400 - 3 * 3600  # held until the next Monday
    assert a["budgets"][0]["jobs_held"] == 1 and a["budgets"][0]["periods_run_out"] == 1


def test_a_budget_counts_its_whole_subtree_and_only_its_resource():
    child = QuotaSpec(id="child", parent_id="a", resources={("gpu", "gpu"): QuotaLimits(Quantity(0), UNLIMITED)})
    config = SimConfig([quota("a", 0), child], [pool(2)], scheduler=SchedulerConfig(starvation_age_s=None),
                       budgets={"a": [BudgetSpec("gpu", "once", 100)]})
    trace = [job(0, 200, "child"), TraceJob(300, 10, "child", 0, 1000), job(300, 10, "child")]
    out = replay(config, trace)
    assert out["quotas"]["child"]["jobs_run"] == 2  # the CPU-only job is not held by a GPU budget
    assert out["totals"]["held_at_end"] == 1


def test_a_gang_from_the_history_is_placed_over_its_nodes():
    """16 GPUs over 2 nodes of 8: as one node's job it could never run."""
    devices = tuple(Device(f"d{i}", FULL_DEVICE, FULL_DEVICE, f"n{i // 8}") for i in range(16))
    nodes_pool = Pool("gpu", devices, nodes=(Node("n0"), Node("n1")))
    config = SimConfig([quota("a", 0)], [nodes_pool], scheduler=SchedulerConfig(starvation_age_s=None))
    out = replay(config, [TraceJob(0, 100, "a", 16 * GPU, nodes=2)])
    assert out["quotas"]["a"]["jobs_run"] == 1
    assert out["pools"]["gpu"]["utilisation"] == 1.0
    single = replay(config, [TraceJob(0, 100, "a", 16 * GPU)])
    assert single["totals"]["queued_at_end"] == 1


def test_the_replay_builds_queued_jobs_equal_to_the_constructor():
    """replay.queued_job sets the slots directly (the frozen dataclass's __init__ costs a twentieth of a replay): it
    must set every field QueuedJob has, to the constructor's values."""
    from dataclasses import fields

    from allotment.core.model import QueuedJob
    from allotment.simulation.replay import _QUEUED_JOB_FIELDS, queued_job

    assert _QUEUED_JOB_FIELDS == tuple(f.name for f in fields(QueuedJob))
    requests = {"gpu": Quantity(2 * GPU), "cpu": Quantity(4000)}
    fast = queued_job("17", "vc1", 300, 42, 1234.5, requests, ("a", "b"), "training", 2)
    plain = QueuedJob("17", "vc1", 300, 42, 1234.5, requests, ("a", "b"), None, "training", 2)
    assert type(fast) is QueuedJob and fast == plain and repr(fast) == repr(plain)
    assert {f: getattr(fast, f) for f in _QUEUED_JOB_FIELDS} == {f: getattr(plain, f) for f in _QUEUED_JOB_FIELDS}
