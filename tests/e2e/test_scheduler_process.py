"""`allot server` runs the scheduler loop in a process of its own (scheduler/process.py): jobs run through it, the API
asks it for a queued job's reason of now, usage recalculation's rebuild and its metrics, a loop process that dies is
started again, and stopping or killing the server leaves no loop process behind."""

from __future__ import annotations

import json
import time

import httpx
import psutil

from e2e.clitools import allot, kill_server, login_config, ok, start_server, stop_server

LOOP_MODULE = "allotment.scheduler.process"


def loop_processes(server_pid: int) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if LOOP_MODULE in (proc.info["cmdline"] or []):
            try:
                if proc.ppid() == server_pid:
                    found.append(proc)
            except psutil.NoSuchProcess:
                pass
    return found


def wait_for(predicate, timeout_s: float = 60.0, what: str = "condition"):
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def job_state(config, job_id: int) -> dict:
    return json.loads(ok(allot("jobs", "show", str(job_id), "--json", config_dir=config)).stdout)


def run_to_end(config, *command: str) -> dict:
    job = json.loads(ok(allot("jobs", "submit", "--json", "--", *command, config_dir=config)).stdout)
    return wait_for(lambda: (s := job_state(config, job["id"]))["state"] in ("succeeded", "failed", "cancelled") and s,
                    90, f"job {job['id']} to end")


def test_the_loop_runs_in_its_own_process_and_answers_the_api(tmp_path):
    root = tmp_path / "server"
    root.mkdir()
    proc, server = start_server(root, bootstrap_default_quota="true")
    restarted: list[psutil.Process] = []
    try:
        loops = wait_for(lambda: loop_processes(proc.pid), 30, "the loop process")
        assert len(loops) == 1
        config = login_config(server, tmp_path / "cli", server.admin_username, server.admin_password)

        assert run_to_end(config, "echo", "hi")["state"] == "succeeded"

        # A job that can never fit stays queued; its page asks the loop process for the reason of now.
        big = json.loads(ok(allot("jobs", "submit", "--json", "--gpu", "512", "--", "true", config_dir=config)).stdout)
        shown = wait_for(lambda: (s := job_state(config, big["id"]))["reason_code"] and s, 30, "a reason")
        assert shown["state"] == "queued" and shown["reason_code"] == "no_capacity", shown
        assert "512 gpu requested" in shown["reason"]

        # Usage recalculation rebuilds the loop's state in the loop process.
        out = json.loads(ok(allot("admin", "recalculate-usage", "--json", config_dir=config)).stdout)
        assert any("cluster local: its state is rebuilt" in line for line in out["engines"]), out

        # /metrics carries the loop process's own metrics beside the API's.
        metrics = httpx.get(server.url + "/metrics", timeout=10).text
        assert "# HELP allot_scheduler_failures_total" in metrics and "allot_http_requests_total" in metrics

        # A loop process that dies is started again, and jobs run as before.
        loops[0].kill()
        restarted = wait_for(lambda: [p for p in loop_processes(proc.pid) if p.pid != loops[0].pid], 60,
                             "a new loop process")
        assert run_to_end(config, "echo", "again")["state"] == "succeeded"
        assert "scheduler process exited" in server.log_tail(20000)
    finally:
        stop_server(proc)
    for loop in restarted:  # a stopped server stops its loop process first
        assert not loop.is_running() or loop.status() == psutil.STATUS_ZOMBIE


def test_a_killed_server_takes_its_loop_process_with_it(tmp_path):
    root = tmp_path / "server"
    root.mkdir()
    proc, _server = start_server(root)
    try:
        loop = wait_for(lambda: loop_processes(proc.pid), 30, "the loop process")[0]
    finally:
        kill_server(proc)
    wait_for(lambda: not loop.is_running() or loop.status() == psutil.STATUS_ZOMBIE, 10, "the loop process to end")
