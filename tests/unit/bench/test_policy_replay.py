"""The virtual-time replay of a scenario through the pure core (benchmarks/policy_replay.py)."""

import importlib.util
from pathlib import Path

import pytest

from allotment.bench.scenario import load

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def replay():
    spec = importlib.util.spec_from_file_location("policy_replay", ROOT / "benchmarks" / "policy_replay.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.replay


def test_the_preemption_delay_saves_the_work_that_immediate_preemption_kills(replay):
    plan = load(ROOT / "benchmarks" / "scenarios" / "smoke.yaml")
    at_once = replay(plan, preemption_delay_s=0.0)
    delayed = replay(plan, preemption_delay_s=1.0)
    for result in (at_once, delayed):
        assert sum(c["count"] for c in result["classes"].values()) == len(plan.jobs) == 48
        assert result["wall_ms"] >= max(j.at_ms for j in plan.jobs)
    # in-phase large jobs reclaim what small and medium ones borrowed in the gaps: killed work
    assert sum(at_once["preemptions"].values()) > 0
    assert sum(delayed["preemptions"].values()) == 0
    assert delayed["utilisation"] > at_once["utilisation"]
    assert delayed["classes"]["large"]["mean_admission_ms"] <= 1000.0  # the delay costs the preemptor at most itself


def test_an_overhead_holds_every_run_longer_and_delays_what_waits_behind_it(replay):
    plan = load(ROOT / "benchmarks" / "scenarios" / "smoke.yaml")
    exact = replay(plan, preemption_delay_s=1.0)
    held = replay(plan, preemption_delay_s=1.0, overhead_ms=40.0)
    assert held["wall_ms"] >= exact["wall_ms"] + 40.0  # the last run ends its overhead later at least
    assert held["utilisation"] < exact["utilisation"]  # the held time is not work
    waits = lambda r: sum(c["mean_admission_ms"] * c["count"] for c in r["classes"].values())
    assert waits(held) > waits(exact)


SPARSE = """
cohorts:
  - className: cohort
    count: 1
    queuesSets:
    - className: lender
      count: 1
      nominalQuota: 4
      reclaimWithinCohort: Any
      workloadsSets:
      - count: 1
        creationIntervalMs: 1000
        workloads:
        - {className: reclaimer, runtimeMs: 100, priority: 0, request: 4}
    - className: borrower
      count: 1
      nominalQuota: 4
      workloadsSets:
      - count: 2
        creationIntervalMs: 10
        workloads:
        - {className: hog, runtimeMs: 600000, priority: 0, request: 4}
"""


def test_a_preemption_delay_ends_on_time_when_no_other_event_comes(replay, tmp_path):
    # the borrower's second 4-GPU job holds the lender's 4 for 10 minutes; the lender's job may reclaim them once it has
    # waited the preemption delay, with no submission or end in between to run a cycle then
    scenario = tmp_path / "sparse.yaml"
    scenario.write_text(SPARSE)
    result = replay(load(scenario), preemption_delay_s=1.0)
    assert result["preemptions"] == {"hog": 1, "reclaimer": 0}
    assert result["classes"]["reclaimer"]["mean_admission_ms"] == pytest.approx(1000.0)
