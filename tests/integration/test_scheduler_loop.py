"""The loop itself: one transaction per cycle, dispatch after commit, crash and race safety, cancellation, restart
recovery, reasons on every queued job, metering, the local engine, and the thread started with the server."""

from __future__ import annotations

import time
from functools import partial

import pytest
from fastapi.testclient import TestClient
from sched_helpers import API, Harness, one_team
from sqlalchemy import update

from allotment.api.app import create_app
from allotment.db import transaction, utcnow
from allotment.scheduler.loop import Scheduler
from allotment.scheduler.persist import ADMIT, Writes
from allotment.scheduler.runtime import FIRST_REASON_DELAY_S, ClusterRuntime
from allotment.workloads.models import Job
from conftest import make_settings


@pytest.fixture
def h(client, admin_headers) -> Harness:
    return one_team(client, admin_headers, gpus=4)


def test_a_crash_before_commit_writes_nothing_and_the_next_cycle_admits_once(h, monkeypatch):
    ids = [h.submit("team", gpu=1) for _ in range(6)]

    def crash(self, conn):
        conn.execute(ADMIT, self.admits)  # half of the cycle's writes happen, then the process "dies"
        raise RuntimeError("power cut")

    with monkeypatch.context() as m:
        m.setattr(Writes, "apply", crash)
        with pytest.raises(RuntimeError):
            h.cycle()
    assert h.states(ids) == ["queued"] * 6  # rolled back: nothing admitted
    h.cycle()
    states = h.states(ids)
    assert states.count("admitted") == 4 and states.count("queued") == 2


def test_a_crash_between_commit_and_launch_is_recovered_by_the_next_loop(h, client, monkeypatch):
    ids = [h.submit("team", gpu=2, runtime_s=5) for _ in range(3)]
    with monkeypatch.context() as m:
        m.setattr(Scheduler, "_dispatch", lambda self, actions, now: None)  # committed, never launched
        h.cycle()
    assert h.states(ids) == ["admitted", "admitted", "queued"]

    h.scheduler = Scheduler(client.app.state.allot)  # the server restarts
    h.cycle()
    h.cycle(0.1)
    assert h.states(ids) == ["running", "running", "queued"]  # launched again, nothing admitted twice
    h.cycle(5.0)
    assert h.states(ids) == ["succeeded", "succeeded", "admitted"]


def test_a_restarted_loop_resumes_simulated_jobs_and_requeues_the_preempted(h, client):
    job = h.submit("team", gpu=4, runtime_s=50)
    h.settle(2)
    with transaction(client.app.state.allot.sessions) as s:  # preempted, not yet requeued when the server stopped
        victim = h.submit("team", gpu=1)
        s.execute(update(Job).where(Job.id == victim).values(state="preempted", reason="preempted by job 99: x"))
    h.scheduler = Scheduler(client.app.state.allot)
    h.cycle(10.0)
    assert h.job(victim)["state"] == "queued" and "preempted by job 99" in h.job(victim)["reason"]
    h.cycle(39.0)
    assert h.job(job)["state"] == "running"
    h.cycle(2.0)  # 50 s after it started
    assert h.job(job)["state"] == "succeeded"


def test_a_job_cancelled_under_the_cycle_is_not_admitted(h, client, monkeypatch):
    ids = [h.submit("team", gpu=2) for _ in range(3)]
    original = ClusterRuntime.decide

    def decide_then_cancel(self, now, writes, actions, usage):
        decisions = original(self, now, writes, actions, usage)
        if decisions:  # the owner cancels the first job after the loop read it, before the loop writes
            with transaction(client.app.state.allot.sessions) as s:
                s.execute(update(Job).where(Job.id == ids[0]).values(state="cancelled", finished_at=utcnow(),
                                                                           cancel_requested_at=utcnow()))
        return decisions

    with monkeypatch.context() as m:
        m.setattr(ClusterRuntime, "decide", decide_then_cancel)
        report = h.cycle()
    assert report.conflict and report.writes
    assert h.states(ids) == ["cancelled", "queued", "queued"]
    h.cycle()
    assert h.states(ids) == ["cancelled", "admitted", "admitted"]


