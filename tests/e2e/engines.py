"""Real engines for the end-to-end tests: a throwaway Slurm (scripts/slurm.sh) and Ray head (scripts/ray.sh), and
helpers to run allotment's jobs on them through a real server (register the cluster, pools, a quota, a user).

The `slurm` and `ray_head` fixtures (conftest.py) start one of each per test session and worker. Without root or
Slurm's packages, or without Ray, the tests that use them are skipped, unless ALLOT_TEST_REQUIRE_SLURM=1 or
ALLOT_TEST_REQUIRE_RAY=1 (the full suite), where an engine that cannot start fails them.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from e2e.clitools import ADMIN_PASSWORD, ADMIN_USERNAME

ROOT = Path(__file__).resolve().parents[2]
FINAL = frozenset({"succeeded", "failed", "cancelled"})
HOLDING = frozenset({"admitted", "running"})


def _unavailable(engine: str, reason: str):
    if os.environ.get(f"ALLOT_TEST_REQUIRE_{engine.upper()}") == "1":
        pytest.fail(f"ALLOT_TEST_REQUIRE_{engine.upper()}=1 but the test {engine} cannot start: {reason}")
    pytest.skip(f"no test {engine}: {reason}")


@contextlib.contextmanager
def slurm_cluster(cpus: int | None = None) -> Iterator[dict]:
    """scripts/slurm.sh's cluster: rest_url, token, user, slurm_conf, jobs_dir, partitions, start_s, dir."""
    if os.geteuid() != 0:
        _unavailable("slurm", "scripts/slurm.sh needs root")
    # Not under pytest's temporary directory: slurmrestd's and the jobs' users must reach the cluster's files.
    cluster_dir = tempfile.mkdtemp(prefix="allot-slurm-")
    os.chmod(cluster_dir, 0o755)
    script = str(ROOT / "scripts" / "slurm.sh")
    env = {**os.environ, **({"ALLOT_SLURM_CPUS": str(cpus)} if cpus else {})}
    started = time.monotonic()
    try:
        done = subprocess.run(["bash", script, "start", cluster_dir], capture_output=True, text=True, timeout=600,
                              check=False, env=env)
    except subprocess.TimeoutExpired:
        done = None
    if done is None or done.returncode != 0:
        subprocess.run(["bash", script, "stop", cluster_dir], capture_output=True, timeout=60, check=False)
        _unavailable("slurm", done.stderr[-2000:] if done is not None else "scripts/slurm.sh start timed out")
    info = json.loads(done.stdout.strip().splitlines()[-1])
    info["start_s"] = time.monotonic() - started
    info["dir"] = cluster_dir
    try:
        yield info
    finally:
        subprocess.run(["bash", script, "stop", cluster_dir], capture_output=True, timeout=60, check=False)


@contextlib.contextmanager
def ray_head() -> Iterator[dict]:
    """scripts/ray.sh's head: address (the Jobs API), gcs, temp_dir, resources, start_s."""
    if importlib.util.find_spec("ray") is None:
        _unavailable("ray", "the ray package is not installed (pip install -e '.[ray]')")
    head_dir = tempfile.mkdtemp(prefix="allot-ray-", dir="/tmp")  # short: Ray's socket paths have a length limit
    script = str(ROOT / "scripts" / "ray.sh")
    env = dict(os.environ)
    ray_bin = Path(sys.executable).parent / "ray"  # the head runs the Ray this client imports
    if ray_bin.exists():
        env["ALLOT_RAY_BIN"] = str(ray_bin)
    try:
        done = subprocess.run(["bash", script, "start", head_dir], capture_output=True, text=True, timeout=240,
                              check=False, env=env)
    except subprocess.TimeoutExpired:
        done = None
    if done is None or done.returncode != 0:
        subprocess.run(["bash", script, "stop", head_dir], capture_output=True, timeout=60, check=False)
        _unavailable("ray", done.stderr[-2000:] if done is not None else "scripts/ray.sh start timed out")
    info = json.loads(done.stdout.strip().splitlines()[-1])
    info["dir"] = head_dir
    try:
        yield info
    finally:
        subprocess.run(["bash", script, "stop", head_dir], capture_output=True, timeout=60, check=False)


def slurm_env(slurm: dict) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "SLURM_CONF": slurm["slurm_conf"]}


def ctld_up(slurm: dict) -> bool:
    return subprocess.run(["scontrol", "ping"], env=slurm_env(slurm), capture_output=True,
                          check=False).returncode == 0


def stop_slurmctld(slurm: dict, timeout_s: float = 15) -> None:
    subprocess.run(["scontrol", "shutdown", "slurmctld"], env=slurm_env(slurm), check=True, capture_output=True)
    deadline = time.monotonic() + timeout_s
    while ctld_up(slurm) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not ctld_up(slurm), "slurmctld did not stop"


def start_slurmctld(slurm: dict, timeout_s: float = 20) -> None:
    """slurmctld comes back with its saved state (the jobs ran on meanwhile)."""
    subprocess.run(["/usr/sbin/slurmctld"], env=slurm_env(slurm), check=True)
    deadline = time.monotonic() + timeout_s
    while not ctld_up(slurm) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert ctld_up(slurm), "slurmctld did not come back"


