"""The Slurm engine against a real Slurm: Debian's slurm-wlm started by scripts/slurm.sh (munge, slurmctld, two fake
GPU nodes of two models, slurmrestd with JWT), once per test session and worker.

Without root or Slurm's packages the module is skipped, unless ALLOT_TEST_REQUIRE_SLURM=1 (the full suite), where
a cluster that cannot start fails every test (the `slurm` fixture: tests/e2e/engines.py). Each test gives its backend a job-name prefix of its own, so that
one test's orphan sweep never touches another's jobs.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from allotment.backends.base import ENDED, LOST, RUNS, UNKNOWN, Launch, recovers
from allotment.backends.slurm import SlurmBackend, SlurmConfig, SlurmLaunchError
from allotment.backends.slurm_client import SlurmCommands, SlurmError, SlurmRestClient, SlurmUnavailable

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
REQUIRED = os.environ.get("ALLOT_TEST_REQUIRE_SLURM") == "1"
_prefixes = itertools.count(1)


def _log_dir(slurm: dict, name: str) -> Path:
    # Jobs run as the token's user (slurmrestd) or as root (commands): both write their logs here.
    path = Path(slurm["jobs_dir"]) / name
    path.mkdir(exist_ok=True)
    path.chmod(0o1777)
    return path


def make_backend(slurm: dict, tmp_path: Path, mode: str = "rest", prefix: str | None = None,
                 log_dir: Path | None = None) -> SlurmBackend:
    prefix = prefix or f"t{next(_prefixes)}x{os.getpid()}"
    common = {"log_dir": log_dir or _log_dir(slurm, prefix), "state_dir": tmp_path / f"state-{prefix}",
              "name_prefix": prefix}
    if mode == "rest":
        config = SlurmConfig(rest_url=slurm["rest_url"], rest_user=slurm["user"], token=slurm["token"], **common)
    else:
        config = SlurmConfig(slurm_conf=slurm["slurm_conf"], **common)
    return SlurmBackend(config)


def wait_for(backend: SlurmBackend, want: dict[int, str], timeout_s: float = 30.0) -> dict[int, list]:
    """Poll until each job has an event of the wanted kind; returns every event seen, by job."""
    seen: dict[int, list] = {}
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for event in backend.poll(time.time()):
            seen.setdefault(event.job_id, []).append(event)
        if all(any(e.kind == kind for e in seen.get(job_id, ())) for job_id, kind in want.items()):
            return seen
        time.sleep(0.2)
    raise AssertionError(f"waited {timeout_s}s for {want}; saw {seen}")


def slurm_job(backend: SlurmBackend, handle: str) -> dict:
    return next(j for j in backend.api.jobs(None) if str(j["job_id"]) == handle)


def env_of(log: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in log.read_text().splitlines() if "=" in line)


# -- inventory --------------------------------------------------------------------------------------------------------
def test_cluster_starts_in_seconds(slurm):
    assert slurm["start_s"] < 30, slurm["start_s"]


def test_inventory_has_two_gpu_models(slurm, tmp_path):
    backend = make_backend(slurm, tmp_path)
    nodes = {n.name: n for n in backend.inventory()}
    assert set(nodes) == {"a100-n1", "h100-n1"}
    assert [d.model for d in nodes["a100-n1"].devices] == ["a100"] * 4
    assert [d.model for d in nodes["h100-n1"].devices] == ["h100"] * 2
    assert nodes["a100-n1"].cpu == 32 and nodes["a100-n1"].memory_mib == 131072  # more than the host has
    assert all(n.status == "ready" and all(d.health == "healthy" for d in n.devices) for n in nodes.values())
    assert recovers(backend)


def test_a_drained_node_has_unhealthy_devices(slurm, tmp_path):
    backend = make_backend(slurm, tmp_path)
    env = {**os.environ, "SLURM_CONF": slurm["slurm_conf"]}
    subprocess.run(["scontrol", "update", "nodename=h100-n1", "state=drain", "reason=test"], check=True, env=env)
    try:
        nodes = {n.name: n for n in backend.inventory()}
        assert nodes["h100-n1"].status == "draining"
        assert {d.health for d in nodes["h100-n1"].devices} == {"unhealthy"}
        assert nodes["a100-n1"].status == "ready"
    finally:
        subprocess.run(["scontrol", "update", "nodename=h100-n1", "state=resume"], check=True, env=env)
    deadline = time.monotonic() + 15  # slurmd answers the controller again within a moment
    while time.monotonic() < deadline:
        nodes = {n.name: n for n in backend.inventory()}
        if nodes["h100-n1"].status == "ready":
            break
        time.sleep(0.2)
    assert {d.health for d in nodes["h100-n1"].devices} == {"healthy"}


# -- running jobs -----------------------------------------------------------------------------------------------------
def test_jobs_land_on_the_partition_of_their_gpu_model(slurm, tmp_path, monkeypatch):
    monkeypatch.setenv("ALLOT_TEST_SERVER_SECRET", "must-not-leak")
    backend = make_backend(slurm, tmp_path)
    backend.inventory()
    show = "env | sort"
    a100 = backend.launch(Launch(job_id=11, command=show, node="a100-n1", devices=((0, 1000), (1, 1000)), cpu=2,
                                 memory_mib=512, time_limit_s=90, env={"TRAINING": "yes"}, admission="a1"), time.time())
    h100 = backend.launch(Launch(job_id=12, command=show, node="h100-n1", devices=((1, 1000),), cpu=1.5,
                                 admission="a1"), time.time())
    events = wait_for(backend, {11: "succeeded", 12: "succeeded"})
    assert [e.kind for e in events[11]] == ["started", "succeeded"] and events[11][1].exit_code == 0
    first, second = env_of(backend.log_path(11)), env_of(backend.log_path(12))
    assert (first["SLURM_JOB_PARTITION"], first["SLURMD_NODENAME"]) == ("a100", "a100-n1")
    assert (second["SLURM_JOB_PARTITION"], second["SLURMD_NODENAME"]) == ("h100", "h100-n1")
    # Slurm picks the GPUs and says which in CUDA_VISIBLE_DEVICES.
    assert first["CUDA_VISIBLE_DEVICES"] == "0,1" and second["CUDA_VISIBLE_DEVICES"] == "0"
    assert first["ALLOT_JOB_ID"] == "11" and first["TRAINING"] == "yes"
    assert first["SLURM_CPUS_ON_NODE"] == "2" and second["SLURM_CPUS_ON_NODE"] == "2"  # 1.5 CPUs -> 2
    assert "ALLOT_TEST_SERVER_SECRET" not in first and "HOME" not in first
    job = slurm_job(backend, a100)
    assert job["time_limit"] == 2 and job["memory_per_node"] == 512 and job["name"].endswith("-11")
    assert slurm_job(backend, h100)["tres_per_node"] == "gres:gpu:h100:1"


def test_launch_is_idempotent_per_admission(slurm, tmp_path):
    backend = make_backend(slurm, tmp_path)
    launch = Launch(job_id=13, command="sleep 30", node="a100-n1", devices=((0, 1000),), admission="a1")
    handle = backend.launch(launch, time.time())
    try:
        assert backend.launch(launch, time.time()) == handle
        # A new engine (the server restarted) launching the same run again submits nothing new.
        again = make_backend(slurm, tmp_path, prefix=backend.config.name_prefix, log_dir=backend.log_dir)
        assert again.launch(launch, time.time()) == handle
        names = [j for j in backend.api.jobs(None) if j["name"] == f"{backend.config.name_prefix}-13"]
        assert len(names) == 1
    finally:
        backend.cancel(13, time.time())


def test_a_failing_job_reports_its_exit_code_and_slurms_reason(slurm, tmp_path):
    backend = make_backend(slurm, tmp_path)
    backend.launch(Launch(job_id=21, command="echo going down; exit 3", node="a100-n1", admission="a1"), time.time())
    backend.launch(Launch(job_id=22, command="kill -KILL $$", node="a100-n1", admission="a1"), time.time())
    events = wait_for(backend, {21: "failed", 22: "failed"})
    failed = events[21][-1]
    assert failed.exit_code == 3
    assert "FAILED" in failed.message and "NonZeroExitCode" in failed.message and "exit code 3" in failed.message
    assert events[22][-1].exit_code == -9 and "signal 9" in events[22][-1].message
    assert "going down" in backend.log_path(21).read_text()


def test_cancel_stops_the_slurm_job_without_an_event(slurm, tmp_path):
    backend = make_backend(slurm, tmp_path)
    handle = backend.launch(Launch(job_id=31, command="sleep 60", node="h100-n1", devices=((0, 1000),),
                                   admission="a1"), time.time())
    wait_for(backend, {31: "started"})
    backend.cancel(31, time.time())
    deadline = time.monotonic() + 15
    while slurm_job(backend, handle)["job_state"] != "CANCELLED" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert slurm_job(backend, handle)["job_state"] == "CANCELLED"
    assert backend.poll(time.time()) == []
    backend.cancel(31, time.time())  # again, and unknown ids: ignored
    backend.cancel(999, time.time())


def test_a_job_cancelled_outside_allotment_fails_with_slurms_state(slurm, tmp_path):
    backend = make_backend(slurm, tmp_path)
    handle = backend.launch(Launch(job_id=32, command="sleep 60", node="a100-n1", admission="a1"), time.time())
    wait_for(backend, {32: "started"})
    backend.api.cancel(int(handle))
    failed = wait_for(backend, {32: "failed"})[32][-1]
    assert "cancelled in Slurm" in failed.message


def test_a_fraction_of_a_gpu_is_refused(slurm, tmp_path):
    backend = make_backend(slurm, tmp_path)
    with pytest.raises(SlurmLaunchError, match="fraction of a GPU"):
        backend.launch(Launch(job_id=41, command="true", node="a100-n1", devices=((0, 500),), admission="a1"),
                       time.time())
    with pytest.raises(SlurmLaunchError, match="not in this Slurm cluster"):
        backend.launch(Launch(job_id=42, command="true", node="nowhere", devices=((0, 1000),), admission="a1"),
                       time.time())


# -- after a restart of the server ------------------------------------------------------------------------------------
def test_a_fresh_engine_reattaches_runs_and_stops_orphans(slurm, tmp_path):
    first = make_backend(slurm, tmp_path)
    prefix, logs = first.config.name_prefix, first.log_dir
    running = Launch(job_id=51, command="sleep 60", node="a100-n1", devices=((0, 1000),), admission="a1")
    ended = Launch(job_id=52, command="exit 5", node="h100-n1", admission="a1")
    orphan = Launch(job_id=53, command="sleep 60", node="a100-n1", admission="old")
    handle = first.launch(running, time.time())
    first.launch(ended, time.time())
    orphan_handle = first.launch(orphan, time.time())
    wait_for(first, {51: "started", 52: "failed", 53: "started"})
    # The server is killed here: nothing of `first` is used again but its files.
    second = make_backend(slurm, tmp_path, prefix=prefix, log_dir=logs)
    now = time.time()
    found = second.reattach(running, now)
    assert found.state == RUNS and found.started_at is not None
    assert getattr(found, "handle", handle) == handle
    gone = second.reattach(ended, now)
    assert (gone.state, gone.exit_code) == (ENDED, 5) and "exit code 5" in gone.message
    assert second.reattach(Launch(job_id=54, command="true", admission="a1"), now).state == UNKNOWN
    stopped = second.stop_orphans({51: "a1", 53: "new"}, now)
    assert len(stopped) == 1 and "job 53" in stopped[0]
    deadline = time.monotonic() + 15
    while slurm_job(second, orphan_handle)["job_state"] != "CANCELLED" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert slurm_job(second, orphan_handle)["job_state"] == "CANCELLED"
    assert slurm_job(second, handle)["job_state"] == "RUNNING"
    # The adopted run is tracked: no second 'started'; its end is reported.
    assert second.poll(time.time()) == []
    second.api.cancel(int(handle))
    events = wait_for(second, {51: "failed"})[51]
    assert [e.kind for e in events] == ["failed"]


def test_a_run_slurm_forgot_is_lost_not_launched_again(slurm, tmp_path):
    backend = make_backend(slurm, tmp_path)
    # A record of a run whose Slurm job is long purged (MinJobAge passed while the server was down).
    (backend.state_dir / "runs.jsonl").write_text(json.dumps({"job": 61, "admission": "a1", "slurm": 7}) + "\n")
    fresh = make_backend(slurm, tmp_path, prefix=backend.config.name_prefix, log_dir=backend.log_dir)
    found = fresh.reattach(Launch(job_id=61, command="true", admission="a1"), time.time())
    assert found.state == LOST and "no longer knows" in found.message


# -- the command fallback ---------------------------------------------------------------------------------------------
def test_commands_launch_poll_and_cancel(slurm, tmp_path, monkeypatch):
    monkeypatch.setenv("ALLOT_TEST_SERVER_SECRET", "must-not-leak")
    backend = make_backend(slurm, tmp_path, mode="cli")
    assert isinstance(backend.api, SlurmCommands)
    assert {n.name for n in backend.inventory()} == {"a100-n1", "h100-n1"}
    backend.launch(Launch(job_id=71, command="env | sort", node="h100-n1", devices=((0, 1000), (1, 1000)),
                          env={"TRAINING": "yes"}, admission="a1"), time.time())
    handle = backend.launch(Launch(job_id=72, command="sleep 60", node="a100-n1", devices=((0, 1000),),
                                   admission="a1"), time.time())
    events = wait_for(backend, {71: "succeeded", 72: "started"})
    assert [e.kind for e in events[71]] == ["started", "succeeded"]
    env = env_of(backend.log_path(71))
    assert env["SLURM_JOB_PARTITION"] == "h100" and env["CUDA_VISIBLE_DEVICES"] == "0,1"
    assert env["ALLOT_JOB_ID"] == "71" and env["TRAINING"] == "yes"
    assert "ALLOT_TEST_SERVER_SECRET" not in env and "HOME" not in env
    backend.cancel(72, time.time())
    deadline = time.monotonic() + 15
    while slurm_job(backend, handle)["job_state"] != "CANCELLED" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert slurm_job(backend, handle)["job_state"] == "CANCELLED"
    assert backend.poll(time.time()) == []


# -- faults -----------------------------------------------------------------------------------------------------------
def test_an_unreachable_slurmrestd_is_unavailable_not_an_error_of_the_job(tmp_path):
    client = SlurmRestClient("http://127.0.0.1:9", "nobody", "secret-token-value", timeout_s=2)
    with pytest.raises(SlurmUnavailable) as caught:
        client.nodes()
    assert "secret-token-value" not in str(caught.value)
    missing = SlurmCommands(bin_dir=str(tmp_path))
    with pytest.raises(SlurmUnavailable):
        missing.jobs()


def _ctld_up(slurm: dict) -> bool:
    env = {"PATH": os.environ["PATH"], "SLURM_CONF": slurm["slurm_conf"]}
    return subprocess.run(["scontrol", "ping"], env=env, capture_output=True, check=False).returncode == 0


def test_an_outage_of_slurmctld_fails_nothing_and_heals(slurm, tmp_path):
    backend = make_backend(slurm, tmp_path)
    commands = make_backend(slurm, tmp_path, mode="cli")
    env = {"PATH": os.environ["PATH"], "SLURM_CONF": slurm["slurm_conf"]}
    handle = backend.launch(Launch(job_id=81, command="sleep 60", node="a100-n1", admission="a1"), time.time())
    wait_for(backend, {81: "started"})
    subprocess.run(["scontrol", "shutdown", "slurmctld"], env=env, check=True, capture_output=True)
    try:
        deadline = time.monotonic() + 15
        while _ctld_up(slurm) and time.monotonic() < deadline:
            time.sleep(0.1)
        with pytest.raises(SlurmUnavailable):
            backend.poll(time.time())
        assert backend.outage is not None
        started = time.monotonic()
        with pytest.raises(SlurmUnavailable):  # at once: the engine waits before asking Slurm again
            backend.launch(Launch(job_id=82, command="true", node="a100-n1", admission="a1"), time.time())
        assert time.monotonic() - started < 1
        with pytest.raises(SlurmUnavailable):
            commands.inventory()
    finally:
        # slurmctld comes back with its saved state: the job ran on meanwhile.
        subprocess.run(["/usr/sbin/slurmctld"], env=env, check=True)
    deadline = time.monotonic() + 20
    while not _ctld_up(slurm) and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(3.5)  # the engine's wait between tries (OUTAGE_BACKOFF_S)
    assert backend.poll(time.time()) == [] and backend.outage is None
    assert slurm_job(backend, handle)["job_state"] == "RUNNING"
    backend.cancel(81, time.time())


def test_a_bad_token_is_refused_without_showing_it(slurm):
    client = SlurmRestClient(slurm["rest_url"], slurm["user"], "not-a-token-xyz")
    with pytest.raises(SlurmError) as caught:
        client.nodes()
    assert "not-a-token-xyz" not in str(caught.value) and "rejects the token" in str(caught.value)
    assert "not-a-token-xyz" not in repr(client)
