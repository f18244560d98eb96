"""Benchmark: the console's heaviest pages with realistic data, timed as the server renders them.

Run:  python benchmarks/console_bench.py                       (100,000 jobs, 1,000 devices; prints one JSON object)
      python benchmarks/console_bench.py --jobs 20000 --devices 200 --repeat 5

A fresh SQLite data directory is filled through the services the API uses: a simulated cluster whose nodes (8 GPUs
each) are registered with inventory's register_node, ten quotas created through the API, and the jobs submitted with
workloads.submit_batch in batches of 10,000. Jobs then move through their lives as the scheduler would leave them
(most finished, some running on devices, the rest queued) in one UPDATE per state. The app runs in this process with
its scheduler off; each page is requested `--repeat` times after one warm-up, signed in as the platform admin (who
sees every job), and the median and slowest times are reported. In-process requests carry no network, so the time is
the server's: routing, authentication, queries and template rendering. The target is under 300 ms for the jobs page
with 100,000 jobs and the cluster page with 1,000 devices.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select, update

from allotment.api.app import create_app
from allotment.db import transaction, utcnow
from allotment.identity.authn import load_principal
from allotment.identity.models import User
from allotment.inventory.models import Device, Node
from allotment.inventory.nodes import DeviceReport, NodeReport, register_node
from allotment.inventory.service import create_cluster
from allotment.settings import Settings
from allotment.workloads.models import Job
from allotment.workloads.service import JobRequest, submit_batch

ADMIN_PASSWORD = "Bench-console-1!"
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
GPUS_PER_NODE = 8
QUOTAS = 10
BATCH = 10_000
TARGET_MS = 300


def seed(client: TestClient, jobs: int, devices: int, rng: random.Random) -> dict:
    sessions = client.app.state.allot.sessions
    started = time.perf_counter()
    with transaction(sessions) as session:
        cluster = create_cluster(session, "bench", "simulated")
        cluster_id = cluster.id
        for n in range(-(-devices // GPUS_PER_NODE)):
            count = min(GPUS_PER_NODE, devices - n * GPUS_PER_NODE)
            register_node(session, cluster_id, NodeReport(
                name=f"gpu-{n:04d}", cpu="128", memory="1Ti",
                health="healthy" if n % 97 else "unhealthy",
                devices=[DeviceReport(index=i, model="H100", memory="80Gi", utilisation=rng.uniform(0, 100))
                         for i in range(count)]))
    r = client.post("/api/v1/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})
    headers = {"Authorization": f"Bearer {r.json()['token']}"}
    client.cookies.clear()
    for q in range(QUOTAS):
        r = client.post("/api/v1/clusters/bench/quotas", headers=headers, json={
            "name": f"team-{q}", "resources": [{"resource": "gpu", "guarantee": devices // QUOTAS,
                                                "limit": devices}]})
        assert r.status_code == 201, r.text
    with transaction(sessions) as session:
        admin = session.scalar(select(User).where(User.username == "admin"))
        principal = load_principal(session, admin)
    shapes = [("1", "8", "64Gi"), ("0.5", "4", "32Gi"), ("2", "16", "128Gi"), ("8", "64", "512Gi"), ("0", "2", "4Gi")]
    for start in range(0, jobs, BATCH):
        requests = []
        for i in range(start, min(jobs, start + BATCH)):
            gpu, cpu, memory = shapes[i % len(shapes)]
            requests.append(JobRequest(quota=f"team-{i % QUOTAS}", command=["python", "train.py", f"--run={i}"],
                                       gpu=gpu, cpu=cpu, memory=memory, name=f"run-{i}"))
        with transaction(sessions) as session:
            submit_batch(session, principal, requests)
    # Where a long-lived cluster's jobs are: most finished, a device's worth running, the newest queued.
    with transaction(sessions) as session:
        ids = session.scalars(select(Job.id).order_by(Job.id)).all()
        device_ids = session.scalars(select(Device.id).join(Node, Node.id == Device.node_id)
                                     .where(Node.cluster_id == cluster_id)).all()
        running = min(len(device_ids), max(1, jobs // 50))
        queued = max(1, jobs // 20)
        finished = ids[:len(ids) - running - queued]
        now = utcnow()
        for state, share in (("succeeded", 0.8), ("failed", 0.12), ("cancelled", 0.08)):
            chunk = [i for i in finished if (i * 7919 % 100) / 100 < share] if state != "cancelled" else finished
            session.execute(update(Job).where(Job.id.in_(chunk), Job.state == "queued")
                            .values(state=state, admitted_at=now, started_at=now, finished_at=now))
        for job_id, device_id in zip(ids[len(finished):len(finished) + running], device_ids, strict=False):
            session.execute(update(Job).where(Job.id == job_id).values(
                state="running", admitted_at=now, started_at=now,
                devices=[{"device_id": device_id, "milli": 1000}]))
    return {"seconds": round(time.perf_counter() - started, 1), "cluster": "bench"}


def sign_in(client: TestClient) -> None:
    token = TOKEN.search(client.get("/login").text).group(1)
    r = client.post("/login", data={"username": "admin", "password": ADMIN_PASSWORD, "csrf_token": token},
                    follow_redirects=False)
    assert r.status_code == 303, r.text


def time_page(client: TestClient, path: str, repeat: int) -> dict:
    r = client.get(path)  # warm-up: template compilation, caches
    assert r.status_code == 200, (path, r.status_code, r.text[:300])
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        r = client.get(path)
        times.append((time.perf_counter() - started) * 1000)
        assert r.status_code == 200
    return {"median_ms": round(statistics.median(times), 1), "max_ms": round(max(times), 1),
            "bytes": len(r.content)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--devices", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp) / "var", secret_key="bench-secret-key",
                            bootstrap_admin_email="admin@example.com", bootstrap_admin_username="admin",
                            bootstrap_admin_password=ADMIN_PASSWORD, bootstrap_default_quota=False,
                            scheduler_enabled=False)
        with TestClient(create_app(settings)) as client:
            seeded = seed(client, args.jobs, args.devices, random.Random(args.seed))
            sign_in(client)
            last_page = -(-args.jobs // 25)
            pages = {
                "jobs": "/ui/jobs",
                "jobs_last_page": f"/ui/jobs?page={last_page}",
                "jobs_queued": "/ui/jobs?state=queued",
                "jobs_of_a_quota": "/ui/jobs?quota=team-3",
                "cluster": "/ui/clusters/bench",
                "dashboard": "/ui/",
            }
            results = {name: time_page(client, path, args.repeat) for name, path in pages.items()}
    verdict = {name: results[name]["median_ms"] < TARGET_MS for name in ("jobs", "cluster")}
    print(json.dumps({"jobs": args.jobs, "devices": args.devices, "repeat": args.repeat,
                      "seed_seconds": seeded["seconds"], "pages": results, "target_ms": TARGET_MS,
                      "under_target": verdict, "python": platform.python_version(), "database": "sqlite"},
                     indent=2))
    return 0 if all(verdict.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