def test_cancelling_a_running_job_stops_it_and_frees_its_devices(h):
    first = h.submit("team", gpu=4)
    second = h.submit("team", gpu=4)
    h.settle(2)
    assert h.states([first, second]) == ["running", "queued"]
    out = h.cancel(first)
    assert out["state"] == "running" and out["reason_code"] == "cancel_requested"
    h.cycle(1.0)
    job = h.job(first)
    assert job["state"] == "cancelled" and job["finished_at"] is not None
    assert h.job(second)["state"] == "admitted"
    backend = h.scheduler.backends[h.scheduler.runtimes[next(iter(h.scheduler.runtimes))].cluster_id]
    assert first not in getattr(backend, "_running", {})


def test_every_queued_job_carries_the_reason_of_its_group(h):
    long = {"runtime_ms": 3_600_000}
    ids = h.batch([{"quota": "team", "command": ["x"], "gpu": 4, "labels": long} for _ in range(5)])
    h.cycle()
    later = h.batch([{"quota": "team", "command": ["x"], "gpu": 4, "labels": long} for _ in range(2)])
    h.cycle(1.0)
    for j in ids[1:] + later:
        job = h.job(j)
        assert job["reason_code"] == "limit_reached"
        assert job["reason"] == "quota team: limit of 4 gpu in all pools reached (4 in use, 4 requested)"


def test_a_new_job_behind_a_blocked_head_has_its_reason_stored_once_it_has_waited(h):
    """Its page answers at once (the loop's live reason); the stored one, which lists show, follows after
    FIRST_REASON_DELAY_S: most jobs of a burst are admitted sooner, and a row written for each would be for nobody."""
    long = {"runtime_ms": 3_600_000}
    h.batch([{"quota": "team", "command": ["x"], "gpu": 4, "labels": long} for _ in range(2)])
    h.settle()
    (late,) = h.batch([{"quota": "team", "command": ["x"], "gpu": 4, "labels": long}])
    h.cycle(0.1)

    def stored(job_id):
        return next(j for j in h.get("/jobs", params={"state": "queued"})["items"] if j["id"] == job_id)["reason"]

    reason = "quota team: limit of 4 gpu in all pools reached (4 in use, 4 requested)"
    assert h.job(late)["reason"] == reason
    assert stored(late) == "waiting for the scheduler"
    h.cycle(FIRST_REASON_DELAY_S)
    assert stored(late) == reason


def test_a_queued_jobs_page_shows_its_reason_with_the_numbers_of_now(h):
    long, short = {"runtime_ms": 3_600_000}, {"runtime_ms": 1_000}
    h.batch([{"quota": "team", "command": ["x"], "gpu": 2, "labels": long},
             {"quota": "team", "command": ["x"], "gpu": 1, "labels": short}])
    h.settle()
    first, second, third = h.batch([{"quota": "team", "command": ["x"], "gpu": 2, "labels": long} for _ in range(3)])
    h.cycle(0.1)
    assert h.job(third)["reason"] == "quota team: limit of 4 gpu in all pools reached (3 in use, 2 requested)"
    h.settle(advance=2.0)  # the 1-GPU job ends; the first queued job takes its place and the limit again
    assert h.job(first)["state"] in ("admitted", "running")
    for job_id in (second, third):  # the head's stored reason and the member's live one agree on the numbers
        job = h.job(job_id)
        assert job["reason_code"] == "limit_reached"
        assert job["reason"] == "quota team: limit of 4 gpu in all pools reached (4 in use, 2 requested)"


def test_metering_hook_gets_device_seconds(h):
    seen = []
    h.scheduler.meter.hooks.append(seen.append)
    job = h.submit("team", gpu=2, runtime_s=10)
    h.settle(2)
    h.cycle(10.0)
    (usage,) = seen
    assert (usage.job_id, usage.outcome) == (job, "succeeded")
    assert usage.device_seconds == pytest.approx(20.0, abs=0.5)
    metrics = h.client.get("/metrics").text
    assert 'allot_gpu_seconds_total{cluster="sim"}' in metrics


