"""The local engine's housekeeping by retention: working directories and run records of local jobs that ended more
than ALLOT_JOB_LOG_RETENTION_DAYS ago are deleted; those of recent, running or unknown jobs, and of other clusters'
jobs, are kept."""

from __future__ import annotations

import os
import time
from datetime import timedelta

import pytest
from inventory_helpers import API, make_user, sessions

from allotment.backends.local_retention import LocalRetention, delete_expired_job_dirs, local_job_dirs
from allotment.db import transaction, utcnow
from allotment.workloads.models import Job


@pytest.fixture
def alice(client, admin_headers):
    r = client.post(f"{API}/clusters/local/quotas", headers=admin_headers, json={
        "name": "lab", "resources": [{"resource": "cpu", "guarantee": 1, "limit": 1}]})
    assert r.status_code == 201, r.text
    headers = make_user(client, "alice", cluster_role="user")
    assert client.put(f"{API}/quotas/lab/bindings/users/alice", headers=admin_headers).status_code == 204
    return headers


def submit(client, headers) -> int:
    r = client.post(f"{API}/jobs", headers=headers, json={"quota": "lab", "command": ["true"], "cpu": "0.1"})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def set_job(client, job_id: int, **values) -> None:
    with transaction(sessions(client)) as s:
        job = s.get(Job, job_id)
        for name, value in values.items():
            setattr(job, name, value)


def make_dirs(settings, job_id: int) -> list:
    """A working directory with a file and a symlink out of it, and a run record, as the engine leaves them."""
    work_root, records = local_job_dirs(settings)
    work = work_root / str(job_id)
    run = records / str(job_id) / "1700000000000000"
    for path in (work, run):
        path.mkdir(parents=True, exist_ok=True)
    (work / "checkpoint.bin").write_bytes(b"x" * 1024)
    os.symlink(settings.data_dir, work / "escape")  # removed as a link, never followed
    (run / "exit.json").write_text('{"code": 0}')
    return [work, records / str(job_id)]


def test_directories_of_local_jobs_that_ended_long_ago_are_deleted(client, settings, alice):
    now = utcnow()
    old, fresh, running = (submit(client, alice) for _ in range(3))
    set_job(client, old, state="succeeded", started_at=now - timedelta(days=41), finished_at=now - timedelta(days=40))
    set_job(client, fresh, state="failed", started_at=now - timedelta(days=3), finished_at=now - timedelta(days=2))
    set_job(client, running, state="running", started_at=now - timedelta(days=90))
    dirs = {job_id: make_dirs(settings, job_id) for job_id in (old, fresh, running, 999999)}
    with sessions(client)() as session:
        assert delete_expired_job_dirs(session, settings.model_copy(update={"job_log_retention_days": 0})) == 0
        assert delete_expired_job_dirs(session, settings, now) == 2
    assert not any(path.exists() for path in dirs[old])
    assert settings.data_dir.exists()  # the link out of the working directory was not followed
    for job_id in (fresh, running, 999999):  # recent, still running, and no job of this server
        assert all(path.exists() for path in dirs[job_id])


def test_the_sweep_runs_in_the_background(client, settings, alice):
    job_id = submit(client, alice)
    long_ago = utcnow() - timedelta(days=31)
    set_job(client, job_id, state="succeeded", started_at=long_ago, finished_at=long_ago)
    work, records = make_dirs(settings, job_id)
    sweeper = LocalRetention(sessions(client), settings, interval_s=0.05, first_after_s=0)
    try:
        deadline = time.monotonic() + 10
        while (work.exists() or records.exists()) and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        sweeper.stop()
    assert not work.exists() and not records.exists()
