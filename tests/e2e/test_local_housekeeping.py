"""A run whose wrapper was killed outright (SIGKILL: nobody removed its cgroups) leaves empty cgroups behind; the
next local engine removes them when it starts, and only those of its own runs that are over. Root and cgroups."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from allotment.backends import jobrun
from allotment.backends.base import Launch
from allotment.backends.cgroups import Cgroups
from allotment.backends.local import LocalBackend


@pytest.fixture()
def cgroups() -> Cgroups:
    if os.geteuid() != 0:
        pytest.skip("cgroups need root")
    found, why_not = Cgroups.detect()
    if found is None:
        pytest.skip(f"no cgroups here: {why_not}")
    return found


def wait_for(check, what: str, timeout_s: float = 10.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"waited {timeout_s}s for {what}")


def test_cgroups_of_runs_whose_wrapper_was_killed_are_swept_at_start(tmp_path, cgroups):
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    engine = LocalBackend(jobs, cgroups=cgroups)
    engine.launch(Launch(41, "sleep 60", cpu=0.5, admission="k1"), now=time.time())
    run_dir = engine.run_dir(41, "k1")
    record = wait_for(lambda: jobrun.read_json(run_dir / "pid.json"), "the command to start")
    left = [Path(d) for d in json.loads((run_dir / "launch.json").read_text())["cgroup"]["dirs"]]
    assert left and all(d.exists() for d in left)
    wrapper = engine._runs[41].wrapper
    wrapper.send_signal(signal.SIGKILL)  # the wrapper dies without cleaning up, then its command
    wrapper.wait()
    os.killpg(int(record["pid"]), signal.SIGKILL)
    wait_for(lambda: not jobrun.group_alive(record), "the command to end")
    wait_for(lambda: all(not (d / "cgroup.procs").read_text().strip() for d in left), "the cgroups to empty")

    # Not this engine's, and a run of its own never started: both keep their cgroups.
    stranger = cgroups.create(f"99999-other{os.getpid()}", 0.5, 0)
    unstarted = engine.run_dir(42, "k2")
    unstarted.mkdir(parents=True)
    (unstarted / "launch.json").write_text("{}")
    waiting = cgroups.create("42-k2", 0.5, 0)
    engine._runs.clear()  # the old engine is gone with its server
    try:
        LocalBackend(jobs, cgroups=cgroups)
        assert not any(d.exists() for d in left)
        assert all(Path(d).exists() for d in stranger["dirs"] + waiting["dirs"])
    finally:
        jobrun.end_cgroup(stranger["dirs"] + waiting["dirs"])
