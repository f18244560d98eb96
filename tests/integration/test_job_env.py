"""A job's declared environment (issue 9): validated at submission, stored with the job, shown with the values of
names on the owner's hide-list masked (issue 17), and handed to the engine's launch."""

from __future__ import annotations

import pytest
from inventory_helpers import API, make_user, quota, register_node

from allotment.core import limits
from allotment.scheduler.engines import launch_of
from allotment.scheduler.load import JOB_COLUMNS, JobInfo


@pytest.fixture
def alice(client, admin_headers):
    register_node(client, admin_headers, "gpu-01", "H100", 2)
    quota(client, admin_headers, "research", gpu="2")
    headers = make_user(client, "alice", groups=("team-a",), cluster_role="user")
    assert client.put(f"{API}/quotas/research/bindings/groups/team-a", headers=admin_headers).status_code == 204
    return headers


def _submit(client, headers, env):
    return client.post(f"{API}/jobs", headers=headers, json={"quota": "research", "gpu": 1, "command": ["env"],
                                                             "env": env})


def test_declared_variables_are_stored_shown_masked_and_reach_the_launch(client, alice, settings):
    assert client.put(f"{API}/hide-list/users/me", headers=alice, json={"names": ["WANDB_API_KEY"]}).status_code == 200
    r = _submit(client, alice, {"WANDB_API_KEY": "s3cret-value", "EPOCHS": "3", "EMPTY": "", "EQ": "a=b"})
    assert r.status_code == 201, r.text
    job = r.json()
    assert job["env"] == ["EMPTY", "EPOCHS", "EQ", "WANDB_API_KEY"]
    assert "s3cret-value" not in r.text and "s3cret-value" not in client.get(f"{API}/jobs/{job['id']}",
                                                                             headers=alice).text
    from sqlalchemy import create_engine, select

    from allotment.workloads.models import Job

    with create_engine(settings.effective_database_url).connect() as conn:
        row = conn.execute(select(*JOB_COLUMNS).where(Job.id == job["id"])).one()
    launch = launch_of(JobInfo(row), [])
    assert launch.env == {"WANDB_API_KEY": "s3cret-value", "EPOCHS": "3", "EMPTY": "", "EQ": "a=b"}
    assert launch.owner == "alice"


@pytest.mark.parametrize("env", [
    {"1ABC": "x"}, {"A-B": "x"}, {"": "x"}, {"A B": "x"}, {"É": "x"},
    {"ALLOT_SECRET_KEY": "x"}, {"LD_PRELOAD": "/tmp/x.so"}, {"CUDA_VISIBLE_DEVICES": "0,1"}, {"GCONV_PATH": "/t"},
    {"TMPDIR": "/t"}, {"GLIBC_TUNABLES": "x"}, {"A": "with\x00nul"}, {"A": 3}, {"A": "x" * (limits.MAX_ENV_VALUE + 1)},
    {f"V{i}": "x" for i in range(limits.MAX_ENV_VARS + 1)},
    {f"V{i}": "x" * 30000 for i in range(3)},
])
def test_bad_names_values_and_sizes_are_refused_naming_the_field(client, alice, env):
    r = _submit(client, alice, env)
    assert r.status_code == 422, r.text
    (error,) = [e for e in r.json()["errors"] if e["field"].startswith("env")]
    assert "x" * 100 not in error["message"] and "/tmp/x.so" not in error["message"]  # values are never quoted


def test_reserved_names_are_named_in_the_error(client, alice):
    r = _submit(client, alice, {"LD_PRELOAD": "/tmp/x.so"})
    assert "LD_PRELOAD is reserved" in r.text


def test_a_batch_reports_env_problems_per_job(client, alice):
    r = client.post(f"{API}/jobs/batch", headers=alice, json={"jobs": [
        {"quota": "research", "gpu": 1, "command": ["x"], "env": {"OK": "1"}},
        {"quota": "research", "gpu": 1, "command": ["x"], "env": {"ALLOT_JOB_ID": "7"}}]})
    assert r.status_code == 422 and "ALLOT_JOB_ID is reserved" in r.text
