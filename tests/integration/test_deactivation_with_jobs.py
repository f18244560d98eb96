"""Deactivating a user with admitted or running jobs (DKube refuses to delete a user with an active job): refused
with the jobs listed, unless the admin passes stop_jobs, which cancels them through the normal path (the engines
stop them) and is audited. Jobs still waiting are cancelled either way: nothing of a deactivated user may start."""

from __future__ import annotations

import pytest
from inventory_helpers import API, hold_devices, make_user, quota, register_node, set_state


@pytest.fixture
def alice(client, admin_headers):
    register_node(client, admin_headers, "gpu-01", "H100", 4)
    quota(client, admin_headers, "Dev", gpu="4")
    headers = make_user(client, "alice", cluster_role="user")
    assert client.put(f"{API}/quotas/Dev/bindings/users/alice", headers=admin_headers).status_code == 204
    return headers


def submit(client, headers, name: str) -> int:
    r = client.post(f"{API}/jobs", headers=headers, json={"quota": "Dev", "gpu": 1, "command": ["train"],
                                                          "name": name})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def test_refused_while_jobs_run_listing_them_then_stop_jobs_cancels_them(client, admin_headers, alice):
    running = submit(client, alice, "bert")
    hold_devices(client, running, ["gpu-01:0"], "default")
    admitted = submit(client, alice, "gpt")
    set_state(client, admitted, "admitted")
    queued = submit(client, alice, "later")

    r = client.post(f"{API}/users/alice/deactivate", headers=admin_headers)
    assert r.status_code == 409, r.text
    detail = r.json()["detail"]
    assert detail.startswith("alice has 2 admitted or running job(s): ")
    assert f"job {running} (bert, running on local)" in detail and f"job {admitted} (gpt, admitted on local)" in detail
    assert "stop_jobs" in detail and "--stop-jobs" in detail
    assert r.json()["errors"][0]["field"] == "stop_jobs"
    # Nothing changed: still active, the jobs untouched, the PATCH path refuses the same way.
    assert client.get(f"{API}/users/alice", headers=admin_headers).json()["is_active"] is True
    assert client.get(f"{API}/jobs/{queued}", headers=alice).json()["state"] == "queued"
    assert client.patch(f"{API}/users/alice", json={"is_active": False}, headers=admin_headers).status_code == 409

    wakeup = client.app.state.allot.scheduler_wakeup
    wakeup.clear()
    r = client.post(f"{API}/users/alice/deactivate?stop_jobs=true", headers=admin_headers)
    assert r.status_code == 200, r.text
    assert r.json()["is_active"] is False and sorted(r.json()["jobs_cancelled"]) == sorted([running, admitted, queued])
    assert wakeup.is_set()
    jobs = {j: client.get(f"{API}/jobs/{j}", headers=admin_headers).json() for j in (running, admitted, queued)}
    # Running and admitted jobs are marked for the scheduler to stop on their engine; the queued one ends at once.
    assert jobs[running]["reason_code"] == jobs[admitted]["reason_code"] == "cancel_requested"
    assert jobs[queued]["state"] == "cancelled"
    assert all("alice was deactivated by admin" in j["reason"] for j in jobs.values())
    audit = client.get(f"{API}/audit?action=user.deactivate", headers=admin_headers).json()["items"][0]
    assert audit["changes"]["after"]["stop_jobs"] is True
    assert sorted(audit["changes"]["after"]["jobs_cancelled"]) == sorted([running, admitted, queued])
    cancels = client.get(f"{API}/audit?action=job.cancel", headers=admin_headers).json()["items"]
    assert sorted(e["target"] for e in cancels) == ["bert", "gpt", "later"]


def test_without_running_jobs_it_deactivates_and_cancels_the_waiting_ones(client, admin_headers, alice):
    queued = submit(client, alice, "later")
    r = client.post(f"{API}/users/alice/deactivate", headers=admin_headers)
    assert r.status_code == 200 and r.json()["jobs_cancelled"] == [queued]
    job = client.get(f"{API}/jobs/{queued}", headers=admin_headers).json()
    assert job["state"] == "cancelled" and "alice was deactivated by admin" in job["reason"]


def test_finished_jobs_do_not_stand_in_the_way(client, admin_headers, alice):
    done = submit(client, alice, "done")
    set_state(client, done, "succeeded")
    r = client.post(f"{API}/users/alice/deactivate", headers=admin_headers)
    assert r.status_code == 200 and r.json()["jobs_cancelled"] == []
