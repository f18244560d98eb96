"""Issue 8's crash guarantees on the real Slurm and Ray engines, through a real `allot server`: the server is killed
with SIGKILL mid-run several times under a stream of jobs and restarted on the same data; and slurmctld is stopped
and brought back while jobs are queued and running.

Each job appends its id to a file (in a directory the Slurm job user may write: scripts/slurm.sh's jobs directory).
At the end: every acknowledged job exists and ended; none ran twice; jobs that kept running were adopted (they
succeed), jobs that ended while the server was down carry the engine's outcome (exit code 3 for the failing ones);
a run no job owns, started while the server was down, was stopped. During the Slurm outage, queued jobs wait with
reason code `backend_unavailable` and the engine's error, running jobs are not failed, the cluster says it is
unreachable, and everything proceeds once slurmctld is back.
"""

from __future__ import annotations

import os
import random
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from e2e.clitools import free_port, kill_server, start_server, stop_server
from e2e.engines import (
    Api,
    add_user,
    job_log_dir,
    register_slurm,
    slurm_env,
    squeue,
    start_slurmctld,
    stop_slurmctld,
    wait_final,
    wait_until,
)

pytestmark = pytest.mark.e2e

SETTINGS = {"scheduler_tick_s": "0.2"}


def _ran(path: Path) -> list[int]:
    return [int(line) for line in path.read_text().split()] if path.exists() else []


def _stream(url: str, username: str, body_of, acknowledged: dict[int, str], stop: threading.Event, seed: int,
            pause: tuple[float, float]) -> threading.Thread:
    """Submit jobs until stopped; acknowledged: job id -> kind, for the submissions the server answered 2xx."""

    def run() -> None:
        submitter = Api(url, username, "Us3r-password!", timeout=10)
        pick = random.Random(seed)
        while not stop.is_set():
            kind, body = body_of(pick)
            try:
                r = submitter.call("POST", "/jobs", json=body)
                if 200 <= r.status_code < 300:
                    acknowledged[r.json()["id"]] = kind
            except (httpx.HTTPError, ValueError):
                pass  # the server is down or was killed mid-request: not acknowledged
            stop.wait(pick.uniform(*pause))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _check_outcomes(jobs: dict[int, dict], acknowledged: dict[int, str], ran: list[int]) -> None:
    lost = sorted(set(acknowledged) - set(jobs))
    assert not lost, f"acknowledged jobs lost: {lost}"
    twice = sorted({i for i in ran if ran.count(i) > 1})
    assert not twice, f"jobs that ran twice: {twice}"
    for job_id, kind in acknowledged.items():
        job = jobs[job_id]
        if kind == "fails":
            assert (job["state"], job["exit_code"]) == ("failed", 3), job
        else:
            assert job["state"] == "succeeded", (job["id"], job["state"], job["reason"])
            assert job_id in ran, f"job {job_id} succeeded without running"


