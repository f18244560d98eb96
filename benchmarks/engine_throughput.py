"""Engine throughput: submission to completion of many jobs that exit at once, through allotment's engine and
straight to the engine, in one run.

- Slurm: a throwaway Slurm from scripts/slurm.sh with more CPUs than the host (ALLOT_SLURM_CPUS per node, two
  nodes), so that every job can run at once. The baseline POSTs the jobs straight to slurmrestd (httpx, a few
  connections) and polls its job list until all have ended. Then, on a fresh Slurm (so that neither run lists the
  other's finished jobs), a real `allot server` with the Slurm cluster registered through the API and a quota as
  large as the cluster gets the same jobs through POST /api/v1/jobs/batch; its job list is polled until all have
  ended. Each job is `true` on one CPU, its output in a file.
- Ray: a throwaway head from scripts/ray.sh; the baseline submits through Ray's JobSubmissionClient and polls it;
  then allotment's Ray engine runs the same jobs (0.1 CPU each) on the same head.

Throughput = jobs / (last completion seen - first submission). Reports both and the ratio allotment / engine (the
goal is at least 0.8 on Slurm). Needs root (Slurm) and the ray extra (Ray; --no-ray skips it).

    .venv/bin/python benchmarks/engine_throughput.py [--jobs 2000] [--ray-jobs 50] [--cpus 1024] [--no-ray]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
ADMIN_PASSWORD = "Bench-admin-1!"
SLURM_ENDED = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE",
               "PREEMPTED"}
BATCH = 500  # jobs per POST /jobs/batch (its limit)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- engines ----------------------------------------------------------------------------------------------------------
def start_slurm(cpus: int) -> dict:
    cluster_dir = tempfile.mkdtemp(prefix="allot-slurm-bench-")
    os.chmod(cluster_dir, 0o755)
    done = subprocess.run(["bash", str(ROOT / "scripts" / "slurm.sh"), "start", cluster_dir], capture_output=True,
                          text=True, check=False, env={**os.environ, "ALLOT_SLURM_CPUS": str(cpus)})
    if done.returncode != 0:
        stop_engine("slurm", cluster_dir)
        sys.exit(f"scripts/slurm.sh start failed:\n{done.stderr[-2000:]}")
    info = json.loads(done.stdout.strip().splitlines()[-1])
    info["dir"] = cluster_dir
    return info


def start_ray() -> dict:
    head_dir = tempfile.mkdtemp(prefix="allot-rb-", dir="/tmp")
    env = dict(os.environ)
    ray_bin = Path(sys.executable).parent / "ray"
    if ray_bin.exists():
        env["ALLOT_RAY_BIN"] = str(ray_bin)
    done = subprocess.run(["bash", str(ROOT / "scripts" / "ray.sh"), "start", head_dir], capture_output=True,
                          text=True, check=False, env=env)
    if done.returncode != 0:
        stop_engine("ray", head_dir)
        sys.exit(f"scripts/ray.sh start failed:\n{done.stderr[-2000:]}")
    info = json.loads(done.stdout.strip().splitlines()[-1])
    info["dir"] = head_dir
    return info


def stop_engine(kind: str, directory: str) -> None:
    subprocess.run(["bash", str(ROOT / "scripts" / f"{kind}.sh"), "stop", directory], capture_output=True,
                   check=False, timeout=120)


def output_dir(slurm: dict, name: str) -> Path:
    path = Path(slurm["jobs_dir"]) / name
    path.mkdir(exist_ok=True)
    path.chmod(0o1777)  # Slurm's jobs run as the token's unprivileged user
    return path


# -- baselines ----------------------------------------------------------------------------------------------------------
def slurm_direct(slurm: dict, jobs: int) -> tuple[float, float]:
    """(seconds to submit, seconds to complete) of `jobs` trivial jobs POSTed straight to slurmrestd."""
    out = output_dir(slurm, "direct")
    headers = {"X-SLURM-USER-NAME": slurm["user"], "X-SLURM-USER-TOKEN": slurm["token"]}
    url = slurm["rest_url"]
    partitions = list(slurm["partitions"])

    def body(i: int) -> dict:
        return {"job": {"name": f"direct-{i}", "environment": {"PATH": "/usr/bin:/bin"}, "cpus_per_task": 1,
                        "current_working_directory": str(out), "standard_output": f"{out}/job-{i}.log",
                        "standard_error": f"{out}/job-{i}.log", "partition": partitions[i % len(partitions)],
                        "requeue": False},
                "script": "#!/bin/sh\ntrue\n"}

    ids: set[int] = set()
    with httpx.Client(base_url=url, headers=headers, timeout=60) as http:
        began = time.time()

        def submit(i: int) -> int:
            r = http.post("/slurm/v0.0.38/job/submit", json=body(i))
            r.raise_for_status()
            return int(r.json()["job_id"])

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            ids.update(pool.map(submit, range(jobs)))
        submitted = time.time() - began
        while True:
            listed = http.get("/slurm/v0.0.38/jobs").json()["jobs"]
            done = sum(1 for j in listed if j["job_id"] in ids and j["job_state"] in SLURM_ENDED)
            if done >= jobs:
                return submitted, time.time() - began
            time.sleep(0.5)


def ray_direct(head: dict, jobs: int) -> tuple[float, float]:
    from ray.job_submission import JobStatus, JobSubmissionClient

    client = JobSubmissionClient(head["address"])
    began = time.time()
    ids = [client.submit_job(entrypoint="true", entrypoint_num_cpus=0.1, submission_id=f"direct-{i}-{began:.0f}")
           for i in range(jobs)]
    submitted = time.time() - began
    wanted = set(ids)
    while True:
        done = sum(1 for j in client.list_jobs() if j.submission_id in wanted and JobStatus(j.status).is_terminal())
        if done >= jobs:
            return submitted, time.time() - began
        time.sleep(0.5)


# -- through allotment ----------------------------------------------------------------------------------------------------
class Server:
    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="allot-bench-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("ALLOT_")}
        env.update(ALLOT_DATA_DIR=str(self.root / "var"), ALLOT_BIND=f"127.0.0.1:{self.port}",
                   ALLOT_BOOTSTRAP_ADMIN_USERNAME="admin", ALLOT_BOOTSTRAP_ADMIN_EMAIL="admin@example.com",
                   ALLOT_BOOTSTRAP_ADMIN_PASSWORD=ADMIN_PASSWORD, ALLOT_LOG_LEVEL="warning")
        allot = Path(sys.executable).with_name("allot")
        self.log = open(self.root / "server.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([str(allot), "server"], cwd=self.root, env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        else:
            self.stop()
            sys.exit("allot server did not start")
        self.http = httpx.Client(base_url=f"{self.url}/api/v1", timeout=120)
        r = self.http.post("/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})
        r.raise_for_status()
        self.http.headers["Authorization"] = f"Bearer {r.json()['token']}"

    def ok(self, method: str, path: str, **kw) -> dict:
        r = self.http.request(method, path, **kw)
        if r.status_code >= 300:
            raise RuntimeError(f"{method} {path}: {r.status_code} {r.text}")
        return r.json() if r.content else {}

    def wait_nodes(self, cluster: str) -> list[dict]:
        deadline = time.time() + 90
        while time.time() < deadline:
            nodes = self.ok("GET", f"/clusters/{cluster}/nodes")["items"]
            if nodes:
                return nodes
            time.sleep(0.5)
        raise RuntimeError(f"no inventory from cluster {cluster}")

    def quota(self, cluster: str, cpu: float) -> str:
        name = f"{cluster}-bench"
        self.ok("POST", f"/clusters/{cluster}/quotas", json={"name": name, "resources": [
            {"resource": "cpu", "guarantee": cpu, "limit": cpu}]})
        self.ok("PUT", f"/quotas/{name}/bindings/users/admin")
        return name

    def run(self, quota: str, jobs: int, cpu: str) -> tuple[float, float, dict[str, int]]:
        began = time.time()
        for start in range(0, jobs, BATCH):
            self.ok("POST", "/jobs/batch", json={"jobs": [{"quota": quota, "cpu": cpu, "command": ["true"]}
                                                          for _ in range(start, min(start + BATCH, jobs))]})
        submitted = time.time() - began
        while True:
            ended = {s: self.ok("GET", "/jobs", params={"state": s, "limit": 1})["total"]
                     for s in ("succeeded", "failed", "cancelled")}
            if sum(ended.values()) >= jobs:
                return submitted, time.time() - began, ended
            time.sleep(0.5)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()
        shutil.rmtree(self.root, ignore_errors=True)


def slurm_allotment(slurm: dict, jobs: int) -> tuple[float, float, dict[str, int]]:
    server = Server()
    try:
        server.ok("POST", "/clusters", json={"name": "hpc", "backend": "slurm", "engine": {
            "rest_url": slurm["rest_url"], "rest_user": slurm["user"], "token": slurm["token"],
            "log_dir": str(output_dir(slurm, "allotment")), "name_prefix": "bench"}})
        nodes = server.wait_nodes("hpc")
        cpus = sum(float(n["cpu"]) for n in nodes)
        return server.run(server.quota("hpc", cpus), jobs, "1")
    finally:
        server.stop()


def ray_allotment(head: dict, jobs: int) -> tuple[float, float, dict[str, int]]:
    server = Server()
    try:
        server.ok("POST", "/clusters", json={"name": "rays", "backend": "ray", "engine": {"address": head["address"]}})
        nodes = server.wait_nodes("rays")
        cpus = sum(float(n["cpu"]) for n in nodes)
        return server.run(server.quota("rays", cpus), jobs, "0.1")
    finally:
        server.stop()


def report(engine: str, jobs: int, direct: tuple, through: tuple) -> dict:
    direct_rate, through_rate = jobs / direct[1], jobs / through[1]
    row = {"engine": engine, "jobs": jobs,
           "direct": {"submit_s": round(direct[0], 2), "complete_s": round(direct[1], 2),
                      "jobs_per_s": round(direct_rate, 1)},
           "allotment": {"submit_s": round(through[0], 2), "complete_s": round(through[1], 2),
                         "jobs_per_s": round(through_rate, 1), "ended": through[2]},
           "ratio": round(through_rate / direct_rate, 3)}
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--ray-jobs", type=int, default=50)
    parser.add_argument("--cpus", type=int, default=1024, help="CPUs each of the two Slurm nodes declares")
    parser.add_argument("--no-ray", action="store_true")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root (scripts/slurm.sh)")

    slurm = start_slurm(args.cpus)
    try:
        direct = slurm_direct(slurm, args.jobs)
    finally:
        stop_engine("slurm", slurm["dir"])
    slurm = start_slurm(args.cpus)  # a fresh one: the baseline's finished jobs would weigh on every listing
    try:
        through = slurm_allotment(slurm, args.jobs)
    finally:
        stop_engine("slurm", slurm["dir"])
    report("slurm", args.jobs, direct, through)

    if not args.no_ray:
        head = start_ray()
        try:
            direct = ray_direct(head, args.ray_jobs)
            through = ray_allotment(head, args.ray_jobs)
        finally:
            stop_engine("ray", head["dir"])
        report("ray", args.ray_jobs, direct, through)


if __name__ == "__main__":
    main()
