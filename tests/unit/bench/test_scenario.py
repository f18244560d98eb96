from pathlib import Path

import pytest

from allotment.bench.scenario import ScenarioError, load, parse

SCENARIOS = Path(__file__).resolve().parents[3] / "benchmarks" / "scenarios"


def test_kueue_baseline_shape():
    s = load(SCENARIOS / "kueue-baseline.yaml")
    assert len(s.jobs) == 15_000
    cohorts = [q for q in s.quotas if q.parent is None]
    leaves = [q for q in s.quotas if q.parent is not None]
    assert len(cohorts) == 5 and len(leaves) == 30
    assert all(c.guarantee == 120 for c in cohorts)
    assert s.capacity == 600
    leaf = leaves[0]
    assert (leaf.guarantee, leaf.limit, leaf.reclaim, leaf.within_quota_preemption) == (20, 120, "any", "lower_priority")
    # Zero-overhead bound quoted with Kueue's results: about 66 s.
    assert s.ideal_work / s.capacity == pytest.approx(66, rel=0.01)
    small = [j for j in s.jobs if j.quota == leaf.name and j.job_class == "small"]
    assert [j.at_ms for j in small[:3]] == [100, 200, 300] and len(small) == 350


def test_kueue_large_scale_shape():
    s = load(SCENARIOS / "kueue-large-scale.yaml")
    assert len(s.jobs) == 50_000
    assert len([q for q in s.quotas if q.parent]) == 1000


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "at least one entry under `cohorts`"),
        ({"cohorts": [{"queuesSets": [{"nominalQuota": "x"}]}]}, "nominalQuota: 'x' is not a number"),
        ({"cohorts": [{"queuesSets": [{"nominalQuota": 1, "reclaimWithinCohort": "Sometimes"}]}]},
         "unknown policy 'Sometimes'"),
    ],
)
def test_bad_scenarios_name_the_problem(data, message):
    with pytest.raises(ScenarioError, match=message):
        parse(data)


def test_deeper_trees():
    s = parse({"cohorts": [{"count": 1, "queuesSets": [{"className": "team", "nominalQuota": 10, "children": [
        {"className": "sub", "count": 2, "nominalQuota": 5,
         "workloadsSets": [{"count": 1, "workloads": [{"className": "a", "request": 1}]}]}]}]}]})
    names = {q.name: q.parent for q in s.quotas}
    assert names["team-0-0-cohort-0"] == "cohort-0"
    assert sum(1 for p in names.values() if p == "team-0-0-cohort-0") == 2
    assert len(s.jobs) == 2
