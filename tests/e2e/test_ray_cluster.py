"""A Ray cluster run through allotment, end to end: a real `allot server` with a Ray cluster registered through the API
(the Jobs API's address, a custom resource per pool), its inventory from Ray, a quota, and a user's jobs admitted by
allotment and run by Ray: a success on each GPU model, a failure with its exit code, a cancel; then a SIGKILL of the
server while jobs run and end: the running one is adopted, the ended one recorded with Ray's outcome, none runs
twice. Few jobs: Ray runs about one a second here. The head comes from scripts/ray.sh (the `ray_head` fixture).
"""

from __future__ import annotations

import time

import pytest

from e2e.clitools import free_port, kill_server, start_server, stop_server
from e2e.engines import Api, add_user, cluster_nodes, wait_final, wait_until

pytestmark = pytest.mark.e2e

SETTINGS = {"scheduler_tick_s": "0.2"}


def test_a_users_jobs_run_on_ray_through_allotment_and_survive_a_kill_9(ray_head, tmp_path):
    root = tmp_path / "srv"
    root.mkdir()
    port = free_port()
    proc, server = start_server(root, port, **SETTINGS)
    ran = tmp_path / "ran.txt"  # Ray's jobs run as the head's user
    try:
        admin = Api(server.url).login()
        admin.ok("POST", "/clusters", json={"name": "rays", "backend": "ray", "engine": {
            "address": ray_head["address"], "resources": {"a100": "a100", "h100": "h100"}}})
        nodes = wait_until(lambda: cluster_nodes(admin, "rays"), 60, "the engine's inventory")
        (node, info), = nodes.items()
        assert sorted(d["model"] for d in info["devices"]) == ["a100"] * 4 + ["h100"] * 2
        by_model = {m: [f"{node}:{d['index']}" for d in info["devices"] if d["model"] == m] for m in ("a100", "h100")}
        for model, devices in by_model.items():
            admin.ok("POST", "/clusters/rays/pools", json={"name": model, "devices": devices})
        admin.ok("POST", "/clusters/rays/quotas", json={"name": "rq", "resources": [
            {"resource": "gpu", "guarantee": 6, "limit": 6}]})
        assert admin.ok("GET", "/clusters/rays")["status"] == "ready"
        user = add_user(admin, "rae", ["rq"])

        def submit(pool: str, script: str) -> int:
            return user.ok("POST", "/jobs", json={"quota": "rq", "pool": pool, "gpu": 1, "env": {"TRAINING": "yes"},
                                                  "command": ["sh", "-c", f'echo "$ALLOT_JOB_ID" >> {ran}; {script}']})[
                "id"]

        a100 = submit("a100", "echo model=$TRAINING gpus=$CUDA_VISIBLE_DEVICES")
        h100 = submit("h100", "true")
        fails = submit("a100", "echo going down; exit 3")
        sleeper = submit("h100", "sleep 300")
        wait_until(lambda: user.job(sleeper)["state"] == "running", 90, "the sleeper to run")
        user.ok("POST", f"/jobs/{sleeper}/cancel")
        jobs = wait_final(user, [a100, h100, fails, sleeper], timeout_s=120)
        assert [jobs[i]["state"] for i in (a100, h100, fails, sleeper)] == ["succeeded", "succeeded", "failed",
                                                                             "cancelled"]
        assert jobs[fails]["exit_code"] == 3 and "exit code 3" in jobs[fails]["reason"]
        log = server.data_dir / "jobs" / f"job-{a100}.log"
        assert "model=yes gpus=" in log.read_text()

        # A kill -9 while one job runs on and another ends: adopted and recorded once the server is back.
        # long outlasts the restart: the server is ready once its loop's first cycle has asked Ray about its jobs
        long = submit("a100", "sleep 25")
        short = submit("h100", "sleep 3; exit 3")
        wait_until(lambda: all(user.job(i)["state"] == "running" for i in (long, short)), 90, "both to run")
        kill_server(proc)
        time.sleep(6)  # the short one ends meanwhile
        proc, server = start_server(root, port, **SETTINGS)
        assert user.job(long)["state"] == "running"
        jobs = wait_final(user, [long, short], timeout_s=90)
        assert jobs[long]["state"] == "succeeded"
        assert (jobs[short]["state"], jobs[short]["exit_code"]) == ("failed", 3)
    finally:
        stop_server(proc)
    runs = [int(x) for x in ran.read_text().split()]
    assert sorted(runs) == sorted([a100, h100, fails, sleeper, long, short]), "each job ran once"
