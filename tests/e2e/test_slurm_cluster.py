"""A Slurm cluster run through allotment, end to end: a real `allot server` with a Slurm cluster registered through the
API (slurmrestd, a token, a partition per pool), its inventory from Slurm, a quota, and a user's jobs admitted by
allotment and run by Slurm: GPUs of two models on their partitions, a cancel, a failure with its exit code, and a
drained node that allotment stops placing on. The real Slurm comes from scripts/slurm.sh (the `slurm` fixture).
"""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from e2e.clitools import start_server, stop_server
from e2e.engines import (
    Api,
    add_user,
    cluster_nodes,
    job_log_dir,
    register_slurm,
    slurm_env,
    squeue,
    wait_final,
    wait_until,
)

pytestmark = pytest.mark.e2e


def env_of(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def test_a_users_jobs_run_on_slurm_through_allotment(slurm, tmp_path):
    root = tmp_path / "srv"
    root.mkdir()
    proc, server = start_server(root, scheduler_tick_s="0.2")
    prefix = f"e{os.getpid()}c"
    logs = job_log_dir(slurm, prefix)
    try:
        admin = Api(server.url).login()
        quota = register_slurm(admin, slurm, "hpc", prefix, logs)
        cluster = admin.ok("GET", "/clusters/hpc")
        assert cluster["status"] == "ready" and cluster["status_error"] is None
        pools = {p["name"]: p for p in cluster["pools"]}
        assert (pools["a100"]["gpus"], pools["h100"]["gpus"]) == (4, 2)
        assert pools["a100"]["device_model"] == "a100" and pools["a100"]["cpu"] == "32"
        user = add_user(admin, f"ana{os.getpid()}", [quota])

        show = ["sh", "-c", "env | sort"]
        a100 = user.ok("POST", "/jobs", json={"quota": quota, "pool": "a100", "gpu": 2, "cpu": 1, "command": show,
                                              "env": {"TRAINING": "yes"}})["id"]
        h100 = user.ok("POST", "/jobs", json={"quota": quota, "pool": "h100", "gpu": 1, "cpu": 1,
                                              "command": show})["id"]
        fails = user.ok("POST", "/jobs", json={"quota": quota, "cpu": 1, "command": [
            "sh", "-c", "echo going down; exit 3"]})["id"]
        sleeper = user.ok("POST", "/jobs", json={"quota": quota, "pool": "a100", "gpu": 1, "cpu": 1,
                                                 "command": ["sleep", "300"]})["id"]
        quick = user.ok("POST", "/jobs/batch", json={"jobs": [
            {"quota": quota, "cpu": 1, "command": ["true"]} for _ in range(4)]})["ids"]

        running = wait_until(lambda: (j := user.job(sleeper))["state"] == "running" and j, 60, "the sleeper to run")
        assert running["backend_handle"] and running["placement"]["pool"] == "a100"
        user.ok("POST", f"/jobs/{sleeper}/cancel")
        jobs = wait_final(user, [a100, h100, fails, sleeper, *quick], timeout_s=90)

        assert {i: jobs[i]["state"] for i in (a100, h100, *quick)} == dict.fromkeys((a100, h100, *quick),
                                                                                    "succeeded")
        assert all(jobs[i]["exit_code"] == 0 and jobs[i]["backend_handle"] for i in (a100, h100, *quick))
        failed = jobs[fails]
        assert failed["state"] == "failed" and failed["exit_code"] == 3
        assert "exit code 3" in failed["reason"] and "NonZeroExitCode" in failed["reason"]
        assert jobs[sleeper]["state"] == "cancelled"
        # Each job ran in its pool's partition with the GPUs Slurm gave it, and only what it declared.
        first = env_of((logs / f"job-{a100}.log").read_text())
        second = env_of((logs / f"job-{h100}.log").read_text())
        assert (first["SLURM_JOB_PARTITION"], first["SLURMD_NODENAME"]) == ("a100", "a100-n1")
        assert (second["SLURM_JOB_PARTITION"], second["SLURMD_NODENAME"]) == ("h100", "h100-n1")
        assert first["CUDA_VISIBLE_DEVICES"] == "0,1" and second["CUDA_VISIBLE_DEVICES"] == "0"
        assert first["ALLOT_JOB_ID"] == str(a100) and first["TRAINING"] == "yes"
        assert "going down" in (logs / f"job-{fails}.log").read_text()
        handle = int(jobs[sleeper]["backend_handle"])
        wait_until(lambda: {j["job_id"]: j for j in squeue(slurm, prefix)}[handle]["job_state"] == "CANCELLED", 20,
                   "Slurm to cancel the sleeper")
        assert len(squeue(slurm, prefix)) == 8, "one Slurm job per allotment job, none twice"

        # A drained node: its devices become unhealthy in allotment and nothing is placed there.
        env = slurm_env(slurm)
        subprocess.run(["scontrol", "update", "nodename=h100-n1", "state=drain", "reason=e2e"], check=True, env=env)
        try:
            wait_until(lambda: cluster_nodes(admin, "hpc")["h100-n1"]["status"] == "draining", 45,
                       "allotment to see the drained node")
            node = cluster_nodes(admin, "hpc")["h100-n1"]
            assert {d["health"] for d in node["devices"]} == {"unhealthy"}
            held = user.ok("POST", "/jobs", json={"quota": quota, "pool": "h100", "gpu": 1, "cpu": 1,
                                                  "command": ["true"]})["id"]
            time.sleep(3)  # many cycles of the scheduler
            waiting = user.job(held)
            assert waiting["state"] == "queued", waiting
        finally:
            subprocess.run(["scontrol", "update", "nodename=h100-n1", "state=resume"], check=True, env=env)
        # Resumed: the node is ready again at the next inventory, and the job runs.
        assert wait_final(user, [held], timeout_s=90)[held]["state"] == "succeeded"
    finally:
        stop_server(proc)