def test_the_local_engine_runs_commands_on_this_host(client, admin_headers, settings):
    h = Harness(client, admin_headers)
    h.post("/clusters/local/quotas", {"name": "local-team", "resources": [
        {"resource": "cpu", "guarantee": 1, "limit": 1}]}, 201)
    ok = h.post("/jobs", {"quota": "local-team", "command": ["sh", "-c", "echo hello"], "cpu": 1}, 201)["id"]
    bad = h.post("/jobs", {"quota": "local-team", "command": ["sh", "-c", "exit 3"], "cpu": 1}, 201)["id"]
    deadline = time.time() + 20
    while time.time() < deadline and h.job(bad)["state"] not in ("succeeded", "failed"):
        h.scheduler.run_cycle()
        time.sleep(0.05)
    assert h.job(ok)["state"] == "succeeded" and h.job(ok)["exit_code"] == 0
    failed = h.job(bad)
    assert (failed["state"], failed["exit_code"], failed["reason_code"]) == ("failed", 3, "failed")
    assert "exited with code 3" in failed["reason"]
    assert (settings.data_dir / "jobs" / f"job-{ok}.log").read_text() == "hello\n"
    nodes = h.get("/clusters/local/nodes")["items"]
    assert len(nodes) == 1 and nodes[0]["pool"] == "default"  # the engine's inventory, in the default pool


@pytest.mark.parametrize("mode", ["thread", "process"])
def test_the_server_runs_the_loop_in_a_thread_or_a_process(tmp_path, backend, mode):
    app = create_app(make_settings(tmp_path, backend, scheduler_enabled=True, scheduler_tick_s=0.05,
                                   scheduler_mode=mode))
    with TestClient(app) as client:
        from conftest import ADMIN_PASSWORD, login

        headers = login(client, "admin", ADMIN_PASSWORD)
        h = Harness(client, headers)
        h.node("n1", gpus=2)
        h.quota("q", [{"resource": "gpu", "guarantee": 2, "limit": 2}])
        ids = h.batch([{"quota": "q", "command": ["x"], "gpu": 1, "labels": {"runtime_ms": 50}} for _ in range(6)])
        deadline = time.time() + 20
        while time.time() < deadline and any(s != "succeeded" for s in h.states(ids)):
            time.sleep(0.05)
        assert h.states(ids) == ["succeeded"] * 6
        jobs = client.get(f"{API}/jobs?limit=10", headers=headers).json()["items"]
        from datetime import datetime

        assert all(datetime.fromisoformat(j["admitted_at"]) >= datetime.fromisoformat(j["submitted_at"])
                   for j in jobs), [(j["submitted_at"], j["admitted_at"]) for j in jobs]


def _ready_within(client, seconds: float) -> bool:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if client.get("/readyz").status_code == 200:
            return True
        time.sleep(0.05)
    return False


def test_readyz_says_not_ready_until_the_loops_first_cycle_has_run(tmp_path, backend, monkeypatch):
    """A server whose loop is still starting would hold every submission until it is up: /readyz answers 503 (naming
    the scheduler) until the first cycle has committed, then 200."""
    release = __import__("threading").Event()
    run_cycle = Scheduler.run_cycle

    def held_first_cycle(self, *args, **kwargs):
        release.wait(30)
        return run_cycle(self, *args, **kwargs)

    monkeypatch.setattr(Scheduler, "run_cycle", held_first_cycle)
    app = create_app(make_settings(tmp_path, backend, scheduler_enabled=True, scheduler_tick_s=0.05,
                                   scheduler_mode="thread"))
    with TestClient(app) as client:
        r = client.get("/readyz")
        assert r.status_code == 503
        assert r.json()["detail"] == "the scheduler is starting"
        assert client.get("/healthz").status_code == 200  # alive all along
        release.set()
        assert _ready_within(client, 10)


def test_readyz_of_a_loop_process_turns_ready_once_it_has_cycled(tmp_path, backend):
    app = create_app(make_settings(tmp_path, backend, scheduler_enabled=True, scheduler_tick_s=0.05,
                                   scheduler_mode="process"))
    with TestClient(app) as client:
        loop = client.app.state.allot.extras["scheduler"]
        assert _ready_within(client, 60)
        assert loop.ready()  # kept: asked again, it answers without asking the process


def _wait_for(h: Harness, job_id: int, states: tuple[str, ...], within: float) -> dict:
    """The job once it is in one of ``states``, or as it is after ``within`` seconds."""
    deadline = time.time() + within
    while True:
        job = h.job(job_id)
        if job["state"] in states or time.time() > deadline:
            return job
        time.sleep(0.02)


