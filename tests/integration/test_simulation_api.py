"""What-if replay through the API: the cluster's own history against its draft and its live configuration, uploaded
traces with bad rows, and who may simulate."""

from __future__ import annotations

import time

import pytest
from access_helpers import PASSWORD, add_user, login
from sched_helpers import API, Harness


@pytest.fixture
def cluster(client, admin_headers) -> Harness:
    """Cluster sim: one 4-GPU pool; quotas team-a (guarantee 1 GPU) and team-b (none); four 2-GPU jobs of team-a
    that ran 100 s each, two at a time."""
    h = Harness(client, admin_headers)
    h.node("n1", gpus=4)
    h.pool("gpus", ["n1"])
    h.quota("team-a", [{"resource": "gpu", "pool": "gpus", "guarantee": 1}])
    h.quota("team-b", [{"resource": "gpu", "pool": "gpus", "guarantee": 0}])
    ids = [h.submit("team-a", runtime_s=100, gpu=2) for _ in range(4)]
    for _ in range(6):
        h.settle(2, advance=60)
    assert h.states(ids) == ["succeeded"] * 4
    return h


def wait_done(h: Harness, location: str, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        run = h.get(location)
        if run["status"] != "running" or time.monotonic() > deadline:
            return run
        time.sleep(0.05)


def test_history_replayed_against_the_draft_and_the_live_configuration(cluster):
    h = cluster
    draft = h.get("/clusters/sim/resource-config/draft")
    for q in draft["quotas"]:  # the draft limits team-a to 2 GPUs: its jobs run one at a time
        if q["name"] == "team-a":
            q["resources"][0]["limit"] = "2"
    h.put("/clusters/sim/resource-config/draft", {k: draft[k] for k in ("quotas", "profiles", "pool_profile_order")})

    response = h.client.post(f"{API}/clusters/sim/simulations", json={"days": 1, "config": "draft",
                                                                    "against": "current", "series": 10},
                             headers=h.headers)
    assert response.status_code == 202, response.text
    location = response.headers["location"].removeprefix(API)
    run = wait_done(h, location)
    assert run["status"] == "done", run
    assert run["jobs"] == 4
    draft_a = run["result"]["config"]["quotas"]["team-a"]
    live_a = run["result"]["against"]["quotas"]["team-a"]
    assert draft_a["jobs_run"] == live_a["jobs_run"] == 4
    assert draft_a["queueing_s"]["mean"] > live_a["queueing_s"]["mean"]
    assert run["result"]["differences"]["quotas"]["team-a"]["queue mean s"] < 0
    assert len(run["result"]["config"]["pools"]["gpus"]["series"]) == 10


def test_inputs_give_the_configuration_and_the_history(cluster):
    h = cluster
    today = time.strftime("%Y-%m-%d", time.gmtime())
    out = h.post("/clusters/sim/simulation-inputs", {"history": {"from": today, "to": today}})
    assert [row[2] for row in out["jobs"]] == ["team-a"] * 4
    assert all(row[3] == 2000 and row[1] == pytest.approx(100, abs=61) for row in out["jobs"])
    assert {q["id"] for q in out["config"]["quotas"]} >= {"team-a", "team-b"}
    pools = {p["name"]: p for p in out["config"]["pools"]}
    assert len(pools["gpus"]["devices"]) == 4


def test_a_configuration_file_with_errors_names_the_fields(cluster):
    h = cluster
    bad = {"quotas": [{"name": "x", "resources": [{"pool": "nowhere", "resource": "gpu", "guarantee": "1"}]}]}
    r = h.client.post(f"{API}/clusters/sim/simulation-inputs", json={"config": bad}, headers=h.headers)
    assert r.status_code == 422, r.text
    fields = [e["field"] for e in r.json()["errors"]]
    assert fields == ["config.quotas[0].resources[0].pool"]


def test_uploaded_trace_with_bad_rows_is_refused_with_line_numbers(cluster):
    h = cluster
    text = "submit,duration,gpu,quota\n0,10,1,team-a\n0,ten,1,team-a\n0,10,1\n"
    r = h.client.post(f"{API}/clusters/sim/simulations", json={"trace": {"text": text}}, headers=h.headers)
    assert r.status_code == 422, r.text
    messages = [e["message"] for e in r.json()["errors"]]
    assert messages[0].startswith("line 3: duration 'ten' is not a number")
    assert messages[1].startswith("line 4: 3 fields where the header has 4")


def test_uploaded_trace_runs(cluster):
    h = cluster
    text = "submit,duration,gpu,quota\n0,100,4,team-b\n10,100,1,team-a\n"
    r = h.client.post(f"{API}/clusters/sim/simulations", json={"trace": {"text": text}}, headers=h.headers)
    assert r.status_code == 202, r.text
    run = wait_done(h, f"/clusters/sim/simulations/{r.json()['id']}")
    a = run["result"]["config"]["quotas"]["team-a"]
    assert a["queueing_s"]["mean"] == 90.0  # team-a cannot reclaim (reclaim never): it waits for team-b's end
    assert a["below_guarantee"][0]["seconds"] == 90.0


def test_exactly_one_source(cluster):
    h = cluster
    r = h.client.post(f"{API}/clusters/sim/simulations", json={"days": 1, "trace": {"text": "x"}},
                      headers=h.headers)
    assert r.status_code == 422 and "exactly one of" in r.text


def test_managers_may_simulate_users_may_not(cluster):
    h = cluster
    add_user(h.client, "mia")
    add_user(h.client, "uma")
    h.put("/clusters/sim/users/mia", {"role": "manager"})
    h.put("/clusters/sim/users/uma", {"role": "user"})
    for name, status in (("mia", 202), ("uma", 403)):
        headers = login(h.client, name, PASSWORD)
        r = h.client.post(f"{API}/clusters/sim/simulations", json={"days": 1}, headers=headers)
        assert r.status_code == status, (name, r.text)
    r = h.client.get(f"{API}/clusters/sim/simulations/999", headers=h.headers)
    assert r.status_code == 404


def test_the_live_budgets_hold_jobs_in_the_replay(cluster):
    """team-a's four 2-GPU jobs of 100 s need 800 GPU-seconds; a one-off budget of 5 minutes holds the last ones."""
    h = cluster
    h.put("/quotas/team-a/budgets/gpu", {"period": "once", "amount": "5m"})
    r = h.client.post(f"{API}/clusters/sim/simulations", json={"days": 1}, headers=h.headers)
    assert r.status_code == 202, r.text
    run = wait_done(h, f"/clusters/sim/simulations/{r.json()['id']}")
    a = run["result"]["config"]["quotas"]["team-a"]
    assert a["budgets"][0]["budget_hours"] == round(300 / 3600, 1)
    assert a["budgets"][0]["jobs_held"] >= 1
    assert a["jobs_run"] < 4 and run["result"]["config"]["totals"]["held_at_end"] == 4 - a["jobs_run"]
