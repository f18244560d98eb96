"""The app in process for the benchmarks that build their data through it (history_bench.py, usage_views_bench.py):
SQLite in a directory of their own, scheduler off, an admin signed in, and a simulated cluster with one 8-GPU node."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient

from allotment.api.app import create_app
from allotment.settings import Settings

PASSWORD = "Bench-in-process-1!"


@contextmanager
def signed_in(directory: Path) -> Iterator[tuple[FastAPI, TestClient, dict[str, str]]]:
    """(app, client, the admin's headers), the app started; its engine disposed of afterwards."""
    app = create_app(Settings(data_dir=directory, secret_key="bench-in-process", bootstrap_admin_username="admin",
                              bootstrap_admin_email="admin@example.com", bootstrap_admin_password=PASSWORD,
                              bootstrap_default_quota=False, scheduler_enabled=False))
    with TestClient(app) as client:
        token = client.post("/api/v1/auth/login", json={"username": "admin", "password": PASSWORD}).json()["token"]
        yield app, client, {"Authorization": f"Bearer {token}"}
    app.state.allot.engine.dispose()


def poster(client: TestClient, headers: dict[str, str]) -> Callable[[str, dict], dict]:
    """POST to the API as the admin; any refusal stops the benchmark with the API's answer."""

    def post(path: str, body: dict) -> dict:
        r = client.post("/api/v1" + path, json=body, headers=headers)
        if r.status_code >= 300:
            raise SystemExit(f"{path}: {r.status_code} {r.text}")
        return r.json()

    return post


def simulated_cluster(post: Callable[[str, dict], dict], gpu_limit: int = 8) -> None:
    """Cluster `sim` (simulated engine), node gpu-01 with 8 H100s, quota `team`."""
    post("/clusters", {"name": "sim", "backend": "simulated"})
    post("/clusters/sim/nodes", {"name": "gpu-01", "cpu": 64, "memory": "512Gi",
                                 "devices": [{"index": i, "model": "H100", "memory": "80Gi"} for i in range(8)]})
    post("/clusters/sim/quotas", {"name": "team", "resources": [{"resource": "gpu", "guarantee": min(gpu_limit, 8),
                                                                   "limit": gpu_limit}]})
