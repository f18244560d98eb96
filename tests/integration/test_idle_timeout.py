"""The idle timeout of resource policies (Backend.AI), enforced by the real scheduler loop thread on the local engine:
a job whose processes use no CPU time for its owner's policy's idle timeout is ended; a busy one, or one whose owner's
policy has no timeout, keeps running; moving a user to a policy with a timeout takes effect without a restart."""

from __future__ import annotations

import os
import time

from fastapi.testclient import TestClient
from inventory_helpers import API, make_user

from allotment.api.app import create_app
from conftest import ADMIN_PASSWORD, login, make_settings

TIMEOUT_S = 2


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_idle_jobs_end_at_their_owners_policy_timeout_and_busy_ones_keep_running(tmp_path, backend):
    app = create_app(make_settings(tmp_path, backend, scheduler_enabled=True, scheduler_tick_s=0.2))
    pids: list[int] = []
    with TestClient(app) as client:
        admin = login(client, "admin", ADMIN_PASSWORD)
        seen = []
        client.app.state.allot.extras["scheduler_meter"].hooks.append(seen.append)

        def call(method: str, path: str, body=None, headers=admin, status: int = 200):
            r = client.request(method, API + path, json=body, headers=headers)
            assert r.status_code == status, r.text
            return r.json() if r.content else None

        call("POST", "/resource-policies", {"name": "sleepy", "idle_timeout_s": TIMEOUT_S}, status=201)
        call("PATCH", "/users/admin", {"resource_policy": "sleepy"})
        call("POST", "/clusters/local/quotas", {"name": "lab", "resources": [
            {"resource": "cpu", "guarantee": "0.4", "limit": "0.4"}]}, status=201)
        call("PUT", "/quotas/lab/bindings/groups/users", status=204)
        other = make_user(client, "owl", cluster_role="user")  # the default policy: no idle timeout

        def submit(command: str, headers=admin) -> int:
            return call("POST", "/jobs", {"quota": "lab", "command": ["sh", "-c", command], "cpu": "0.1"},
                        headers=headers, status=201)["id"]

        def wait_for(job_id: int, states: tuple[str, ...], within: float = 30.0) -> dict:
            deadline = time.time() + within
            while True:
                job = call("GET", f"/jobs/{job_id}")
                if job["state"] in states or time.time() > deadline:
                    return job
                time.sleep(0.1)

        idle = submit("sleep 60")
        busy = submit("while :; do :; done")
        owls = submit("sleep 60", headers=other)
        try:
            for job_id in (idle, busy, owls):
                job = wait_for(job_id, ("running",))
                assert job["state"] == "running", job
                pids.append(int(job["backend_handle"]))

            ended = wait_for(idle, ("failed", "succeeded", "cancelled"))
            assert (ended["state"], ended["reason_code"]) == ("failed", "idle_timeout"), ended
            assert f"the idle timeout of resource policy sleepy is {TIMEOUT_S} s" in ended["reason"]
            idle_s = int(ended["reason"].split("idle for ")[1].split(" s")[0])
            assert TIMEOUT_S <= idle_s < TIMEOUT_S + 10
            assert not _alive(pids[0])  # stopped through the engine
            (usage,) = [u for u in seen if u.job_id == idle]
            assert usage.outcome == "failed"

            time.sleep(TIMEOUT_S + 1.0)  # more than a timeout later, the busy job and the unlimited owner's job run on
            assert call("GET", f"/jobs/{busy}")["state"] == "running"
            assert call("GET", f"/jobs/{owls}")["state"] == "running"

            call("PATCH", "/users/owl", {"resource_policy": "sleepy"})  # no restart: the next check applies it
            ended = wait_for(owls, ("failed", "succeeded", "cancelled"), within=10.0)
            assert (ended["state"], ended["reason_code"]) == ("failed", "idle_timeout"), ended
            assert call("GET", f"/jobs/{busy}")["state"] == "running"
            call("POST", f"/jobs/{busy}/cancel")
            assert wait_for(busy, ("cancelled",))["state"] == "cancelled"
        finally:
            call("PATCH", "/users/admin", {"resource_policy": None})
    # leaving the client stops the loop, which stops every process its engine started
    assert [pid for pid in pids if _alive(pid)] == []


def test_the_loop_looks_for_idle_jobs_at_most_once_a_second_whatever_its_tick(tmp_path, backend, monkeypatch):
    # Idle timeouts are whole seconds: a look at every tick (50 ms in the benchmarks) read the policies 20 times a
    # second for nothing. The local cluster's engine reports idleness, so a fresh install asks it.
    from allotment.scheduler import load
    from allotment.scheduler.loop import IDLE_CHECK_S, Scheduler

    app = create_app(make_settings(tmp_path, backend, scheduler_tick_s=0.05))
    with TestClient(app):
        looks: list[float] = []
        real = load.idle_limits
        monkeypatch.setattr(load, "idle_limits", lambda session, ids: looks.append(1) or real(session, ids))
        scheduler = Scheduler(app.state.allot)
        start = 1_790_000_000.0
        for step in range(41):  # 2 s of cycles 50 ms apart
            scheduler.run_cycle(start + step * 0.05)
        assert len(looks) == int(2.0 / IDLE_CHECK_S) + 1  # at 0, 1 and 2 s
