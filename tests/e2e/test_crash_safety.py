"""Issue 8's crash test: a real `allot server` killed with SIGKILL at random moments under a stream of local and
simulated jobs, restarted on the same data each time.

Each local job writes its id and its shell's pid to its log (it can reach no file of the test's: it runs under an
account of its own). At the end (the server running again):
every acknowledged job (submission answered 2xx) exists; no command ran twice, and each local job that succeeded ran
exactly once; nothing is left queued, admitted, running or preempted; and no process of any job is left (every pid
the jobs noted is gone, and no process runs from the jobs directory). The kill moments come from a fixed seed; the
kills are real.
"""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import httpx
import pytest
import yaml

from e2e.clitools import ADMIN_PASSWORD, ADMIN_USERNAME, free_port, kill_server, start_server, stop_server

pytestmark = pytest.mark.e2e

KILLS = 10
SEED = 8
FINAL = ("succeeded", "failed", "cancelled")


class Client:
    """The admin's API client; logs in again after a restart when its session did not survive."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.Client(base_url=f"{url}/api/v1", timeout=10)
        self.headers: dict[str, str] = {}

    def login(self) -> None:
        r = self.http.post("/auth/login", json={"username": ADMIN_USERNAME, "password": ADMIN_PASSWORD})
        r.raise_for_status()
        self.headers = {"Authorization": f"Bearer {r.json()['token']}"}

    def call(self, method: str, path: str, **kw) -> httpx.Response:
        r = self.http.request(method, path, headers=self.headers, **kw)
        if r.status_code == 401:
            self.login()
            r = self.http.request(method, path, headers=self.headers, **kw)
        return r


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _processes_of(jobs_dir: Path) -> list[str]:
    """Live processes whose command line names the jobs directory (the wrappers of local runs)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or not _alive(int(proc.name)):
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(jobs_dir) in cmdline:
            found.append(f"{proc.name}: {cmdline}")
    return found


def test_no_job_is_lost_or_run_twice_across_kill_9s(tmp_path):
    root = tmp_path / "crash"
    root.mkdir()
    nodes = tmp_path / "nodes.yaml"
    nodes.write_text(yaml.safe_dump({"nodes": [{"name": "sim", "cpu": 64, "memory": "256Gi", "gpus": 8,
                                                "count": 2}]}))
    port = free_port()
    settings = {"simulated_nodes": str(nodes), "scheduler_tick_s": "0.2"}
    proc, server = start_server(root, port, **settings)
    jobs_dir = server.data_dir / "jobs"
    api = Client(server.url)
    api.login()
    for path, body in (("/clusters", {"name": "sim", "backend": "simulated"}),
                       ("/clusters/local/quotas", {"name": "lab", "resources": [
                           {"resource": "cpu", "guarantee": 1, "limit": 1}]}),
                       ("/clusters/sim/quotas", {"name": "simq", "resources": [
                           {"resource": "gpu", "guarantee": 8, "limit": 8}]})):
        r = api.call("POST", path, json=body)
        assert r.status_code == 201, r.text

    rng = random.Random(SEED)
    acknowledged: dict[int, str] = {}  # job id -> "local" | "sim"
    stop = threading.Event()

    def submit_stream() -> None:
        submitter = Client(server.url)
        pick = random.Random(SEED + 1)
        while not stop.is_set():
            local = pick.random() < 0.5
            if local:
                body = {"quota": "lab", "cpu": "0.1", "command": [
                    "sh", "-c", f'echo "ran $ALLOT_JOB_ID"; echo "pid $$"; sleep {pick.uniform(0.2, 2.5):.2f}']}
            else:
                body = {"quota": "simq", "gpu": 1, "command": ["train"],
                        "labels": {"runtime_ms": pick.randint(100, 2500)}}
            try:
                r = submitter.call("POST", "/jobs", json=body)
                if 200 <= r.status_code < 300:
                    acknowledged[r.json()["id"]] = "local" if local else "sim"
            except (httpx.HTTPError, ValueError):
                pass  # the server is down or was killed mid-request: not acknowledged
            stop.wait(pick.uniform(0.03, 0.2))

    stream = threading.Thread(target=submit_stream, daemon=True)
    stream.start()
    try:
        for _ in range(KILLS):
            time.sleep(rng.uniform(0.5, 3.0))
            kill_server(proc)
            time.sleep(rng.uniform(0.0, 1.0))  # jobs run on, and some end, while the server is down
            proc, server = start_server(root, port, **settings)
        time.sleep(1.0)
        stop.set()
        stream.join(timeout=30)

        deadline = time.time() + 90
        while True:
            r = api.call("GET", "/jobs", params={"state": "queued,admitted,running,preempted", "limit": 1000})
            assert r.status_code == 200, r.text
            if r.json()["total"] == 0 or time.time() > deadline:
                break
            time.sleep(0.5)
        assert r.json()["total"] == 0, f"jobs stuck: {[(j['id'], j['state'], j['reason']) for j in r.json()['items']]}"

        jobs = {}
        for offset in range(0, 100_000, 1000):
            page = api.call("GET", "/jobs", params={"limit": 1000, "offset": offset}).json()["items"]
            jobs.update({j["id"]: j for j in page})
            if len(page) < 1000:
                break
    finally:
        stop.set()
        stop_server(proc)

    assert len(acknowledged) >= 30, "the stream submitted too little to mean anything"
    lost = sorted(set(acknowledged) - set(jobs))
    assert not lost, f"acknowledged jobs lost: {lost}"
    noted = [line.split() for log in jobs_dir.glob("job-*.log") for line in log.read_text().splitlines()]
    runs = [int(words[1]) for words in noted if len(words) == 2 and words[0] == "ran"]
    twice = sorted({i for i in runs if runs.count(i) > 1})
    assert not twice, f"commands that ran twice: {twice}"
    local = {i: j for i, j in jobs.items() if j["command"][0] == "sh"}
    succeeded = {i for i, j in local.items() if j["state"] == "succeeded"}
    assert succeeded <= set(runs), f"succeeded without running: {sorted(succeeded - set(runs))}"
    failed = {i: (j["state"], j["reason"]) for i, j in jobs.items() if j["state"] != "succeeded"}
    assert not failed, f"a kill of the server made jobs fail: {failed}"
    leftover = [int(words[1]) for words in noted if len(words) == 2 and words[0] == "pid" and _alive(int(words[1]))]
    assert not leftover, f"job processes left behind: {leftover}"
    assert not _processes_of(jobs_dir), _processes_of(jobs_dir)