def squeue(slurm: dict, prefix: str) -> list[dict]:
    """Slurm's jobs of one allotment installation (its name prefix), live or recently ended."""
    done = subprocess.run(["squeue", "--json", "--states=all"], env=slurm_env(slurm), capture_output=True,
                          text=True, check=True)
    return [j for j in json.loads(done.stdout)["jobs"] if str(j.get("name", "")).startswith(f"{prefix}-")]


def job_log_dir(slurm: dict, name: str) -> Path:
    """A log directory jobs of any user may write (Slurm jobs run as the token's unprivileged user)."""
    path = Path(slurm["jobs_dir"]) / name
    path.mkdir(exist_ok=True)
    path.chmod(0o1777)
    return path


# -- allotment's side -------------------------------------------------------------------------------------------------
class Api:
    """An API client that logs in (again after a restart of the server, when its session did not survive)."""

    def __init__(self, url: str, username: str = ADMIN_USERNAME, password: str = ADMIN_PASSWORD,
                 timeout: float = 30) -> None:
        self.url, self.username, self.password = url, username, password
        self.http = httpx.Client(base_url=f"{url}/api/v1", timeout=timeout)
        self.headers: dict[str, str] = {}

    def login(self) -> Api:
        r = self.http.post("/auth/login", json={"username": self.username, "password": self.password})
        r.raise_for_status()
        self.headers = {"Authorization": f"Bearer {r.json()['token']}"}
        return self

    def call(self, method: str, path: str, **kw) -> httpx.Response:
        if not self.headers:
            self.login()
        r = self.http.request(method, path, headers=self.headers, **kw)
        if r.status_code == 401:
            self.login()
            r = self.http.request(method, path, headers=self.headers, **kw)
        return r

    def ok(self, method: str, path: str, **kw) -> dict | list | None:
        r = self.call(method, path, **kw)
        assert r.status_code < 300, f"{method} {path}: {r.status_code} {r.text}"
        return r.json() if r.content else None

    def job(self, job_id: int) -> dict:
        return self.ok("GET", f"/jobs/{job_id}")

    def jobs(self, ids) -> dict[int, dict]:
        wanted = set(ids)
        found: dict[int, dict] = {}
        for offset in range(0, 1_000_000, 1000):
            page = self.ok("GET", "/jobs", params={"limit": 1000, "offset": offset})["items"]
            found.update({j["id"]: j for j in page if j["id"] in wanted})
            if len(page) < 1000:
                return found
        return found


def wait_until(check, timeout_s: float, what: str, every_s: float = 0.3):
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every_s)
    raise AssertionError(f"waited {timeout_s:.0f}s for {what}; last saw {last!r}")


def wait_final(api: Api, ids, timeout_s: float = 120) -> dict[int, dict]:
    """Every job in a final state; returns them."""
    ids = list(ids)

    def check():
        jobs = {i: api.job(i) for i in ids} if len(ids) <= 30 else api.jobs(ids)
        return jobs if all(j["state"] in FINAL for j in jobs.values()) and len(jobs) == len(ids) else None

    try:
        return wait_until(check, timeout_s, f"jobs {ids} to end", every_s=0.5)
    except AssertionError:
        jobs = {i: api.job(i) for i in ids}
        raise AssertionError(f"jobs not ended: {[(i, j['state'], j['reason']) for i, j in jobs.items()]}") from None


def add_user(admin: Api, username: str, quotas: list[str], password: str = "Us3r-password!") -> Api:
    admin.ok("POST", "/users", json={"email": f"{username}@example.com", "username": username,
                                     "password": password, "need_password_change": False})
    for quota in quotas:
        admin.ok("PUT", f"/quotas/{quota}/bindings/users/{username}")
        # Submitting takes a role on the quota's cluster besides the binding.
        cluster = admin.ok("GET", f"/quotas/{quota}")["cluster"]
        admin.ok("PUT", f"/clusters/{cluster}/users/{username}", json={"role": "user"})
    return Api(admin.url, username, password).login()


def cluster_nodes(api: Api, cluster: str) -> dict[str, dict]:
    return {n["name"]: n for n in api.ok("GET", f"/clusters/{cluster}/nodes")["items"]}


def register_slurm(api: Api, slurm: dict, name: str, prefix: str, log_dir: Path,
                   quota_gpu: int = 6, quota_cpu: int = 64) -> str:
    """A Slurm cluster in allotment: engine settings (slurmrestd, a job-name prefix of its own), nodes from Slurm,
    one pool per partition (the partition map from them), a quota over both. Returns the quota's name."""
    api.ok("POST", "/clusters", json={"name": name, "backend": "slurm", "engine": {
        "rest_url": slurm["rest_url"], "rest_user": slurm["user"], "token": slurm["token"],
        "log_dir": str(log_dir), "name_prefix": prefix, "partitions": {"a100": "a100", "h100": "h100"}}})
    nodes = wait_until(lambda: len(cluster_nodes(api, name)) == 2 and cluster_nodes(api, name), 30,
                       "the engine's inventory")
    assert set(nodes) == {"a100-n1", "h100-n1"}
    for partition, info in slurm["partitions"].items():
        api.ok("POST", f"/clusters/{name}/pools", json={"name": partition, "nodes": [info["node"]]})
    quota = f"{name}-q"
    api.ok("POST", f"/clusters/{name}/quotas", json={"name": quota, "resources": [
        {"resource": "gpu", "guarantee": quota_gpu, "limit": quota_gpu},
        {"resource": "cpu", "guarantee": quota_cpu, "limit": quota_cpu}]})
    return quota
