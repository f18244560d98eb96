"""The Ray engine against a real Ray head: scripts/ray.sh starts one (fake GPUs: 4 `a100`, 2 `h100` as custom
resources) once per test session and worker. Ray is slow here (a head takes 10-25 s to answer, a trivial job a few
seconds), so the tests are few and run their jobs side by side.

Without Ray (pip install -e '.[ray]') the module is skipped, unless ALLOT_TEST_REQUIRE_RAY=1 (the full suite),
where a head that cannot start fails every test (the `ray_head` fixture: tests/e2e/engines.py). Each test gives its backend a submission prefix of its own, so
that one test's orphan sweep never touches another's jobs.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import signal
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from allotment.backends.base import ENDED, RUNS, UNKNOWN, Launch, recovers
from allotment.backends.ray import RayBackend, RayConfig, RayLaunchError
from allotment.backends.ray_client import MISSING, RayJobsApi, RayUnavailable

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
REQUIRED = os.environ.get("ALLOT_TEST_REQUIRE_RAY") == "1"
_prefixes = itertools.count(1)


@dataclasses.dataclass(frozen=True)
class PoolLaunch(Launch):
    """A launch that names its pool (the field the scheduler's Launch may gain)."""

    pool: str | None = None


def make_backend(head: dict, tmp_path: Path, prefix: str | None = None, **config) -> RayBackend:
    prefix = prefix or f"t{next(_prefixes)}x{os.getpid()}"
    return RayBackend(RayConfig(address=head["address"], log_dir=tmp_path / f"logs-{prefix}",
                                state_dir=tmp_path / f"state-{prefix}", name_prefix=prefix, **config))


def wait_for(backend: RayBackend, want: dict[int, str], timeout_s: float = 90.0) -> dict[int, list]:
    """Poll until each job has an event of the wanted kind; returns every event seen, by job."""
    seen: dict[int, list] = {}
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for event in backend.poll(time.time()):
            seen.setdefault(event.job_id, []).append(event)
        if all(any(e.kind == kind for e in seen.get(job_id, ())) for job_id, kind in want.items()):
            return seen
        time.sleep(0.3)
    raise AssertionError(f"waited {timeout_s}s for {want}; saw {seen}")


def wait_status(backend: RayBackend, submission_id: str, status: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while backend.api.job(submission_id).status != status and time.monotonic() < deadline:
        time.sleep(0.3)
    assert backend.api.job(submission_id).status == status


def used(head: dict, want: dict[str, float], timeout_s: float = 30.0) -> dict[str, float]:
    """How much of each resource in `want` the cluster reports used, once it reports that much (its report lags)."""
    deadline = time.monotonic() + timeout_s
    while True:
        with urllib.request.urlopen(head["address"] + "/api/cluster_status?format=0", timeout=10) as answer:
            report = json.load(answer)["data"]["clusterStatus"]["loadMetricsReport"]["usage"]
        now = {name: report.get(name, [0.0])[0] for name in want}
        if now == want or time.monotonic() > deadline:
            return now
        time.sleep(0.5)


def env_of(log: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in log.read_text().splitlines() if "=" in line and " " not in line)


# -- without a head ---------------------------------------------------------------------------------------------------
def test_without_the_ray_package_the_engine_is_unavailable(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray.job_submission", None)  # importing it now fails as if Ray were absent
    monkeypatch.setitem(sys.modules, "ray.util.state.api", None)
    backend = RayBackend(RayConfig(address="http://127.0.0.1:9", log_dir=tmp_path))
    with pytest.raises(RayUnavailable, match="pip install"):
        backend.inventory()
    assert backend.outage is not None and backend.outage[1] == MISSING
    with pytest.raises(RayUnavailable, match="pip install"):
        backend.api.jobs()


def test_an_unreachable_head_is_unavailable_without_showing_credentials(tmp_path):
    api = RayJobsApi("http://admin:s3cret-pass@127.0.0.1:9", headers={"Authorization": "Bearer tok-xyz"}, timeout_s=2)
    for call in (api.jobs, api.nodes):
        with pytest.raises(RayUnavailable) as caught:
            call()
        assert "s3cret-pass" not in str(caught.value) and "tok-xyz" not in str(caught.value)
        assert "127.0.0.1:9" in str(caught.value)
    assert "s3cret" not in repr(api)
    assert "s3cret" not in repr(RayConfig(address="http://admin:s3cret@h:8265", log_dir=tmp_path))


# -- inventory and running jobs -----------------------------------------------------------------------------------------
def test_inventory_has_two_gpu_models(ray_head, tmp_path):
    assert ray_head["start_s"] < 120, ray_head["start_s"]
    backend = make_backend(ray_head, tmp_path)
    [node] = backend.inventory()
    assert [d.model for d in node.devices] == ["a100"] * 4 + ["h100"] * 2
    assert node.cpu == 8 and node.status == "ready" and {d.health for d in node.devices} == {"healthy"}
    assert recovers(backend)


def test_jobs_land_on_their_models_resources_with_an_explicit_environment(ray_head, tmp_path, monkeypatch):
    monkeypatch.setenv("ALLOT_TEST_SERVER_SECRET", "must-not-leak")
    backend = make_backend(ray_head, tmp_path)
    [node] = backend.inventory()
    release = tmp_path / "release"
    # Each job shows its environment, then holds its resources until the test has looked at the cluster's usage.
    show = f"env | sort; while [ ! -e {release} ]; do sleep 0.2; done"
    a100 = backend.launch(Launch(job_id=11, command=show, node=node.name, devices=((0, 1000), (1, 1000)), cpu=1,
                                 memory_mib=64, env={"TRAINING": "yes"}, admission="a1"), time.time())
    h100 = backend.launch(Launch(job_id=12, command=show, node=node.name, devices=((5, 1000),), admission="a1"),
                          time.time())
    assert backend.launch(Launch(job_id=12, command=show, admission="a1"), time.time()) == h100  # idempotent
    assert a100 != h100 and a100.endswith("-11-a1")
    wait_for(backend, {11: "started", 12: "started"})
    assert used(ray_head, {"a100": 2, "h100": 1, "GPU": 3}) == {"a100": 2, "h100": 1, "GPU": 3}
    release.touch()
    events = wait_for(backend, {11: "succeeded", 12: "succeeded"})
    assert [e.kind for e in events[11]] == ["succeeded"] and events[11][0].exit_code == 0
    first, second = env_of(backend.log_path(11)), env_of(backend.log_path(12))
    # Ray picks the GPUs and says which in CUDA_VISIBLE_DEVICES.
    assert len(first["CUDA_VISIBLE_DEVICES"].split(",")) == 2 and len(second["CUDA_VISIBLE_DEVICES"].split(",")) == 1
    assert first["ALLOT_JOB_ID"] == "11" and first["TRAINING"] == "yes" and second["ALLOT_JOB_ID"] == "12"
    assert "TRAINING" not in second
    for env in (first, second):
        assert "ALLOT_TEST_SERVER_SECRET" not in env
        assert not set(env) & {k for k in os.environ if k.startswith(("ALLOT_", "PYTEST", "VIRTUAL_ENV"))}


def test_a_failing_job_reports_rays_message_and_exit_code(ray_head, tmp_path):
    backend = make_backend(ray_head, tmp_path)
    backend.launch(Launch(job_id=21, command="echo going down; exit 3", admission="a1"), time.time())
    backend.launch(Launch(job_id=22, command="kill -KILL $$", admission="a1"), time.time())
    events = wait_for(backend, {21: "failed", 22: "failed"})
    failed = events[21][-1]
    assert failed.exit_code == 3
    assert "FAILED" in failed.message and "exit code 3" in failed.message and "going down" not in failed.message
    assert "going down" in backend.log_path(21).read_text()
    assert events[22][-1].exit_code == -9 and "signal 9" in events[22][-1].message


def test_cancel_and_the_time_limit_stop_the_job(ray_head, tmp_path):
    backend = make_backend(ray_head, tmp_path, log_interval_s=0)
    handle = backend.launch(Launch(job_id=31, command="echo before; sleep 120", devices=((0, 1000),), admission="a1"),
                            time.time())
    limited = backend.launch(Launch(job_id=32, command="sleep 120", time_limit_s=1, admission="a1"), time.time())
    events = wait_for(backend, {31: "started", 32: "failed"})
    assert events[32][-1].message == "time limit reached"
    wait_status(backend, limited, "STOPPED")
    deadline = time.monotonic() + 30  # a running job's output reaches its log file while it runs
    while "before" not in backend.log_path(31).read_text() and time.monotonic() < deadline:
        backend.poll(time.time())
        time.sleep(0.3)
    assert "before" in backend.log_path(31).read_text()
    backend.cancel(31, time.time())
    wait_status(backend, handle, "STOPPED")
    assert backend.poll(time.time()) == []
    assert "before" in backend.log_path(31).read_text()  # its output is kept after the stop
    backend.cancel(31, time.time())  # again, and unknown ids: ignored
    backend.cancel(999, time.time())


def test_a_resource_no_node_has_is_never_submitted(ray_head, tmp_path):
    backend = make_backend(ray_head, tmp_path, resources={"b200-pool": "b200", "a100-pool": "a100"})
    [node] = backend.inventory()
    refused = [
        (PoolLaunch(job_id=41, command="true", devices=((0, 1000),), pool="b200-pool", admission="a1"), "'b200'"),
        (Launch(job_id=42, command="true", cpu=16, admission="a1"), "more than"),
        (Launch(job_id=43, command="true", node=node.name, devices=((6, 1000),), admission="a1"), "no GPU 6"),
        (Launch(job_id=44, command="true", node="elsewhere", admission="a1"), "not in this Ray cluster"),
    ]
    for launch, why in refused:
        with pytest.raises(RayLaunchError, match=why):
            backend.launch(launch, time.time())
        assert backend.api.job(backend.submission_id(launch.job_id, "a1")) is None
    # The pool's resource is asked for where the pool maps to one.
    request = backend.request(PoolLaunch(job_id=45, command="true", devices=((0, 500),), pool="a100-pool"))
    assert request["a100"] == 0.5 and request["GPU"] == 0.5


# -- after a restart of the server ------------------------------------------------------------------------------------
def test_a_fresh_engine_reattaches_runs_and_stops_orphans(ray_head, tmp_path):
    first = make_backend(ray_head, tmp_path)
    prefix = first.config.name_prefix
    running = Launch(job_id=51, command="sleep 120", devices=((0, 1000),), admission="a1")
    ended = Launch(job_id=52, command="echo five; exit 5", admission="a1")
    orphan = Launch(job_id=53, command="sleep 120", admission="old")
    handle = first.launch(running, time.time())
    first.launch(ended, time.time())
    orphan_handle = first.launch(orphan, time.time())
    wait_for(first, {51: "started", 52: "failed", 53: "started"})
    # The server is killed here: nothing of `first` is used again but its files.
    second = make_backend(ray_head, tmp_path, prefix=prefix)
    now = time.time()
    found = second.reattach(running, now)
    assert found.state == RUNS and found.started_at is not None
    assert getattr(found, "handle", handle) == handle
    gone = second.reattach(ended, now)
    assert (gone.state, gone.exit_code) == (ENDED, 5) and "exit code 5" in gone.message
    assert second.reattach(Launch(job_id=54, command="true", admission="a1"), now).state == UNKNOWN
    assert second.launch(running, now) == handle  # adopted, not submitted again
    stopped = second.stop_orphans({51: "a1", 53: "new"}, now)
    assert len(stopped) == 1 and "job 53" in stopped[0]
    wait_status(second, orphan_handle, "STOPPED")
    assert second.api.job(handle).status == "RUNNING"
    # The adopted run is tracked: no second 'started'; its end (stopped outside allotment) is reported.
    assert second.poll(time.time()) == []
    second.api.stop(handle)
    events = wait_for(second, {51: "failed"})[51]
    assert [e.kind for e in events] == ["failed"] and "not by allotment" in events[0].message


# -- faults -----------------------------------------------------------------------------------------------------------
def _jobs_api_process(head: dict) -> psutil.Process:
    port = head["address"].rsplit(":", 1)[1]
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if any(part.endswith("dashboard/dashboard.py") for part in cmdline) and f"--port={port}" in cmdline:
            return proc
    raise AssertionError("the head's dashboard process was not found")


def test_a_hanging_head_fails_nothing_and_heals(ray_head, tmp_path):
    backend = make_backend(ray_head, tmp_path, timeout_s=2)
    backend.launch(Launch(job_id=61, command="sleep 120", admission="a1"), time.time())
    wait_for(backend, {61: "started"})
    api = _jobs_api_process(ray_head)
    api.send_signal(signal.SIGSTOP)  # the Jobs API accepts connections and never answers
    try:
        with pytest.raises(RayUnavailable, match="does not answer"):
            backend.poll(time.time())
        assert backend.outage is not None
        started = time.monotonic()
        with pytest.raises(RayUnavailable):  # at once: the engine waits before asking Ray again
            backend.launch(Launch(job_id=62, command="true", admission="a1"), time.time())
        with pytest.raises(RayUnavailable):
            backend.cancel(61, time.time())  # sent again once Ray answers
        assert time.monotonic() - started < 1
    finally:
        api.send_signal(signal.SIGCONT)
    time.sleep(3.5)  # the engine's wait between tries (OUTAGE_BACKOFF_S)
    assert backend.poll(time.time()) == [] and backend.outage is None
    wait_status(backend, backend.submission_id(61, "a1"), "STOPPED")
