"""`allot bench scenario` lays out a quota tree larger than one configuration draft may hold (the Kueue large-scale
scenario has 1,010 quotas, a draft at most core.limits.MAX_TREE_ITEMS): the draft takes the first quotas, parents
first, and the rest are created one by one under them, through the real API."""

from __future__ import annotations

from allotment.bench import runner
from allotment.bench.scenario import parse

SCENARIO = {"cohorts": [{"className": "cohort", "count": 2, "queuesSets": [{
    "className": "cq", "count": 3, "nominalQuota": 4, "borrowingLimit": 2, "reclaimWithinCohort": "Any",
    "withinClusterQueue": "LowerPriority",
    "workloadsSets": [{"count": 1, "creationIntervalMs": 10, "workloads": [
        {"className": "small", "runtimeMs": 10, "priority": 50, "request": 1}]}]}]}]}


def test_a_tree_larger_than_a_draft_is_created_whole(client, admin_headers, monkeypatch):
    monkeypatch.setattr(runner, "MAX_TREE_ITEMS", 3)
    plan = parse(SCENARIO, "tree")
    assert len(plan.quotas) == 8
    api = runner.Api("http://testserver", http=client)
    api.http.headers.update(admin_headers)
    done = runner.setup(api, plan, "t-")
    quotas = {q["name"]: q for q in api.call("GET", "/quotas", cluster=done.cluster)["items"]}
    assert set(quotas) == {f"t-{q.name}" for q in plan.quotas}
    for q in plan.quotas:
        got = quotas[f"t-{q.name}"]
        assert got["parent"] == (f"t-{q.parent}" if q.parent else None)
        (resource,) = got["resources"]
        assert float(resource["guarantee"]) == q.guarantee
    ids = runner.submit(api, plan, done)[1]
    assert len(ids) == len(plan.jobs)  # every quota, drafted or created, takes its jobs
