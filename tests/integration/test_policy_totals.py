"""Backend.AI's keypair resource policy bounds the total a user holds at once (admitted and running jobs, across
clusters), not each job alone: a job that would go over waits with the numbers, and goes when enough is freed or the
policy rises. The allowance shows what is in use and what is left."""

from __future__ import annotations

import re

import pytest
from sched_helpers import Harness

from conftest import login

PASSWORD = "Str0ng-password!"


@pytest.fixture
def h(client, admin_headers) -> Harness:
    h = Harness(client, admin_headers)
    h.node("a100-node", gpus=8, model="A100")
    h.quota("team", [{"resource": "gpu", "guarantee": 8, "limit": 8}])
    h.post("/resource-policies", {"name": "p1", "gpu": 2, "fgpu": "2", "cpu": 8, "memory": 64}, 201)
    h.post("/users", {"email": "alice@example.com", "username": "alice", "password": PASSWORD,
                      "resource_policy": "p1"}, 201)
    h.ok(h.client.put("/api/v1/quotas/team/bindings/users/alice", headers=h.headers), 204)
    h.put("/clusters/sim/users/alice", {"role": "user"})  # submitting takes a role on the cluster
    return h


def test_caps_bound_the_sum_of_a_users_jobs_and_a_held_job_goes_when_one_ends(h):
    alice = login(h.client, "alice", PASSWORD)
    first = h.submit("team", gpu=1, runtime_s=10, headers=alice)
    second = h.submit("team", gpu=1, runtime_s=100, headers=alice)
    third = h.submit("team", gpu=1, runtime_s=100, headers=alice)
    h.settle(2)
    assert h.states([first, second, third]) == ["running", "running", "queued"]
    held = h.job(third)
    assert held["reason_code"] == "policy_limit"
    assert held["reason"].startswith("user alice's resource policy p1 allows 2 GPUs at once; 2 are in use and this "
                                     "job asks for 1")
    allowance = h.get("/users/alice/allowance", headers=alice)["caps"]
    assert allowance["gpu"] == {"limit": 2, "in_use": 2, "remaining": 0, "description": allowance["gpu"]["description"]}
    assert allowance["fgpu"]["in_use"] == "2" and allowance["fgpu"]["remaining"] == "0"
    page = h.client.get("/ui/account", headers=alice).text  # the console shows the same numbers
    row = re.search(r'data-testid="allowance-gpu">(.*?)</tr>', page).group(1)
    assert re.findall(r"<td>(.*?)</td>", row)[1:] == ["2", "2", "0"]

    h.cycle(11.0)  # the first job ends
    h.settle(2)
    assert h.states([first, second, third]) == ["succeeded", "running", "running"]
    assert h.get("/users/alice/allowance", headers=alice)["caps"]["gpu"]["in_use"] == 2


def test_a_held_job_goes_when_the_policy_rises_and_a_cancelled_one_frees_its_share(h):
    alice = login(h.client, "alice", PASSWORD)
    running = h.submit("team", gpu=2, runtime_s=100, headers=alice)
    held = h.submit("team", gpu=1, runtime_s=100, headers=alice)
    h.settle(2)
    assert h.states([running, held]) == ["running", "queued"]
    assert h.job(held)["reason_code"] == "policy_limit"
    h.ok(h.client.patch("/api/v1/resource-policies/p1", json={"gpu": 3, "fgpu": "3"}, headers=h.headers))
    h.settle(2)
    assert h.states([running, held]) == ["running", "running"]
    later = h.submit("team", gpu=1, runtime_s=100, headers=alice)
    h.settle(2)
    assert h.job(later)["reason_code"] == "policy_limit"
    h.ok(h.client.post(f"/api/v1/jobs/{running}/cancel", headers=alice))
    h.settle(3)
    assert h.states([running, held, later]) == ["cancelled", "running", "running"]


def test_memory_and_cpu_totals_hold_jobs_too(h):
    alice = login(h.client, "alice", PASSWORD)
    big = h.submit("team", cpu=6, memory="48Gi", runtime_s=100, headers=alice)
    small = h.submit("team", cpu=4, memory="8Gi", runtime_s=100, headers=alice)
    h.settle(2)
    assert h.states([big, small]) == ["running", "queued"]
    reason = h.job(small)["reason"]
    assert "allows 8 CPU cores at once; 6 are in use and this job asks for 4" in reason
    allowance = h.get("/users/alice/allowance", headers=alice)["caps"]
    assert (allowance["cpu"]["in_use"], allowance["cpu"]["remaining"]) == ("6", "2")
    assert (allowance["memory"]["in_use"], allowance["memory"]["remaining"]) == ("48Gi", "16Gi")


def test_a_user_moved_to_a_capped_policy_keeps_running_jobs_and_new_ones_wait(h):
    h.post("/users", {"email": "bert@example.com", "username": "bert", "password": PASSWORD}, 201)
    h.ok(h.client.put("/api/v1/quotas/team/bindings/users/bert", headers=h.headers), 204)
    h.put("/clusters/sim/users/bert", {"role": "user"})
    bert = login(h.client, "bert", PASSWORD)
    running = [h.submit("team", gpu=1, runtime_s=100, headers=bert) for _ in range(3)]
    h.settle(2)
    assert h.states(running) == ["running"] * 3
    h.ok(h.client.patch("/api/v1/users/bert", json={"resource_policy": "p1"}, headers=h.headers))
    later = h.submit("team", gpu=1, runtime_s=100, headers=bert)
    h.settle(2)
    assert h.states(running) == ["running"] * 3  # a lowered cap stops nothing
    assert h.job(later)["state"] == "queued"
    assert "allows 2 GPUs at once; 3 are in use and this job asks for 1" in h.job(later)["reason"]
