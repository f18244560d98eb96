"""The console's job submission form and job page with the job's shape: nodes and GPUs per node, GPU models, shares
of 0.01 GPU; every refusal shown on its field (the service's messages), the chosen nodes on the job page."""

from __future__ import annotations

import re

import pytest
from inventory_helpers import quota, register_node

from allotment.db import transaction
from allotment.workloads.models import Job

ADMIN_PASSWORD = "Adm1n-password!"
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def console(client, admin_headers):
    register_node(client, admin_headers, "a-1", "A100", 4)
    register_node(client, admin_headers, "h-1", "H100", 4)
    for pool, node in (("a100", "a-1"), ("h100", "h-1")):
        assert client.post("/api/v1/clusters/local/pools", headers=admin_headers,
                           json={"name": pool, "nodes": [node]}).status_code == 201
    quota(client, admin_headers, "research")
    token = TOKEN.search(client.get("/login").text).group(1)
    r = client.post("/login", data={"username": "admin", "password": ADMIN_PASSWORD, "csrf_token": token,
                                    "next": "/ui/"}, follow_redirects=False)
    assert r.status_code == 303, r.text
    page = client.get("/ui/jobs/new")
    assert page.status_code == 200 and 'data-testid="submit-job-form"' in page.text
    return client, TOKEN.search(page.text).group(1)


def test_a_job_with_a_shape_is_submitted_from_the_console(console):
    client, token = console
    r = client.post("/ui/jobs/new", data={"csrf_token": token, "quota": "research", "command": "python train.py -e 3",
                                          "nodes": "2", "gpus_per_node": "4", "cpu": "8", "memory": "64Gi"},
                    follow_redirects=False)
    assert r.status_code == 303, r.text
    job_id = int(r.headers["location"].rsplit("/", 1)[1])
    page = client.get(f"/ui/jobs/{job_id}").text
    assert "8 GPUs · 16 CPU · 128 GiB over 2 nodes (4 GPU each)" in page
    with transaction(client.app.state.allot.sessions) as s:
        job = s.get(Job, job_id)
        assert (job.nodes, job.gpu_milli, job.command) == (2, 8000, ["python", "train.py", "-e", "3"])
        job.state, job.placed_nodes = "running", ["a-1", "h-1"]
        job.devices = [{"device_id": 1, "node": "a-1", "index": 0, "milli": 1000}]
    page = client.get(f"/ui/jobs/{job_id}").text
    assert "on a-1, h-1" in page
    r = client.post("/ui/jobs/new", data={"csrf_token": token, "quota": "research", "command": "infer",
                                          "gpu": "0.47", "gpu_models": "a100,h100"}, follow_redirects=False)
    assert r.status_code == 303, r.text
    page = client.get(r.headers["location"]).text
    assert 'data-testid="job-gpu-models">A100, H100' in page


def test_refusals_are_shown_on_their_fields_and_the_input_kept(console):
    client, token = console
    r = client.post("/ui/jobs/new", data={"csrf_token": token, "quota": "research", "command": "x",
                                          "gpu": "0.475", "gpu_models": "b200", "nodes": "two"})
    assert r.status_code == 422
    assert 'data-testid="errors-nodes"' in r.text and "whole number" in r.text
    r = client.post("/ui/jobs/new", data={"csrf_token": token, "quota": "research", "command": "x",
                                          "gpu": "0.475", "gpu_models": "b200"})
    assert r.status_code == 422
    assert 'data-testid="errors-gpu"' in r.text and "steps of 0.01" in r.text
    assert 'data-testid="errors-gpu_models"' in r.text and "no pool of GPU model b200" in r.text
    assert 'value="b200"' in r.text  # what was typed stays in the form
    r = client.post("/ui/jobs/new", data={"quota": "research", "command": "x", "gpu": "1"})
    assert r.status_code == 403  # no CSRF token: refused like every console form


def test_a_clusters_smallest_gpu_share_is_set_on_its_console_form(console):
    client, _ = console
    token = TOKEN.search(client.get("/ui/clusters/new?backend=simulated").text).group(1)
    form = {"csrf_token": token, "name": "sim", "backend": "simulated"}
    r = client.post("/ui/clusters", data=form | {"min_gpu_share": "0.3"}, follow_redirects=False)
    assert r.status_code == 422 and 'data-testid="errors-min_gpu_share"' in r.text and "divides one GPU" in r.text
    r = client.post("/ui/clusters", data=form | {"min_gpu_share": "0.25"}, follow_redirects=False)
    assert r.status_code == 303, r.text
    assert 'value="0.25"' in client.get("/ui/clusters/sim/settings").text


def test_a_user_with_no_quota_sees_why_under_the_quota_field(client, admin_headers):
    """The service forbids a submission by someone who may submit to no quota; the form shows it under its field as
    every form error (422), not as a refusal of the page itself, which every signed-in user may use."""
    from inventory_helpers import PASSWORD, make_user

    make_user(client, "nora")
    token = TOKEN.search(client.get("/login").text).group(1)
    r = client.post("/login", data={"username": "nora", "password": PASSWORD, "csrf_token": token,
                                    "next": "/ui/"}, follow_redirects=False)
    assert r.status_code == 303, r.text
    token = TOKEN.search(client.get("/ui/jobs/new").text).group(1)
    r = client.post("/ui/jobs/new", data={"csrf_token": token, "command": "echo hi", "cpu": "1"})
    assert r.status_code == 422, r.text[:300]
    assert 'data-testid="errors-quota"' in r.text and "you may not submit to any quota" in r.text
