"""Running a scenario through the real path: HTTP submission, database, scheduler loop, simulated execution.

`ThrowawayServer` starts `allot server` as a subprocess on a free port with a temporary SQLite database and a short
scheduler tick (nothing needs to run beforehand). `run` then creates a simulated cluster sized to the scenario's
capacity, the quota tree and the priority classes through the REST API, submits the jobs at their creation times
(everything due is sent in one POST /jobs/batch, so a late client catches up instead of drifting), waits until
every job has finished, and returns the jobs as the API reports them.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import httpx

from allotment.bench.scenario import JobPlan, Scenario
from allotment.core.limits import MAX_BATCH_JOBS, MAX_TREE_ITEMS

API = "/api/v1"
ADMIN = "bench-admin"
ADMIN_PASSWORD = "Bench-password-1!"
MAX_BATCH = MAX_BATCH_JOBS  # POST /jobs/batch refuses more at once
ACTIVE = "queued,admitted,running,preempted"
GPUS_PER_NODE = 8

Progress = Callable[[str], None]


class BenchError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ThrowawayServer:
    """`allot server` in a temporary directory; stopped and removed on exit."""

    def __init__(self, tick_s: float = 0.05, keep: bool = False, extra_env: dict[str, str] | None = None) -> None:
        self.tick_s = tick_s
        self.keep = keep
        self.extra_env = extra_env or {}
        self.dir = Path(tempfile.mkdtemp(prefix="allot-bench-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.log_path = self.dir / "server.log"

    def __enter__(self) -> Self:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ALLOT_")}
        env.update({
            "ALLOT_DATA_DIR": str(self.dir / "var"),
            "ALLOT_BIND": f"127.0.0.1:{self.port}",
            "ALLOT_SECRET_KEY": "bench-secret-key-not-for-production",
            "ALLOT_BOOTSTRAP_ADMIN_USERNAME": ADMIN,
            "ALLOT_BOOTSTRAP_ADMIN_EMAIL": "bench-admin@example.com",
            "ALLOT_BOOTSTRAP_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "ALLOT_SCHEDULER_TICK_S": str(self.tick_s),
            "ALLOT_LOG_LEVEL": "warning",
            **self.extra_env,
        })
        log = open(self.log_path, "wb")
        try:
            # cwd: the temporary directory, so an allot.toml where the benchmark is started is not picked up
            self.proc = subprocess.Popen([sys.executable, "-c", "from allotment.cli.main import main; main()",
                                          "server"], cwd=self.dir, env=env, stdout=log, stderr=subprocess.STDOUT)
        finally:
            log.close()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"the server exited with code {self.proc.returncode}:\n{self.log_tail()}")
            try:
                # ready, not only alive: the scheduler's first cycle has run, so the first submission is not held
                # up by the loop's start (which would shift every time to admission of the run)
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.__exit__(None, None, None)
        raise BenchError(f"the server did not answer within 90 s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not self.keep:
            shutil.rmtree(self.dir, ignore_errors=True)


class Api:
    """`http`: a client of one's own (an in-process TestClient, which is an httpx.Client) instead of a new one."""

    def __init__(self, url: str, token: str | None = None, http: httpx.Client | None = None) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = http if http is not None else httpx.Client(base_url=url.rstrip("/"), timeout=300)
        self.http.headers.update(headers)

    def login(self, username: str, password: str) -> None:
        token = self.call("POST", "/auth/login", {"username": username, "password": password})["token"]
        self.http.headers["Authorization"] = f"Bearer {token}"
        self.http.cookies.clear()

    def call(self, method: str, path: str, body: Any = None, ok: tuple[int, ...] = (), **params) -> Any:
        """`body`: a value to send as JSON, or JSON text already encoded (bytes)."""
        if isinstance(body, bytes):
            response = self.http.request(method, API + path, content=body, params=params or None,
                                         headers={"Content-Type": "application/json"})
        else:
            response = self.http.request(method, API + path, json=body, params=params or None)
        if response.status_code >= 400 and response.status_code not in ok:
            raise BenchError(f"{method} {path}: HTTP {response.status_code}: {response.text[:500]}")
        return response.json() if response.content else None


@dataclass
class Setup:
    cluster: str
    quota_names: dict[str, str]  # scenario quota name -> server quota name
    priority_classes: dict[int, str]


