"""Issue 9, the local engine's isolation, against a real `allot server` (as root here: jobs get uids of their own).

A non-admin user submits, through the real CLI, a job that tries to read every secret of the server: its
environment (the bootstrap admin's password is in it), the secret key file, the SQLite database, the data
directory's listing, the server's /proc environ, and another user's running job (its working directory and log).
Its log shows each attempt failing. Then: the declared environment reaches the job, a job using more memory than it
requested is killed saying so, and a CPU request becomes the run's cgroup quota.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from e2e.clitools import ADMIN_PASSWORD, allot, login_config, ok, start_server, stop_server, unique

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("this test shows the root mode (accounts of their own); test_local_sandbox.py covers bwrap")
    root = tmp_path_factory.mktemp("isolation")
    # Working directories where a job's account can reach them by path (pytest's own tmp is 0700).
    work = Path(tempfile.mkdtemp(prefix="allot-work-", dir="/var/tmp"))
    proc, server = start_server(root, local_work_dir=str(work), scheduler_tick_s="0.2")
    admin = login_config(server, root / "admin-cli", server.admin_username, server.admin_password)
    quota = unique("lab")
    ok(allot("quotas", "create", quota, "--cluster", "local", "--cpu", "2", "--memory", "2Gi", config_dir=admin))
    users = {}
    for name in ("alice", "bob"):
        username = unique(name)
        ok(allot("admin", "add-user", f"{username}@example.com", username, "--password-stdin",
                 input="Us3r-password!\n", config_dir=admin))
        ok(allot("quotas", "bind", quota, "--user", username, config_dir=admin))
        ok(allot("admin", "add-cluster-user", "local", username, "user", config_dir=admin))
        users[name] = login_config(server, root / f"cli-{name}", username, "Us3r-password!")
    try:
        yield {"server": server, "proc": proc, "quota": quota, "work": work, **users}
    finally:
        stop_server(proc)
        shutil.rmtree(work, ignore_errors=True)


def _submit(site, user: str, script: str, *options: str) -> int:
    out = ok(allot("jobs", "submit", "--quota", site["quota"], "--json", *options, "--", "sh", "-c", script,
                   config_dir=site[user]))
    return json.loads(out.stdout)["id"]


def _job(site, user: str, job_id: int) -> dict:
    return json.loads(ok(allot("jobs", "show", str(job_id), "--json", config_dir=site[user])).stdout)


def _wait(site, user: str, job_id: int, states: tuple[str, ...], within: float = 60) -> dict:
    deadline = time.time() + within
    while True:
        job = _job(site, user, job_id)
        if job["state"] in states or time.time() > deadline:
            return job
        time.sleep(0.3)


def _log(site, job_id: int) -> str:
    path = site["server"].data_dir / "jobs" / f"job-{job_id}.log"
    return path.read_text(errors="replace") if path.exists() else ""


def _wait_log(site, job_id: int, text: str, within: float = 30) -> str:
    deadline = time.time() + within
    while text not in _log(site, job_id) and time.time() < deadline:
        time.sleep(0.2)
    return _log(site, job_id)


def test_a_job_can_read_no_secret_of_the_server_nor_another_users_job(site):
    data = site["server"].data_dir.resolve()
    bob = _submit(site, "bob", "echo bob-private-data > notes.txt; echo ready; sleep 60", "--cpu", "0.1")
    assert "ready" in _wait_log(site, bob, "ready")
    bob_work = site["work"] / str(bob)
    assert (bob_work / "notes.txt").read_text() == "bob-private-data\n"
    targets = [data / "secret_key", data / "allotment.db", data, data / "jobs", data / "jobs" / f"job-{bob}.log",
               bob_work, bob_work / "notes.txt", Path(f"/proc/{site['proc'].pid}/environ")]
    probes = "".join(f'if {{ test -d "{t}" && ls -A "{t}" || cat "{t}"; }} >/dev/null 2>&1; then echo "READ {t}"; '
                     f'else echo "DENIED {t}"; fi; ' for t in targets)
    script = f'echo "uid=$(id -u) home=$HOME pwd=$(pwd)"; env | sed "s/^/ENV /"; {probes} echo done'
    alice = _submit(site, "alice", script, "--cpu", "0.1", "--env", "GREETING=hello world", "--env", "EQ=a=b")
    assert _wait(site, "alice", alice, ("succeeded", "failed"))["state"] == "succeeded"
    log = _log(site, alice)
    for target in targets:
        assert f"DENIED {target}" in log, log
    assert "READ " not in log
    env = dict(line[4:].split("=", 1) for line in log.splitlines() if line.startswith("ENV "))
    assert env["GREETING"] == "hello world" and env["EQ"] == "a=b" and env["ALLOT_JOB_ID"] == str(alice)
    assert ADMIN_PASSWORD not in log
    # The engine's own variables only: the job's id and its configuration file (vaults), never the server's settings.
    assert not [k for k in env if k.startswith("ALLOT_") and k not in ("ALLOT_JOB_ID", "ALLOT_CONFIG_FILE")]
    assert set(env) <= {"GREETING", "EQ", "ALLOT_JOB_ID", "ALLOT_CONFIG_FILE", "CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES", "PATH",
                        "HOME", "USER", "LOGNAME", "LANG", "PWD", "SHLVL", "_", "OLDPWD"}, env
    uid = int(log.split("uid=")[1].split()[0])
    work = site["work"] / str(alice)
    assert uid >= 2_100_000_000 and f"home={work} pwd={work}" in log
    # Data directory and secrets are closed to every account but the server's.
    assert (data.stat().st_mode & 0o077) == 0 and (data / "secret_key").stat().st_mode & 0o077 == 0
    # The finished job's directory went back to root: a later job given the same uid cannot read it.
    assert work.stat().st_uid == 0 and bob_work.stat().st_uid == 2_100_000_000 + bob
    ok(allot("jobs", "cancel", str(bob), config_dir=site["bob"]))


def test_a_job_over_its_memory_request_is_killed_saying_so(site):
    job = _submit(site, "alice", "python3 -c \"x = b'a' * (400 << 20); print('allocated', len(x))\"",
                  "--cpu", "0.5", "--memory", "64Mi")
    done = _wait(site, "alice", job, ("succeeded", "failed"))
    assert done["state"] == "failed", _log(site, job)
    assert "allocated" not in _log(site, job)
    assert done["reason"].startswith("memory limit reached"), done["reason"]


def test_a_cpu_request_becomes_the_runs_cgroup_quota(site):
    job = _submit(site, "alice", "cat /proc/self/cgroup; echo listed; sleep 60", "--cpu", "0.5", "--memory", "64Mi")
    log = _wait_log(site, job, "listed")
    paths = dict(line.split(":", 2)[1:] for line in log.splitlines() if line.count(":") >= 2)
    cpu = next(path for controllers, path in paths.items() if "cpu" in controllers.split(","))
    memory = paths.get("memory") or paths.get("")
    mount = Path("/sys/fs/cgroup")
    if (mount / "cgroup.controllers").exists():  # v2
        assert (mount / cpu.lstrip("/") / "cpu.max").read_text().split() == ["50000", "100000"]
        assert (mount / memory.lstrip("/") / "memory.max").read_text().strip() == str(64 << 20)
    else:
        cpu_mount = mount / ("cpu" if (mount / "cpu" / "cpu.cfs_quota_us").exists() else "cpu,cpuacct")
        assert (cpu_mount / cpu.lstrip("/") / "cpu.cfs_quota_us").read_text().strip() == "50000"
        limit = (mount / "memory" / memory.lstrip("/") / "memory.limit_in_bytes").read_text().strip()
        assert limit == str(64 << 20)
    r = httpx.get(f"{site['server'].url}/readyz", timeout=5)
    assert r.status_code == 200
    ok(allot("jobs", "cancel", str(job), config_dir=site["alice"]))
    assert _wait(site, "alice", job, ("cancelled",))["state"] == "cancelled"
    deadline = time.time() + 15
    cgroup_dir = mount / ("cpu" if (mount / "cpu").exists() else "") / cpu.lstrip("/")
    while cgroup_dir.exists() and time.time() < deadline:
        time.sleep(0.2)
    assert not cgroup_dir.exists()  # removed with its run