@pytest.mark.parametrize("mode", ["thread", "process"])
def test_the_loop_wakes_on_events_not_the_tick(tmp_path, backend, mode):
    """With a 30 s tick, a submission is admitted at once (the route and the commit hook wake the loop, in its thread
    or across to its process), and a simulated job's end (the engine's next due event) admits the job waiting behind
    it at once."""
    from datetime import datetime

    app = create_app(make_settings(tmp_path, backend, scheduler_enabled=True, scheduler_tick_s=30,
                                   scheduler_mode=mode))
    with TestClient(app) as client:
        from conftest import ADMIN_PASSWORD, login

        loop = client.app.state.allot.extras["scheduler"]  # before the harness puts a Scheduler of its own there
        headers = login(client, "admin", ADMIN_PASSWORD)
        h = Harness(client, headers)
        h.node("n1", gpus=1)
        h.quota("q", [{"resource": "gpu", "guarantee": 1, "limit": 1}])
        if mode == "process":  # a loop process starting on a loaded machine takes seconds to import and connect
            assert loop.ready(60)
        time.sleep(0.2)  # the loop's first cycle (at start) is behind us: from now on only events wake it

        wait_for = partial(_wait_for, h)

        began = time.time()
        first = h.submit("q", gpu=1, runtime_s=3.0)  # long enough to still hold the GPU on a loaded machine
        assert wait_for(first, ("admitted", "running"), 2.0)["state"] in ("admitted", "running")
        assert time.time() - began < 2.0
        second = h.submit("q", gpu=1, runtime_s=60.0)
        assert wait_for(second, ("admitted",), 0.3)["state"] == "queued"  # waits for the GPU

        done = wait_for(first, ("succeeded",), 8.0)
        assert done["state"] == "succeeded"
        nxt = wait_for(second, ("admitted", "running"), 2.0)
        assert nxt["state"] in ("admitted", "running"), nxt
        waited = datetime.fromisoformat(nxt["admitted_at"]) - datetime.fromisoformat(done["finished_at"])
        assert waited.total_seconds() < 1.0  # the end freed the GPU and the same wake-up admitted the next job
        assert time.time() - began < 10.0  # nowhere near the 30 s tick


def test_the_thread_wakes_when_a_preemption_delay_ends(tmp_path, backend):
    """With a 30 s tick and nothing else happening, a job that may preempt once queued 1 s does so about 1 s after
    its submission: the loop sleeps until core's next due time, not until the tick."""
    from datetime import datetime

    app = create_app(make_settings(tmp_path, backend, scheduler_enabled=True, scheduler_tick_s=30,
                                   scheduler_preemption_delay_s=1.0))
    with TestClient(app) as client:
        from conftest import ADMIN_PASSWORD, login

        headers = login(client, "admin", ADMIN_PASSWORD)
        h = Harness(client, headers)
        h.node("n1", gpus=1)
        h.quota("q", [{"resource": "gpu", "guarantee": 1, "limit": 1}], within_quota_preemption="lower_priority")
        time.sleep(0.2)

        wait_for = partial(_wait_for, h)

        began = time.time()
        low = h.submit("q", gpu=1, runtime_s=600.0, priority_class="training")
        assert wait_for(low, ("running",), 3.0)["state"] == "running"
        high = h.submit("q", gpu=1, runtime_s=600.0, priority_class="inference")
        assert wait_for(high, ("admitted", "running"), 0.5)["state"] == "queued"  # within its preemption delay
        started = wait_for(high, ("admitted", "running"), 5.0)
        assert started["state"] in ("admitted", "running"), started
        waited = datetime.fromisoformat(started["admitted_at"]) - datetime.fromisoformat(started["submitted_at"])
        assert 1.0 <= waited.total_seconds() < 2.5, waited
        assert h.job(low)["state"] in ("preempted", "queued")
        assert time.time() - began < 10.0  # nowhere near the 30 s tick


def test_the_whole_cycle_runs_with_the_cyclic_collector_paused_and_leaves_it_on(h, monkeypatch):
    # The cycle's reads, records and writes allocate tens of thousands of objects with no cycles among them; the
    # collector walking the queued jobs again and again cost about a quarter of the loop's CPU (scheduler/gcpause.py).
    import gc

    seen: list[bool] = []
    scan = Scheduler._scan
    monkeypatch.setattr(Scheduler, "_scan", lambda self, *a: (seen.append(gc.isenabled()), scan(self, *a))[1])
    monkeypatch.setattr(Writes, "apply", lambda self, conn, apply=Writes.apply: (seen.append(gc.isenabled()),
                                                                                 apply(self, conn))[1])
    gc.enable()
    job = h.submit("team", gpu=1)
    h.cycle()
    assert seen == [False, False]
    assert gc.isenabled()
    assert h.states([job]) == ["admitted"]