def test_slurm_jobs_survive_kill_9s_of_the_server(slurm, tmp_path):
    root = tmp_path / "srv"
    root.mkdir()
    port = free_port()
    proc, server = start_server(root, port, **SETTINGS)
    prefix = f"k{os.getpid()}s"
    logs = job_log_dir(slurm, prefix)
    ran = logs / "ran.txt"
    rng = random.Random(9)
    acknowledged: dict[int, str] = {}
    stop = threading.Event()
    try:
        admin = Api(server.url).login()
        quota = register_slurm(admin, slurm, "hpc", prefix, logs, quota_cpu=12)
        user = add_user(admin, "kim", [quota])

        def body_of(pick: random.Random) -> tuple[str, dict]:
            kind = pick.choice(["ok", "ok", "ok", "fails", "long"])
            sleep = {"ok": pick.uniform(0.2, 2.0), "fails": 0.3, "long": pick.uniform(4, 8)}[kind]
            tail = "exit 3" if kind == "fails" else "true"
            gpu = {"gpu": 1, "pool": pick.choice(["a100", "h100"])} if pick.random() < 0.3 else {}
            return kind, {"quota": quota, "cpu": 1, **gpu, "command": [
                "sh", "-c", f'echo "$ALLOT_JOB_ID" >> {ran}; sleep {sleep:.2f}; {tail}']}

        stream = _stream(server.url, user.username, body_of, acknowledged, stop, 10, (0.1, 0.4))
        for kill in range(4):
            time.sleep(rng.uniform(2.0, 5.0))
            kill_server(proc)
            if kill == 1:  # a run no job owns, started while the server is down: stopped when it is back
                orphan = subprocess.run(  # as the engine's user (its token's), who may cancel it
                    ["runuser", "-u", slurm["user"], "--", "sbatch", "--parsable", f"--job-name={prefix}-999999", f"--comment={prefix}:999999:gone",
                     "--partition=a100", f"--output={logs}/orphan.log", "--chdir=/tmp", "--wrap", "sleep 300"],
                    env=slurm_env(slurm), capture_output=True, text=True, check=True).stdout.strip()
            time.sleep(rng.uniform(0.5, 2.5))  # jobs run on, and some end, while the server is down
            proc, server = start_server(root, port, **SETTINGS)
        time.sleep(2)
        stop.set()
        stream.join(timeout=30)
        jobs = wait_final(admin, list(acknowledged), timeout_s=150)
    finally:
        stop.set()
        stop_server(proc)

    assert len(acknowledged) >= 20, "the stream submitted too little to mean anything"
    assert {"ok", "fails", "long"} <= set(acknowledged.values())
    _check_outcomes(jobs, acknowledged, _ran(ran))
    slurm_jobs = squeue(slurm, prefix)
    names = [j["name"] for j in slurm_jobs if j["name"] != f"{prefix}-999999"]
    assert sorted(names) == sorted(f"{prefix}-{i}" for i in acknowledged), "one Slurm job per job, none twice"
    state = wait_until(lambda: (s := {str(j["job_id"]): j["job_state"] for j in squeue(slurm, prefix)}[orphan])
                       in ("CANCELLED", "COMPLETED") and s, 30, "the orphan to be stopped")
    assert state == "CANCELLED"


def test_a_slurm_outage_fails_nothing_and_heals(slurm, tmp_path):
    root = tmp_path / "srv"
    root.mkdir()
    proc, server = start_server(root, **SETTINGS)
    prefix = f"o{os.getpid()}s"
    logs = job_log_dir(slurm, prefix)
    ran = logs / "ran.txt"
    try:
        admin = Api(server.url).login()
        quota = register_slurm(admin, slurm, "hpc", prefix, logs, quota_cpu=2)
        user = add_user(admin, "ola", [quota])

        def submit(sleep: float) -> int:
            return user.ok("POST", "/jobs", json={"quota": quota, "cpu": 1, "command": [
                "sh", "-c", f'echo "$ALLOT_JOB_ID" >> {ran}; sleep {sleep}']})["id"]

        running = [submit(12), submit(12)]
        queued = [submit(0.5), submit(0.5)]  # the quota holds two at a time
        wait_until(lambda: all(user.job(i)["state"] == "running" for i in running), 60, "two jobs to run")
        stop_slurmctld(slurm)
        try:
            late = submit(0.5)
            cluster = wait_until(lambda: (c := admin.ok("GET", "/clusters/hpc"))["status"] == "unreachable" and c,
                                 30, "the cluster to be unreachable")
            assert cluster["status_error"] and cluster["status_since"]
            waiting = wait_until(lambda: all(user.job(i)["reason_code"] == "backend_unavailable"
                                             for i in (*queued, late)) and [user.job(i) for i in (*queued, late)],
                                 30, "queued jobs to wait for the engine")
            assert all(j["state"] == "queued" and "engine is unavailable" in j["reason"] for j in waiting)
            time.sleep(3)
            assert [user.job(i)["state"] for i in running] == ["running", "running"], "an outage failed a job"
        finally:
            start_slurmctld(slurm)
        jobs = wait_final(user, [*running, *queued, late], timeout_s=120)
        assert {j["state"] for j in jobs.values()} == {"succeeded"}, jobs
        assert sorted(_ran(ran)) == sorted([*running, *queued, late])
        wait_until(lambda: admin.ok("GET", "/clusters/hpc")["status"] == "ready", 30, "the cluster to be ready")
    finally:
        stop_server(proc)
