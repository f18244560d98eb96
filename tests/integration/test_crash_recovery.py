"""Issue 8, crash safety, driven cycle by cycle: a loop that never stops on a bad event or a failing cluster, a
restart that neither loses nor runs twice the jobs of the local engine, and the inventory read while nodes arrive.

A "crash" here abandons the Scheduler and its engines without stopping them (as SIGKILL would: their processes run
on), and a new Scheduler on the same database stands for the restarted server."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest
from sched_helpers import Harness, one_team
from sqlalchemy import event

from allotment.backends.base import JobEvent
from allotment.scheduler import load
from allotment.scheduler.loop import Scheduler
from allotment.scheduler.persist import Writes
from allotment.scheduler.runtime import ClusterRuntime


@pytest.fixture
def h(client, admin_headers) -> Harness:
    return one_team(client, admin_headers, gpus=4)


def _restart(h: Harness) -> None:
    h.scheduler = Scheduler(h.client.app.state.allot)


def _metric(h: Harness, name: str, **labels) -> float:
    for line in h.client.get("/metrics").text.splitlines():
        if line.startswith(f"{name}{{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


# -- 1. the loop never stops on a bad event ---------------------------------------------------------------------------
def test_a_simulated_job_resumed_after_a_restart_does_not_stop_the_loop(h):
    """The issue's reproduction: runtime_ms=3000, the server stops 1.5 s in, restarts 3 s later."""
    first = h.submit("team", gpu=1, runtime_s=3.0)
    h.settle(2)
    assert h.job(first)["state"] == "running"
    h.now += 1.5
    _restart(h)
    h.cycle(3.0)  # the job is resumed for what is left of it (nothing): it starts and ends at once
    h.cycle(0.1)
    h.cycle(0.1)
    assert h.job(first)["state"] == "succeeded"
    second = h.submit("team", gpu=1, runtime_s=1.0)
    h.settle(2, advance=0.1)
    assert h.job(second)["state"] == "running"  # the loop goes on admitting


def test_started_and_ended_in_one_poll_for_a_running_job(h):
    job = h.submit("team", gpu=1, runtime_s=50)
    h.settle(2)
    rt = next(r for r in h.scheduler.runtimes.values() if r.name == "sim")
    writes, usage = Writes(), []
    poison = rt.apply([JobEvent(job, "started", h.now), JobEvent(job, "succeeded", h.now + 1, exit_code=0)],
                      h.now + 1, writes, usage)
    assert poison == [] and [f["b_state"] for f in writes.finishes] == ["succeeded"]
    assert job not in rt.jobs and len(usage) == 1


def test_a_poison_event_is_dropped_counted_and_the_job_reconciled(h, client, monkeypatch):
    other = h.client.post("/api/v1/clusters", json={"name": "sim2", "backend": "simulated"}, headers=h.headers)
    assert other.status_code == 201
    h.client.post("/api/v1/clusters/sim2/nodes", json={"name": "n2", "cpu": 8, "memory": "8Gi", "devices": [
        {"index": 0, "model": "H100", "memory": "80Gi"}]}, headers=h.headers)
    h.client.post("/api/v1/clusters/sim2/quotas", json={"name": "team2", "resources": [
        {"resource": "gpu", "guarantee": 1, "limit": 1}]}, headers=h.headers)
    bad = h.submit("team", gpu=1, runtime_s=1.0)
    good = h.submit("team", gpu=1, runtime_s=1.0)
    h.settle(2)
    assert h.states([bad, good]) == ["running", "running"]

    original = Writes.finish

    def finish(self, job_id, *args, **kw):
        if job_id == bad:
            raise RuntimeError("a bug met while recording this job's end")
        return original(self, job_id, *args, **kw)

    before = _metric(h, "allot_scheduler_failures_total", cluster="sim", stage="event")
    with monkeypatch.context() as m:
        m.setattr(Writes, "finish", finish)
        h.cycle(2.0)  # both end: one event is poison, the other is recorded
        assert h.job(good)["state"] == "succeeded"
        assert _metric(h, "allot_scheduler_failures_total", cluster="sim", stage="event") == before + 1
        elsewhere = h.submit("team2", gpu=1, runtime_s=1.0)
        h.cycle(0.1)
        h.cycle(0.1)
        assert h.job(elsewhere)["state"] == "running"  # other clusters and later cycles go on
    h.cycle(0.1)  # the cluster was rebuilt and its engine asked again: the job whose event was dropped ends
    h.cycle(0.1)
    assert h.job(bad)["state"] == "succeeded"
    nxt = h.submit("team", gpu=1, runtime_s=1.0)
    h.settle(2, advance=0.1)
    assert h.job(nxt)["state"] == "running"


