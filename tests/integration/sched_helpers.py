"""A simulated cluster driven through the API, with the scheduler loop run one cycle at a time (no sleeping)."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from fastapi.testclient import TestClient

from allotment.scheduler.loop import CycleReport, Scheduler

API = "/api/v1"


class Harness:
    """`h.cycle()` runs one scheduler cycle at a clock the test controls (`h.now`, advanced by `h.advance`)."""

    def __init__(self, client: TestClient, headers: dict[str, str], cluster: str = "sim") -> None:
        self.client = client
        self.headers = headers
        self.cluster = cluster
        self.scheduler = Scheduler(client.app.state.allot)
        # No preemption delay here: it is measured from a job's submission time, stamped by the wall clock, to the
        # cycle's time, which is this test-controlled clock; under load the two drift apart by seconds and a test
        # preempting "1 s later" would depend on the machine's speed. The delay is tested in core (preemption rules).
        self.scheduler.config = replace(self.scheduler.config, preemption_delay_s=0.0)
        self.now = time.time()
        self.ok(self.client.post(f"{API}/clusters", json={"name": cluster, "backend": "simulated"},
                                 headers=headers), 201)

    # -- HTTP --------------------------------------------------------------------------------------------------------
    def ok(self, response, status: int = 200) -> Any:
        assert response.status_code == status, response.text
        return response.json() if response.content else None

    def get(self, path: str, **kw) -> Any:
        return self.ok(self.client.get(API + path, headers=kw.pop("headers", self.headers), **kw))

    def post(self, path: str, body: Any = None, status: int = 200, **kw) -> Any:
        return self.ok(self.client.post(API + path, json=body, headers=kw.pop("headers", self.headers), **kw), status)

    def put(self, path: str, body: Any = None, status: int = 200) -> Any:
        return self.ok(self.client.put(API + path, json=body, headers=self.headers), status)

    # -- inventory and configuration ------------------------------------------------------------------------------------
    def node(self, name: str, gpus: int = 0, model: str = "H100", cpu: int = 64, memory: str = "512Gi") -> None:
        devices = [{"index": i, "model": model, "memory": "80Gi"} for i in range(gpus)]
        self.post(f"/clusters/{self.cluster}/nodes", {"name": name, "cpu": cpu, "memory": memory,
                                                       "devices": devices})

    def pool(self, name: str, nodes: list[str]) -> None:
        self.post(f"/clusters/{self.cluster}/pools", {"name": name, "nodes": nodes}, 201)

    def quota(self, name: str, resources: list[dict], parent: str | None = None, **fields) -> None:
        self.post(f"/clusters/{self.cluster}/quotas", {"name": name, "parent": parent, "resources": resources,
                                                        **fields}, 201)

    # -- jobs ----------------------------------------------------------------------------------------------------------
    def submit(self, quota: str, runtime_s: float = 100.0, headers: dict | None = None, status: int = 201,
               **fields) -> Any:
        body = {"quota": quota, "command": ["train"], "labels": {"runtime_ms": runtime_s * 1000}, **fields}
        out = self.post("/jobs", body, status, headers=headers or self.headers)
        self.catch_up()
        return out["id"] if status == 201 else out

    def batch(self, jobs: list[dict]) -> list[int]:
        ids = self.post("/jobs/batch", {"jobs": jobs}, 201)["ids"]
        self.catch_up()
        return ids

    def catch_up(self) -> None:
        """Jobs are stamped by the wall clock when submitted; the cycles run on this clock. Never let it stay behind
        a submission (a cycle "before" a job was submitted would not consider it), however slow the machine."""
        self.now = max(self.now, time.time())

    def job(self, job_id: int) -> dict:
        return self.get(f"/jobs/{job_id}")

    def states(self, ids: list[int]) -> list[str]:
        return [self.job(i)["state"] for i in ids]

    def cancel(self, job_id: int) -> dict:
        return self.post(f"/jobs/{job_id}/cancel")

    # -- the loop ------------------------------------------------------------------------------------------------------
    def cycle(self, advance: float = 0.0) -> CycleReport:
        self.now += advance
        return self.scheduler.run_cycle(self.now)

    def settle(self, cycles: int = 3, advance: float = 0.0) -> None:
        """A few cycles: admissions, then the engine's 'started' events, then requeues."""
        for _ in range(cycles):
            self.cycle(advance)


def one_team(client, admin_headers, gpus: int) -> Harness:
    """The scheduler tests' usual cluster: node gpu-01 with `gpus` H100s, quota team guaranteed and limited to all
    of them."""
    h = Harness(client, admin_headers)
    h.node("gpu-01", gpus=gpus, model="H100")
    h.quota("team", [{"resource": "gpu", "guarantee": gpus, "limit": gpus}])
    return h


def finished_copies(state, backend: str, job_id: int, count: int) -> None:
    """`count` finished copies of a job, as a long-running installation has: the history of finished jobs."""
    from sqlalchemy import text

    from allotment.db import transaction
    from allotment.workloads.models import Job

    columns = [c.name for c in Job.__table__.columns if c.name != "id"]
    changed = {"seq": "jobs.seq + g", "state": "'succeeded'", "finished_at": "jobs.submitted_at"}
    copied = ", ".join(changed.get(c, f"jobs.{c}") for c in columns)
    series = (f"generate_series(1, {count}) AS g" if backend == "postgres" else
              f"(WITH RECURSIVE n(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM n WHERE g < {count}) SELECT g FROM n)")
    with transaction(state.sessions) as s:
        s.execute(text(f"INSERT INTO jobs ({', '.join(columns)}) SELECT {copied} FROM jobs, {series} "
                      f"WHERE jobs.id = :id"), {"id": job_id})


def statements_sent(engine, pattern: str, run) -> list[tuple[str, object]]:
    """The statements matching `pattern` that run() sends through the engine, with their parameters."""
    import re

    from sqlalchemy import event

    found: list[tuple[str, object]] = []

    def seen(conn, cursor, statement, parameters, context, executemany):
        if re.search(pattern, statement):
            found.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", seen)
    try:
        run()
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    return found
