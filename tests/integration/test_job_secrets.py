"""What a job receives and how its secrets are shown (issue 17): a storage target's credentials in its environment,
its owner's effective configuration as a file named by ALLOT_CONFIG_FILE (the owner's also when a service account
submits on the owner's behalf), and the hide-list masking a hidden variable's value in the job's details, its logs
(read and followed), the audit log and the console."""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from pathlib import Path

import pytest
from inventory_helpers import API, PASSWORD, make_user, sessions
from sched_helpers import Harness
from sqlalchemy import select

from allotment.db import transaction
from allotment.scheduler.engines import launch_of
from allotment.scheduler.load import JOB_COLUMNS, JobInfo
from allotment.workloads.models import Job

SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"
MASK = "********"
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def lab(client, admin_headers):
    """Quota `lab` on cluster local bound to alice, an S3 target `datasets`, and alice's enabled vault."""
    r = client.post(f"{API}/clusters/local/quotas", headers=admin_headers, json={
        "name": "lab", "resources": [{"resource": "cpu", "guarantee": 1, "limit": 1}]})
    assert r.status_code == 201, r.text
    alice = make_user(client, "alice", cluster_role="user")
    assert client.put(f"{API}/quotas/lab/bindings/users/alice", headers=admin_headers).status_code == 204
    r = client.post(f"{API}/storage/targets", headers=admin_headers, json={
        "name": "datasets", "kind": "s3", "endpoint": "http://127.0.0.1:9", "bucket": "datasets",
        "region": "eu-west-1", "access_key": "AKIAVISIBLE", "secret_key": SECRET})
    assert r.status_code == 201, r.text
    r = client.post(f"{API}/vaults", headers=alice, json={
        "name": "alice-sdk", "format": "yaml", "content": "sdk:\n  region: eu\n", "enabled": True})
    assert r.status_code == 201, r.text
    return alice


def _submit(client, headers, **extra):
    body = {"quota": "lab", "cpu": "0.1", "command": ["sh", "-c", "true"], **extra}
    return client.post(f"{API}/jobs", headers=headers, json=body)


def _run(client, admin_headers, job_id):
    # A job running as root's server runs under an account of its own, which reaches its working directory (and the
    # configuration file there) by its absolute path: the test's temporary directories must be traversable.
    settings = client.app.state.allot.settings
    for directory in (settings.data_dir.parent, *settings.data_dir.parent.parents):
        if directory == Path(tempfile.gettempdir()):
            break
        if os.geteuid() == 0 and directory.stat().st_uid == 0:
            os.chmod(directory, directory.stat().st_mode | 0o111)
    h = Harness(client, admin_headers)
    deadline = time.time() + 30
    while time.time() < deadline and h.job(job_id)["state"] not in ("succeeded", "failed"):
        h.scheduler.run_cycle()
        time.sleep(0.05)
    return h.job(job_id)


def test_a_hidden_variable_shows_masked_in_details_logs_audit_and_console(client, admin_headers, lab):
    script = 'echo "key=$AWS_SECRET_ACCESS_KEY id=$AWS_ACCESS_KEY_ID epochs=$EPOCHS"; cat "$ALLOT_CONFIG_FILE"'
    r = _submit(client, lab, command=["sh", "-c", script], targets=["datasets"], env={"EPOCHS": "3"})
    assert r.status_code == 201, r.text
    job_id = r.json()["id"]
    assert SECRET not in r.text
    ran = _run(client, admin_headers, job_id)
    assert ran["state"] == "succeeded", client.get(f"{API}/jobs/{job_id}/logs", headers=lab).json()["text"]

    details = client.get(f"{API}/jobs/{job_id}", headers=lab)
    environment = details.json()["environment"]
    assert environment["AWS_SECRET_ACCESS_KEY"] == MASK and environment["AWS_ACCESS_KEY_ID"] == "AKIAVISIBLE"
    assert environment["EPOCHS"] == "3" and environment["AWS_ENDPOINT_URL"] == "http://127.0.0.1:9"
    assert SECRET not in details.text

    log = client.get(f"{API}/jobs/{job_id}/logs", headers=lab).json()["text"]
    assert f"key={MASK} id=AKIAVISIBLE epochs=3" in log and SECRET not in log
    assert json.loads(log[log.index("{"):]) == {"sdk": {"region": "eu"}}  # the owner's effective configuration
    followed = client.get(f"{API}/jobs/{job_id}/logs", headers=lab, params={"follow": "true"})
    assert f"key={MASK}" in followed.text and SECRET not in followed.text

    audit = client.get(f"{API}/audit", headers=admin_headers, params={"action": "job.submit"}).text
    assert MASK in audit and "AKIAVISIBLE" in audit and SECRET not in audit

    token = TOKEN.search(client.get("/login").text).group(1)
    assert client.post("/login", data={"username": "alice", "password": PASSWORD, "csrf_token": token,
                                       "next": "/ui/"}, follow_redirects=False).status_code == 303
    page = client.get(f"/ui/jobs/{job_id}")
    assert page.status_code == 200 and SECRET not in page.text
    assert f"AWS_SECRET_ACCESS_KEY={MASK}" in page.text and f"key={MASK}" in page.text
    audit_page = client.get("/ui/audit")
    assert SECRET not in audit_page.text