def test_a_failing_cluster_does_not_stop_the_others(h, monkeypatch):
    h.client.post("/api/v1/clusters", json={"name": "sim2", "backend": "simulated"}, headers=h.headers)
    h.client.post("/api/v1/clusters/sim2/nodes", json={"name": "n2", "cpu": 8, "memory": "8Gi", "devices": [
        {"index": 0, "model": "H100", "memory": "80Gi"}]}, headers=h.headers)
    h.client.post("/api/v1/clusters/sim2/quotas", json={"name": "team2", "resources": [
        {"resource": "gpu", "guarantee": 1, "limit": 1}]}, headers=h.headers)
    original = ClusterRuntime.decide

    def decide(self, *args, **kw):
        if self.name == "sim":
            raise RuntimeError("a bug in this cluster's configuration")
        return original(self, *args, **kw)

    with monkeypatch.context() as m:
        m.setattr(ClusterRuntime, "decide", decide)
        stuck = h.submit("team", gpu=1, runtime_s=1.0)
        fine = h.submit("team2", gpu=1, runtime_s=1.0)
        for _ in range(4):
            h.cycle(0.5)
        assert h.job(fine)["state"] in ("running", "succeeded")
        assert h.job(stuck)["state"] == "queued"
        assert _metric(h, "allot_scheduler_failures_total", cluster="sim", stage="decide") >= 1
    h.cycle(61.0)  # past the longest retry pause
    h.cycle(0.1)
    assert h.job(stuck)["state"] in ("running", "succeeded")


def test_the_inventory_read_while_nodes_are_registered(h, client):
    """A node and its devices committed between two statements of one inventory read (as an API request does)."""
    state = client.app.state.allot
    h.cycle()
    cluster_id = next(cid for cid, r in h.scheduler.runtimes.items() if r.name == "sim")
    engine = state.engine
    fired = []

    def register_node_meanwhile(conn, cursor, statement, parameters, context, executemany):
        if "FROM devices" in statement and not fired and threading.current_thread().name == "reader":
            fired.append(True)
            t = threading.Thread(target=h.node, args=("gpu-late",), kwargs={"gpus": 2})
            t.start()
            t.join()

    event.listen(engine, "before_cursor_execute", register_node_meanwhile)
    result = {}

    def read():
        session = state.sessions()
        try:
            result["inv"] = load.inventory(session, cluster_id)
        except Exception as exc:  # noqa: BLE001 - the test reports it
            result["error"] = exc
        finally:
            session.close()

    try:
        reader = threading.Thread(target=read, name="reader")
        reader.start()
        reader.join()
    finally:
        event.remove(engine, "before_cursor_execute", register_node_meanwhile)
    assert fired and "error" not in result, result.get("error")
    assert {node for node, _ in result["inv"].devices.values()} >= {"gpu-01"}
    h.cycle()  # the registration bumped the configuration: the next cycle loads the node whole
    rt = next(r for r in h.scheduler.runtimes.values() if r.name == "sim")
    assert {node for node, _ in rt.inv.devices.values()} == {"gpu-01", "gpu-late"}


# -- 2 and 3. local jobs across a crash -------------------------------------------------------------------------------
@pytest.fixture
def local(client, admin_headers) -> Harness:
    h = Harness(client, admin_headers)
    h.post("/clusters/local/quotas", {"name": "lab", "resources": [{"resource": "cpu", "guarantee": 4,
                                                                     "limit": 4}]}, 201)
    return h


def _submit_local(h: Harness, command: str, **fields) -> int:
    return h.post("/jobs", {"quota": "lab", "command": ["sh", "-c", command], "cpu": "0.1", **fields}, 201)["id"]


def _until(h: Harness, job_id: int, states: tuple[str, ...], within: float = 20.0) -> dict:
    deadline = time.time() + within
    while True:
        h.scheduler.run_cycle()
        job = h.job(job_id)
        if job["state"] in states or time.time() > deadline:
            return job
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _pid_noted(settings, command: str) -> str:
    """The command, first noting its shell's pid (in the job's process group) in its log: a job can write nowhere
    else that the test could read (it cannot reach the data directory)."""
    return f'echo "pid $$"; {command}'


def _log_lines(settings, job_id: int) -> list[str]:
    path = settings.data_dir / "jobs" / f"job-{job_id}.log"
    return path.read_text().splitlines() if path.exists() else []


def _command_pid(settings, job_id: int) -> int:
    deadline = time.time() + 10
    while time.time() < deadline:
        noted = [line.split()[1] for line in _log_lines(settings, job_id) if line.startswith("pid ")]
        if noted:
            return int(noted[0])
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} never started its command")


