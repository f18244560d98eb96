"""Issue 17 end to end: a real `allot server` (as root here: jobs get uids of their own) and the real CLI. A user
creates a folder, uploads a file, shares a second folder read-only with a colleague; the colleague's job, submitted
with `allot jobs submit --mount`, reads both folders at their paths, writes into its own read-write folder and is
refused writing into the read-only one; the folder stays out of the trash while the job runs."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from e2e.clitools import allot, login_config, ok, start_server, stop_server, unique

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("folders")
    # Working directories where a job's account can reach them by path (pytest's own tmp is 0700).
    work = Path(tempfile.mkdtemp(prefix="allot-work-", dir="/var/tmp"))
    proc, server = start_server(root, local_work_dir=str(work), scheduler_tick_s="0.2")
    admin = login_config(server, root / "admin-cli", server.admin_username, server.admin_password)
    quota = unique("store")
    ok(allot("quotas", "create", quota, "--cluster", "local", "--cpu", "2", "--memory", "2Gi", config_dir=admin))
    users = {}
    for name in ("owner", "colleague"):
        username = unique(name)
        ok(allot("admin", "add-user", f"{username}@example.com", username, "--password-stdin",
                 input="Us3r-password!\n", config_dir=admin))
        ok(allot("quotas", "bind", quota, "--user", username, config_dir=admin))
        ok(allot("admin", "add-cluster-user", "local", username, "user", config_dir=admin))
        users[name] = login_config(server, root / f"cli-{name}", username, "Us3r-password!")
        users[f"{name}_name"] = username
    try:
        yield {"server": server, "quota": quota, "root": root, **users}
    finally:
        stop_server(proc)
        shutil.rmtree(work, ignore_errors=True)


def _job(site, user: str, job_id: int) -> dict:
    return json.loads(ok(allot("jobs", "show", str(job_id), "--json", config_dir=site[user])).stdout)


def _wait(site, user: str, job_id: int, states: tuple[str, ...], within: float = 60) -> dict:
    deadline = time.time() + within
    while True:
        job = _job(site, user, job_id)
        if job["state"] in states or time.time() > deadline:
            return job
        time.sleep(0.3)


def _log(site, job_id: int, text: str = "", within: float = 30) -> str:
    path = site["server"].data_dir / "jobs" / f"job-{job_id}.log"
    deadline = time.time() + within
    while text and (not path.exists() or text not in path.read_text(errors="replace")) and time.time() < deadline:
        time.sleep(0.2)
    return path.read_text(errors="replace") if path.exists() else ""


def test_a_job_reads_mounted_folders_and_cannot_write_a_read_only_one(site):
    if os.geteuid() != 0:
        pytest.skip("shown in the root mode; tests/unit/backends/test_local_mounts.py covers bubblewrap")
    owner, colleague = site["owner"], site["colleague"]
    source = site["root"] / "reference.txt"
    source.write_text("reference data\n")
    ok(allot("folders", "create", "reference", config_dir=owner))
    ok(allot("folders", "upload", "reference", str(source), config_dir=owner))
    out = ok(allot("folders", "share", "reference", site["colleague_name"], "--permission", "ro", config_dir=owner))
    invitation = out.stdout.split("invitation ")[1].split(":")[0]
    ok(allot("folders", "accept", invitation, config_dir=colleague))
    ok(allot("folders", "create", "results", config_dir=colleague))
    script = ('cat folders/reference/reference.txt; echo "ref=$ALLOT_FOLDER_REFERENCE"; '
              'echo computed > out/result.txt && echo wrote-results; '
              'echo tamper > folders/reference/x.txt || echo refused-reference; echo ready; sleep 30')
    submitted = ok(allot("jobs", "submit", "--quota", site["quota"], "--cpu", "0.1", "--json",
                         "--mount", "reference", "--mount", "results:out", "--", "sh", "-c", script,
                         config_dir=colleague))
    job = json.loads(submitted.stdout)
    assert [(m["folder"], m["target"], m["read_only"]) for m in job["mounts"]] == [
        ("reference", "folders/reference", True), ("results", "out", False)]
    log = _log(site, job["id"], "ready")
    assert "reference data" in log and "wrote-results" in log, log
    assert "Read-only file system" in log and "refused-reference" in log, log
    # the owner cannot trash the folder while the colleague's job mounts it
    refused = allot("folders", "trash", "reference", config_dir=owner)
    assert refused.returncode != 0 and f"mounted by active job(s) {job['id']}" in refused.stderr + refused.stdout
    ok(allot("jobs", "cancel", str(job["id"]), config_dir=colleague))
    _wait(site, "colleague", job["id"], ("cancelled", "failed", "succeeded"))
    target = site["root"] / "result.txt"
    ok(allot("folders", "download", "results", "result.txt", str(target), config_dir=colleague))
    assert target.read_text() == "computed\n"
    ok(allot("folders", "trash", "reference", config_dir=owner))
    listing = ok(allot("folders", "list", "--json", config_dir=colleague)).stdout
    assert "reference" not in listing  # an invitee does not see the owner's trash
