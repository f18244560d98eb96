"""Jobs through the API: submit, batch, list, show, cancel, with field-level validation errors."""

from __future__ import annotations

import pytest
from inventory_helpers import API, hold_devices, make_user, quota, register_node


@pytest.fixture
def team(client, admin_headers):
    """Pool h100 with 4 devices, quota `research` bound to group team-a, user alice in it."""
    register_node(client, admin_headers, "gpu-01", "H100", 4)
    client.post(f"{API}/clusters/local/pools", headers=admin_headers, json={"name": "h100", "nodes": ["gpu-01"]})
    quota(client, admin_headers, "research", gpu="4", pool="h100", allowed_priority_classes=["training",
                                                                                            "interactive"])
    alice = make_user(client, "alice", groups=("team-a",), cluster_role="user")
    assert client.put(f"{API}/quotas/research/bindings/groups/team-a", headers=admin_headers).status_code == 204
    return alice


def test_a_submitted_job_is_queued_waiting_for_the_scheduler_and_wakes_it(client, admin_headers, team):
    wakeup = client.app.state.allot.scheduler_wakeup
    wakeup.clear()
    r = client.post(f"{API}/jobs", headers=team, json={
        "quota": "research", "gpu": "4", "cpu": "16", "memory": "64Gi", "pool": "h100",
        "priority_class": "interactive", "time_limit": "1h30m", "name": "bert", "command": ["python", "train.py"]})
    assert r.status_code == 201, r.text
    job = r.json()
    assert wakeup.is_set()
    assert (job["state"], job["reason_code"], job["reason"]) == ("queued", "pending", "waiting for the scheduler")
    assert (job["gpu"], job["cpu"], job["memory"], job["pool"]) == ("4", "16", "64Gi", "h100")
    assert (job["priority_class"], job["priority"], job["time_limit_s"]) == ("interactive", 100, 5400)
    assert (job["owner"], job["quota"], job["cluster"], job["seq"]) == ("alice", "research", "local", job["id"])
    shown = client.get(f"{API}/jobs/{job['id']}", headers=team).json()
    assert shown["reason"] == "waiting for the scheduler" and shown["command"] == ["python", "train.py"]


def test_submission_errors_name_each_field(client, admin_headers, team):
    r = client.post(f"{API}/jobs", headers=team, json={
        "quota": "research", "gpu": "1.5", "cpu": "-2", "memory": "16Gb!", "pool": "a100",
        "priority_class": "inference", "time_limit": "soon", "command": []})
    assert r.status_code == 422
    errors = {e["field"]: e["message"] for e in r.json()["errors"]}
    assert set(errors) == {"gpu", "cpu", "memory", "pool", "priority_class", "time_limit", "command"}
    assert errors["gpu"].startswith("above one GPU ask for whole GPUs (got 1.5)")
    assert errors["priority_class"] == "quota research allows only interactive, training"
    assert errors["pool"] == "no pool 'a100' in the cluster of quota research"
    r = client.post(f"{API}/jobs", headers=team, json={"quota": "research", "gpu": "0.255", "command": ["x"]})
    assert r.json()["errors"] == [{"field": "gpu", "message": "fractional GPUs go in steps of 0.01 (got 0.255)"}]
    r = client.post(f"{API}/jobs", headers=team, json={"quota": "research", "gpu": "unlimited", "command": ["x"]})
    assert r.json()["errors"][0]["message"] == "a job cannot request unlimited gpu"
    r = client.post(f"{API}/jobs", headers=team, json={"quota": "research", "command": ["x"]})
    assert r.json()["errors"] == [{"field": "gpu", "message": "request some gpu, cpu or memory, or give a profile"}]
    r = client.post(f"{API}/jobs", headers=team, json={"quota": "nope", "gpu": 1, "command": ["x"]})
    assert r.status_code == 404 and r.json()["errors"] == [{"field": "quota", "message": "no quota 'nope'"}]
    # Without a quota the job goes to the only one alice may submit to (a member of local, bound to research).
    r = client.post(f"{API}/jobs", headers=team, json={"gpu": 1})
    assert r.status_code == 422 and {e["field"] for e in r.json()["errors"]} == {"command"}


def test_quantities_accept_the_documented_forms(client, admin_headers, team):
    for gpu, cpu, memory in (("4", 2, "16Gi"), (0.5, "500m", 1024), ("0.1", "0.5", "512Mi")):
        r = client.post(f"{API}/jobs", headers=team, json={"quota": "research", "gpu": gpu, "cpu": cpu,
                                                           "memory": memory, "command": "sleep 1"})
        assert r.status_code == 201, r.text
    assert r.json()["command"] == ["sleep", "1"]


