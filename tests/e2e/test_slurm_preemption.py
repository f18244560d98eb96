"""Preemption on a Slurm cluster, end to end: allotment decides, Slurm carries it out. A quota that lets higher
priority classes preempt lower ones within it holds both H100s with an interactive job; an inference job for the
same GPUs preempts it: the victim's Slurm job is cancelled, the victim goes back to the queue with the reason naming
the job that preempted it, the inference job runs on the freed GPUs, and the victim runs again afterwards as a new
Slurm job. The real Slurm comes from scripts/slurm.sh (the `slurm` fixture)."""

from __future__ import annotations

import os

import pytest

from e2e.clitools import start_server, stop_server
from e2e.engines import Api, add_user, job_log_dir, register_slurm, squeue, wait_final, wait_until

pytestmark = pytest.mark.e2e


def test_a_higher_priority_job_preempts_a_slurm_job_which_runs_again_later(slurm, tmp_path):
    root = tmp_path / "srv"
    root.mkdir()
    proc, server = start_server(root, scheduler_tick_s="0.2")
    prefix = f"p{os.getpid()}c"
    logs = job_log_dir(slurm, prefix)
    try:
        admin = Api(server.url).login()
        quota = register_slurm(admin, slurm, "hpcp", prefix, logs)
        admin.ok("PATCH", f"/quotas/{quota}", json={"within_quota_preemption": "lower_priority"})
        user = add_user(admin, f"pre{os.getpid()}", [quota])

        # The victim writes a line each time it starts, then sleeps: its log tells how often it ran.
        victim = user.ok("POST", "/jobs", json={
            "quota": quota, "pool": "h100", "gpu": 2, "cpu": 1, "priority_class": "interactive",
            "command": ["sh", "-c", "echo run $SLURM_JOB_ID; sleep 20"]})["id"]
        first = wait_until(lambda: (j := user.job(victim))["state"] == "running" and j, 60, "the victim to run")
        first_handle = int(first["backend_handle"])

        urgent = user.ok("POST", "/jobs", json={
            "quota": quota, "pool": "h100", "gpu": 2, "cpu": 1, "priority_class": "inference",
            "command": ["sh", "-c", "echo urgent on $CUDA_VISIBLE_DEVICES"]})["id"]
        requeued = wait_until(lambda: (j := user.job(victim))["state"] in ("queued", "admitted", "running")
                              and j["preemptions"] >= 1 and j, 60, "the victim to be preempted and requeued")
        assert f"preempted by job {urgent}" in (requeued["reason"] or ""), requeued

        # Slurm carried out the preemption: the victim's first Slurm job ended as cancelled.
        wait_until(lambda: {j["job_id"]: j for j in squeue(slurm, prefix)}[first_handle]["job_state"]
                   == "CANCELLED", 30, "Slurm to cancel the victim's first run")
        done = wait_final(user, [urgent], timeout_s=90)[urgent]
        assert done["state"] == "succeeded" and done["exit_code"] == 0, done
        assert (logs / f"job-{urgent}.log").read_text().strip() == "urgent on 0,1"

        # The victim comes back as a new Slurm job on the freed GPUs and completes.
        ended = wait_final(user, [victim], timeout_s=120)[victim]
        assert ended["state"] == "succeeded" and ended["preemptions"] == 1, ended
        assert int(ended["backend_handle"]) != first_handle
        runs = [line for line in (logs / f"job-{victim}.log").read_text().splitlines() if line.startswith("run ")]
        assert runs == [f"run {first_handle}", f"run {ended['backend_handle']}"], runs
    finally:
        stop_server(proc)
