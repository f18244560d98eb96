"""End to end: `allot jobs logs ID` prints a local job's output, `-f` prints it as it is written and returns when
the job ends, Ctrl-C stops following cleanly, and another user cannot read it; a real server and the real `allot`."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from e2e.clitools import allot_executable, api, login_config, ok, start_server, stop_server, unique

pytestmark = pytest.mark.e2e


# A shell runs a foreground command with Ctrl-C's signal at its default. A suite started in the background (`&` in
# a script, nohup, a CI runner's detached job) ignores SIGINT, and its children inherit that: the follower would
# never see the interrupt. The launcher sets the default back (a shell cannot: an ignored signal stays ignored in
# sh) and becomes the command.
FOREGROUND = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
              "os.execv(sys.argv[1], sys.argv[1:])")


def follow(job_id: int, config_dir: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALLOT_")}
    env.update(ALLOT_CONFIG_DIR=str(config_dir), NO_COLOR="1", TERM="dumb")
    command = [allot_executable(), "jobs", "logs", str(job_id), "-f"]
    return subprocess.Popen([sys.executable, "-c", FOREGROUND, *command], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)


def readline(proc: subprocess.Popen, within: float = 60) -> bytes:
    """The follower's next line, or b"" when none came in time (a bare readline would hang the whole run)."""
    ready, _, _ = select.select([proc.stdout], [], [], within)
    return proc.stdout.readline() if ready else b""


def wait_state(config_dir: Path, job_id: int, states: tuple[str, ...], within: float = 60) -> dict:
    deadline = time.monotonic() + within
    while True:
        job = api(config_dir, "GET", f"jobs/{job_id}").json()
        if job["state"] in states or time.monotonic() > deadline:
            return job
        time.sleep(0.2)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A server of this module's own (it overrides the session-wide one): the shared server also carries other
    tests' engine clusters, some deliberately unreachable, and these tests time a follower's first line."""
    proc, info = start_server(tmp_path_factory.mktemp("logs-server"))
    try:
        yield info
    finally:
        stop_server(proc)


@pytest.fixture
def submitter(allot, admin_config, new_user):
    """A user bound to a CPU quota of the local cluster: submit(command) -> job id."""
    quota = unique("logq")
    username, _, config = new_user("logger")
    ok(allot("quotas", "create", quota, "--cpu", "0.5", "--cpu-limit", "1", config_dir=admin_config))
    ok(allot("quotas", "bind", quota, "--user", username, config_dir=admin_config))
    ok(allot("admin", "add-cluster-user", "local", username, "user", config_dir=admin_config))

    def submit(script: str) -> int:
        out = ok(allot("jobs", "submit", "--quota", quota, "--cpu", "0.1", "--json", "--", "sh", "-c", script,
                       config_dir=config))
        return json.loads(out.stdout)["id"]

    submit.config = config
    return submit


def test_follow_prints_output_as_it_is_written_then_the_whole_log(allot, new_user, submitter):
    config = submitter.config
    job_id = submitter("echo first; sleep 4; echo 'second ✓'")
    proc = follow(job_id, config)
    try:
        first = readline(proc, within=120).decode()
        # The first line came while the job still runs: it was streamed, not printed at the end.
        assert first == "first\n", api(config, "GET", f"jobs/{job_id}").json()
        assert api(config, "GET", f"jobs/{job_id}").json()["state"] == "running"
        rest, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert rest.decode() == "second ✓\n" and f"job {job_id} succeeded" in err.decode()

    whole = ok(allot("jobs", "logs", str(job_id), config_dir=config))
    assert whole.stdout == "first\nsecond ✓\n"
    tail = ok(allot("jobs", "logs", str(job_id), "--offset", "6", config_dir=config))
    assert tail.stdout == "second ✓\n"

    _, _, stranger = new_user("stranger")
    refused = allot("jobs", "logs", str(job_id), config_dir=stranger)
    assert refused.returncode == 1 and f"no job {job_id}" in refused.stderr and "first" not in refused.stdout


def test_ctrl_c_stops_following_cleanly(allot, submitter):
    config = submitter.config
    job_id = submitter("echo started; sleep 60")
    proc = follow(job_id, config)
    try:
        assert readline(proc).decode() == "started\n"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
        ok(allot("jobs", "cancel", str(job_id), config_dir=config))
    assert proc.returncode == 130
    assert "Traceback" not in err.decode() and out == b""
    assert wait_state(config, job_id, ("cancelled",))["state"] == "cancelled"


def test_a_server_told_to_stop_ends_its_followers_and_stops(allot, tmp_path):
    """uvicorn lets open responses finish before it stops: followers must not keep a stopping server alive."""
    root = tmp_path / "own-server"
    root.mkdir()
    proc, own = start_server(root)
    try:
        config = login_config(own, tmp_path / "own-cli", own.admin_username, own.admin_password)
        ok(allot("quotas", "create", "stopq", "--cpu", "0.5", "--cpu-limit", "1", config_dir=config))
        ok(allot("quotas", "bind", "stopq", "--user", own.admin_username, config_dir=config))
        out = ok(allot("jobs", "submit", "--quota", "stopq", "--cpu", "0.1", "--json", "--", "sh", "-c",
                       "echo hi; sleep 120", config_dir=config))
        job_id = json.loads(out.stdout)["id"]
        follower = follow(job_id, config)
        try:
            assert readline(follower) == b"hi\n"
            started = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
            assert time.monotonic() - started < 15
            _, err = follower.communicate(timeout=20)
        finally:
            if follower.poll() is None:
                follower.kill()
        assert follower.returncode == 1
        assert f"follow again with `allot jobs logs {job_id} -f --offset 3`" in err.decode()
    finally:
        stop_server(proc)