def test_batch_is_all_or_nothing_and_returns_ids(client, admin_headers, team):
    good = {"quota": "research", "gpu": 1, "command": ["run"]}
    r = client.post(f"{API}/jobs/batch", headers=team, json={"jobs": [good, {**good, "gpu": "0.333"}, good,
                                                                      {**good, "command": []}]})
    assert r.status_code == 422
    assert {e["field"] for e in r.json()["errors"]} == {"jobs.1.gpu", "jobs.3.command"}
    assert client.get(f"{API}/jobs", headers=team).json()["total"] == 0
    r = client.post(f"{API}/jobs/batch", headers=team, json={"jobs": [good] * 3})
    assert r.status_code == 201
    ids = r.json()["ids"]
    assert len(ids) == 3 and ids == sorted(ids)
    seqs = [client.get(f"{API}/jobs/{i}", headers=team).json()["seq"] for i in ids]
    assert seqs == sorted(seqs)
    assert client.post(f"{API}/jobs/batch", headers=team, json={"jobs": []}).status_code == 422


def test_users_see_their_own_jobs_and_cluster_managers_all(client, admin_headers, team):
    bob = make_user(client, "bob", groups=("team-a",), cluster_role="user")
    manager = make_user(client, "mgr", cluster_role="manager")
    a = client.post(f"{API}/jobs", headers=team, json={"quota": "research", "gpu": 1, "command": ["a"]}).json()
    b = client.post(f"{API}/jobs", headers=bob, json={"quota": "research", "gpu": 1, "command": ["b"]}).json()
    assert [j["id"] for j in client.get(f"{API}/jobs", headers=team).json()["items"]] == [a["id"]]
    assert client.get(f"{API}/jobs/{b['id']}", headers=team).status_code == 404
    assert client.post(f"{API}/jobs/{b['id']}/cancel", headers=team).status_code == 404
    seen = client.get(f"{API}/jobs", headers=manager).json()
    assert seen["total"] == 2 and [j["id"] for j in seen["items"]] == [b["id"], a["id"]]
    assert client.get(f"{API}/jobs?owner=bob", headers=manager).json()["total"] == 1
    assert client.get(f"{API}/jobs?quota=research&state=queued", headers=manager).json()["total"] == 2
    assert client.get(f"{API}/jobs?state=running", headers=manager).json()["total"] == 0
    r = client.get(f"{API}/jobs?state=sleeping", headers=manager)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "state"
    assert client.get(f"{API}/jobs?limit=1", headers=manager).json()["items"][0]["id"] == b["id"]


def test_cancel_a_queued_job_ends_it_and_a_running_one_is_marked_for_stopping(client, admin_headers, team):
    queued = client.post(f"{API}/jobs", headers=team, json={"quota": "research", "gpu": 1, "command": ["a"]}).json()
    running = client.post(f"{API}/jobs", headers=team, json={"quota": "research", "gpu": 1, "command": ["b"]}).json()
    hold_devices(client, running["id"], ["gpu-01:0"], "h100")
    wakeup = client.app.state.allot.scheduler_wakeup
    wakeup.clear()
    r = client.post(f"{API}/jobs/{queued['id']}/cancel", headers=team)
    assert r.status_code == 200 and wakeup.is_set()
    assert (r.json()["state"], r.json()["reason_code"]) == ("cancelled", "cancelled")
    assert r.json()["finished_at"] is not None
    r = client.post(f"{API}/jobs/{running['id']}/cancel", headers=team)
    body = r.json()
    assert (body["state"], body["reason_code"]) == ("running", "cancel_requested")
    assert body["cancel_requested_at"] is not None
    assert body["placement"]["pool"] == "h100" and body["placement"]["devices"][0]["index"] == 0
    again = client.post(f"{API}/jobs/{queued['id']}/cancel", headers=team)
    assert again.status_code == 409 and "already ended (cancelled)" in again.json()["detail"]


def test_a_profile_sets_the_allotment_and_excludes_explicit_resources(client, admin_headers, team):
    r = client.post(f"{API}/clusters/local/profiles", headers=admin_headers,
                    json={"name": "4xGPU", "gpu": 4, "pools": [{"pool": "h100", "name": "4 GPU H100 link"}]})
    assert r.status_code == 201, r.text
    job = client.post(f"{API}/jobs", headers=team, json={"quota": "research", "profile": "4xGPU",
                                                         "command": ["x"]})
    assert job.status_code == 201 and (job.json()["profile"], job.json()["gpu"]) == ("4xGPU", "4")
    r = client.post(f"{API}/jobs", headers=team, json={"quota": "research", "profile": "4xGPU", "gpu": 2,
                                                       "command": ["x"]})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "gpu"
    r = client.post(f"{API}/jobs", headers=team, json={"quota": "research", "profile": "8xGPU", "command": ["x"]})
    assert r.json()["errors"] == [{"field": "profile", "message": "no profile '8xGPU' in the cluster of quota research"}]
    client.post(f"{API}/clusters/local/pools", headers=admin_headers, json={"name": "spare"})
    r = client.post(f"{API}/jobs", headers=team, json={"quota": "research", "profile": "4xGPU", "pool": "spare",
                                                       "command": ["x"]})
    assert r.json()["errors"] == [{"field": "pool", "message": "profile 4xGPU is not linked to pool spare"}]


def test_unauthenticated_requests_are_refused(client):
    assert client.post(f"{API}/jobs", json={"quota": "q", "gpu": 1, "command": ["x"]}).status_code == 401
    assert client.get(f"{API}/jobs").status_code == 401