def test_a_targets_secret_is_sealed_at_rest_and_opened_only_for_the_engine(client, admin_headers, lab):
    r = _submit(client, lab, targets=["datasets"], env={"EPOCHS": "3"})
    assert r.status_code == 201, r.text
    job_id = r.json()["id"]
    with transaction(sessions(client)) as s:
        row = s.execute(select(*JOB_COLUMNS).where(Job.id == job_id)).one()
        stored = s.get(Job, job_id)
        assert SECRET not in json.dumps(stored.env) and SECRET not in (stored.sealed_env or "")
        assert "AWS_SECRET_ACCESS_KEY" not in stored.env and stored.env["AWS_ACCESS_KEY_ID"] == "AKIAVISIBLE"
    launch = launch_of(JobInfo(row), [])
    assert SECRET not in repr(launch)  # a launch kept for a retry holds it sealed
    from allotment.scheduler.engines import opened

    handed = opened(launch, client.app.state.allot.secret_key)
    assert handed.env["AWS_SECRET_ACCESS_KEY"] == SECRET and handed.env["EPOCHS"] == "3" and handed.sealed_env is None


def test_a_users_own_hide_list_name_is_masked_too(client, admin_headers, lab):
    assert client.put(f"{API}/hide-list/users/me", headers=lab, json={"names": ["WANDB_API_KEY"]}).status_code == 200
    r = _submit(client, lab, command=["sh", "-c", "echo wandb=$WANDB_API_KEY"], env={"WANDB_API_KEY": "wb-123456"})
    job_id = r.json()["id"]
    assert _run(client, admin_headers, job_id)["state"] == "succeeded"
    assert client.get(f"{API}/jobs/{job_id}", headers=lab).json()["environment"] == {"WANDB_API_KEY": MASK}
    assert client.get(f"{API}/jobs/{job_id}/logs", headers=lab).json()["text"] == f"wandb={MASK}\n"


def test_target_variables_and_declared_ones_must_not_clash(client, lab):
    r = _submit(client, lab, targets=["datasets"], env={"AWS_ACCESS_KEY_ID": "mine"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "env"
    assert "AWS_ACCESS_KEY_ID" in r.json()["errors"][0]["message"]
    r = _submit(client, lab, targets=["nowhere"])
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "targets.0"


def test_a_job_through_an_impersonating_service_account_gets_the_owners_configuration(client, admin_headers, lab):
    r = client.post(f"{API}/service-accounts", json={"name": "runner", "allow_impersonation": True},
                    headers=admin_headers)
    assert r.status_code == 201, r.text
    created = r.json()["credential"] if "credential" in r.json() else r.json()
    bot = {"Authorization": f"Bearer {created['access_key']}:{created['secret_key']}"}
    assert client.post(f"{API}/vaults", headers=admin_headers, json={
        "name": "runner-own", "service_account": "runner", "format": "json", "content": '{"sdk": {"region": "x"}}',
        "enabled": True}).status_code == 201
    r = _submit(client, {**bot, "X-Allot-On-Behalf-Of": "alice"})
    assert r.status_code == 201, r.text
    with transaction(sessions(client)) as s:
        row = s.execute(select(*JOB_COLUMNS).where(Job.id == r.json()["id"])).one()
    launch = launch_of(JobInfo(row), [])
    assert launch.owner == "alice" and json.loads(launch.config_file) == {"sdk": {"region": "eu"}}