def test_a_job_admitted_before_a_crash_runs_once(local, settings, monkeypatch):
    job = _submit_local(local, 'echo "ran $ALLOT_JOB_ID"; sleep 1')
    local.scheduler.run_cycle()  # admitted and launched; 'started' would be saved by the next cycle
    assert local.job(job)["state"] == "admitted"
    deadline = time.time() + 10
    while not _log_lines(settings, job) and time.time() < deadline:
        time.sleep(0.02)
    _restart(local)  # the crash: the new loop sees the job admitted
    done = _until(local, job, ("succeeded", "failed"))
    assert (done["state"], done["exit_code"]) == ("succeeded", 0)
    assert _log_lines(settings, job) == [f"ran {job}"]


def test_a_running_local_job_is_adopted_and_metered_to_its_real_end(local, settings):
    seen = []
    local.client.app.state.allot.extras["scheduler_meter"].hooks.append(seen.append)
    job = _submit_local(local, _pid_noted(settings, "sleep 2; exit 7"))
    assert _until(local, job, ("running",))["state"] == "running"
    pid = _command_pid(settings, job)
    _restart(local)
    local.scheduler.run_cycle()
    assert local.job(job)["state"] == "running" and _alive(pid)  # adopted, not marked lost
    done = _until(local, job, ("succeeded", "failed"))
    assert (done["state"], done["exit_code"], done["reason"]) == ("failed", 7, "exited with code 7")
    (usage,) = [u for u in seen if u.job_id == job]
    assert usage.seconds >= 1.5


def test_an_adopted_local_job_can_be_cancelled_and_keeps_its_time_limit(local, settings):
    cancelled = _submit_local(local, _pid_noted(settings, "exec sleep 60"))
    limited = _submit_local(local, _pid_noted(settings, "exec sleep 60"), time_limit=3)
    assert _until(local, limited, ("running",))["state"] == "running"
    assert _until(local, cancelled, ("running",))["state"] == "running"
    pids = _command_pid(settings, cancelled), _command_pid(settings, limited)
    _restart(local)
    local.scheduler.run_cycle()
    local.cancel(cancelled)
    assert _until(local, cancelled, ("cancelled",))["state"] == "cancelled"
    assert not _alive(pids[0])
    ended = _until(local, limited, ("failed", "succeeded"))
    assert (ended["state"], ended["reason"]) == ("failed", "time limit reached") and not _alive(pids[1])


def test_a_job_that_ended_while_the_server_was_down_gets_its_exit_code(local, settings):
    job = _submit_local(local, "sleep 1; exit 3")
    assert _until(local, job, ("running",))["state"] == "running"
    old = local.scheduler
    _restart(local)
    deadline = time.time() + 10
    while not list((settings.data_dir / "jobs" / str(job)).glob("*/exit.json")) and time.time() < deadline:
        time.sleep(0.05)
    local.scheduler.run_cycle()
    done = local.job(job)
    assert (done["state"], done["exit_code"]) == ("failed", 3)
    assert old is not local.scheduler


def test_a_local_job_gone_without_an_exit_code_is_failed_saying_so(local, settings):
    import signal

    job = _submit_local(local, _pid_noted(settings, "exec sleep 60"))
    assert _until(local, job, ("running",))["state"] == "running"
    pid = _command_pid(settings, job)
    for started in (settings.data_dir / "jobs" / str(job)).glob("*/started.json"):  # its wrapper goes too
        os.kill(json.loads(started.read_text())["wrapper_pid"], signal.SIGKILL)
    os.killpg(os.getpgid(pid), signal.SIGKILL)  # the host's OOM killer, say: nobody records an exit code
    deadline = time.time() + 5
    while _alive(pid) and time.time() < deadline:
        time.sleep(0.02)
    _restart(local)
    local.scheduler.run_cycle()
    done = local.job(job)
    assert (done["state"], done["reason_code"]) == ("failed", "lost")
    assert "exit status is unknown" in done["reason"]


def test_a_run_whose_stop_was_not_delivered_is_stopped_after_a_restart(local, settings, monkeypatch):
    job = _submit_local(local, _pid_noted(settings, "exec sleep 60"))
    assert _until(local, job, ("running",))["state"] == "running"
    pid = _command_pid(settings, job)
    local.cancel(job)
    with monkeypatch.context() as m:
        m.setattr(Scheduler, "_dispatch", lambda self, actions, now: None)  # the crash came before the stop
        local.scheduler.run_cycle()
    assert local.job(job)["state"] == "cancelled" and _alive(pid)
    _restart(local)
    local.scheduler.run_cycle()
    assert not _alive(pid)