def _amount(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


def setup(api: Api, scenario: Scenario, prefix: str) -> Setup:
    """A simulated cluster with the scenario's capacity in one pool, the priority classes and the quota tree."""
    cluster = f"{prefix}bench" if prefix else "bench"
    api.call("POST", "/clusters", {"name": cluster, "backend": "simulated",
                                   "description": f"benchmark {scenario.name}"}, ok=(201,))
    if scenario.resource == "gpu":
        count = max(1, math.ceil(scenario.capacity / GPUS_PER_NODE))
        nodes = [{"name": f"sim-{i}", "cpu": 256, "memory": "2Ti",
                  "devices": [{"index": d, "model": "simulated-gpu", "memory": "80Gi"}
                              for d in range(min(GPUS_PER_NODE, int(scenario.capacity) - i * GPUS_PER_NODE))]}
                 for i in range(count)]
    else:
        nodes = [{"name": "sim-0", "cpu": _amount(scenario.capacity) if scenario.resource == "cpu" else 1_000_000,
                  "memory": f"{int(scenario.capacity)}Gi" if scenario.resource == "memory" else "64Ti"}]
    for node in nodes:
        api.call("POST", f"/clusters/{cluster}/nodes", node)
    if scenario.pool != "default":
        api.call("POST", f"/clusters/{cluster}/pools", {"name": scenario.pool, "nodes": [n["name"] for n in nodes]})
    classes = {}
    existing = {c["name"]: c["value"] for c in api.call("GET", "/priority-classes")["items"]}
    for priority in sorted({j.priority for j in scenario.jobs}):
        name = f"bench-p{priority}"
        if existing.get(name) != priority:
            if name in existing:
                api.call("PATCH", f"/priority-classes/{name}", {"value": priority})
            else:
                api.call("POST", "/priority-classes", {"name": name, "value": priority,
                                                       "description": "benchmark priority"})
        classes[priority] = name
    names = {q.name: f"{prefix}{q.name}" for q in scenario.quotas}
    docs = []
    for q in scenario.quotas:  # parents come before their children in the scenario's list
        resource = {"resource": scenario.resource, "pool": scenario.pool, "guarantee": _amount(q.guarantee),
                    "limit": "unlimited" if q.limit is None else _amount(q.limit)}
        if q.lending_limit is not None:
            resource["lending_limit"] = _amount(q.lending_limit)
        docs.append({"name": names[q.name], "parent": names[q.parent] if q.parent else None, "weight": q.weight,
                     "reclaim": q.reclaim, "within_quota_preemption": q.within_quota_preemption,
                     "resources": [resource]})
    # The tree in one draft, provisioned atomically (validated once, one reload for the scheduler) rather than a
    # thousand single creations. A draft holds at most MAX_TREE_ITEMS quotas; parents come first, so the draft's
    # prefix is a whole tree and the few quotas beyond it are created one by one under it.
    api.call("PUT", f"/clusters/{cluster}/resource-config/draft", {"quotas": docs[:MAX_TREE_ITEMS]})
    api.call("POST", f"/clusters/{cluster}/resource-config/provision")
    for doc in docs[MAX_TREE_ITEMS:]:
        api.call("POST", f"/clusters/{cluster}/quotas", {k: v for k, v in doc.items() if v is not None}, ok=(201,))
    return Setup(cluster, names, classes)


def batch_body(scenario: Scenario, done: Setup, plans: list[JobPlan]) -> list[dict]:
    """The jobs of one POST /jobs/batch."""
    return [{"quota": done.quota_names[p.quota], "command": ["sleep", "0"],
             scenario.resource: _amount(p.request), "priority_class": done.priority_classes[p.priority],
             "labels": {"runtime_ms": p.runtime_ms, "class": p.job_class}} for p in plans]


class BatchText:
    """The bodies of POST /jobs/batch as JSON text, exactly as json.dumps({"jobs": batch_body(...)}) writes them, with
    the text of each distinct job written once: the client shares the machine with the server, and encoding every
    job's dictionaries again cost it about 3 µs a job."""

    def __init__(self, scenario: Scenario, done: Setup) -> None:
        self.scenario = scenario
        self.done = done
        self.texts: dict[tuple, str] = {}

    def __call__(self, plans: list[JobPlan]) -> bytes:
        texts, parts = self.texts, []
        for p in plans:
            key = (p.quota, p.request, p.priority, p.runtime_ms, p.job_class)
            text = texts.get(key)
            if text is None:
                text = texts[key] = json.dumps(batch_body(self.scenario, self.done, [p])[0])
            parts.append(text)
        return ('{"jobs": [' + ", ".join(parts) + "]}").encode()


def submit(api: Api, scenario: Scenario, done: Setup, progress: Progress | None = None) -> tuple[float, list[int]]:
    """Submit every job at its creation time; returns (start time as epoch seconds, job ids in scenario order)."""
    jobs = scenario.jobs
    encode = BatchText(scenario, done)
    ids: list[int] = []
    started = time.perf_counter()
    epoch0 = time.time()
    i, last_note = 0, 0.0
    while i < len(jobs):
        elapsed_ms = (time.perf_counter() - started) * 1000.0
        if jobs[i].at_ms > elapsed_ms:
            time.sleep(min(jobs[i].at_ms - elapsed_ms, 50.0) / 1000.0)
            continue
        j = i
        while j < len(jobs) and j - i < MAX_BATCH and jobs[j].at_ms <= elapsed_ms:
            j += 1
        ids.extend(api.call("POST", "/jobs/batch", encode(jobs[i:j]))["ids"])
        i = j
        if progress and time.perf_counter() - last_note > 2:
            last_note = time.perf_counter()
            progress(f"submitted {i}/{len(jobs)} jobs ({elapsed_ms / 1000:.1f} s)")
    return epoch0, ids


def wait_finished(api: Api, total: int, timeout_s: float, progress: Progress | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    last_note = 0.0
    while True:
        active = api.call("GET", "/jobs", state=ACTIVE, limit=1)["total"]
        if active == 0:
            return
        if time.monotonic() > deadline:
            raise BenchError(f"{active} of {total} jobs still active after {timeout_s:.0f} s")
        if progress and time.monotonic() - last_note > 2:
            last_note = time.monotonic()
            progress(f"{active} of {total} jobs still active")
        time.sleep(1.0)  # each look costs the server a count over the active jobs


def fetch_jobs(api: Api, ids: list[int]) -> list[dict]:
    """The benchmark's jobs as the API shows them (newest first, 1000 per page)."""
    wanted = set(ids)
    out: list[dict] = []
    offset = 0
    while len(out) < len(wanted):
        page = api.call("GET", "/jobs", limit=1000, offset=offset)["items"]
        if not page:
            break
        out.extend(j for j in page if j["id"] in wanted)
        offset += len(page)
    return out
