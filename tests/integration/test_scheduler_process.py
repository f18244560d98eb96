"""The API's side of a scheduler loop in its own process (scheduler/process.py): what the API asks the loop process
(a queued job's reason of now, usage recalculation's rebuild, its metrics) comes back through the socket, and the
loop process ends with the app. The real `allot server` is tested in tests/e2e/test_scheduler_process.py."""

from __future__ import annotations

import time

import psutil
from fastapi.testclient import TestClient
from sched_helpers import Harness
from sqlalchemy import select

from allotment.api.app import create_app
from allotment.inventory.models import Cluster
from allotment.scheduler.process import SchedulerProcess
from conftest import ADMIN_PASSWORD, login, make_settings


def _until(predicate, within: float = 20.0):
    deadline = time.time() + within
    while True:
        value = predicate()
        if value or time.time() > deadline:
            return value
        time.sleep(0.05)


def test_the_api_asks_the_loop_process(tmp_path, backend):
    app = create_app(make_settings(tmp_path, backend, scheduler_enabled=True, scheduler_tick_s=0.05,
                                   scheduler_mode="process"))
    with TestClient(app) as client:
        state = client.app.state.allot
        loop = state.extras["scheduler"]
        assert isinstance(loop, SchedulerProcess)
        child = psutil.Process(loop.pid)
        headers = login(client, "admin", ADMIN_PASSWORD)
        h = Harness(client, headers)  # builds a Scheduler of its own for tests that drive cycles: not used here
        state.extras["scheduler"] = loop
        h.node("n1", gpus=2)
        h.quota("q", [{"resource": "gpu", "guarantee": 2, "limit": 2}])
        with state.sessions() as session:
            cluster_id = session.scalar(select(Cluster.id).where(Cluster.name == "sim"))

        done = h.submit("q", gpu=1, runtime_s=0.05)
        queued = h.submit("q", gpu=4, runtime_s=60.0)  # more than the pool holds: stays queued
        assert _until(lambda: h.job(done)["state"] == "succeeded")
        live = _until(lambda: loop.explain(cluster_id, queued))
        assert live is not None and live[0] == "limit_reached", live
        assert "(0 in use, 4 requested)" in live[1]
        assert h.job(queued)["reason"] == live[1]  # the job's page shows the loop's answer
        assert loop.explain(cluster_id, 10**9) is None  # a job the loop does not know

        out = h.post("/usage/recalculate", {})
        assert any(line.startswith("cluster sim: its state is rebuilt") for line in out["engines"]), out

        metrics = client.get("/metrics").text  # the loop process metered the finished job
        assert 'allot_gpu_seconds_total{cluster="sim"}' in metrics and "allot_http_requests_total" in metrics
    assert _until(lambda: not child.is_running() or child.status() == psutil.STATUS_ZOMBIE, 30)
