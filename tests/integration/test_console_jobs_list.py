"""The console's jobs list: filters by cluster and pool (unknown names shown under their filter), wait and run
times, cancel from a row and bulk cancel through the API's service (each job's outcome reported, audited), and the
table fragment the page polls for."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from urllib.parse import unquote

import pytest
from cli_inprocess import cli_runner
from inventory_helpers import PASSWORD, make_user, quota, register_node
from sqlalchemy import select

from allotment.db import transaction, utcnow
from allotment.identity.models import User
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
    ids = []
    for pool in ("a100", "h100", "h100"):
        r = client.post("/api/v1/jobs", headers=admin_headers,
                        json={"quota": "research", "command": ["sleep", "1"], "gpu": "1", "pool": pool})
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    token = TOKEN.search(client.get("/login").text).group(1)
    r = client.post("/login", data={"username": "admin", "password": ADMIN_PASSWORD, "csrf_token": token,
                                    "next": "/ui/"}, follow_redirects=False)
    assert r.status_code == 303, r.text
    page = client.get("/ui/jobs")
    return client, TOKEN.search(page.text).group(1), ids


def notice(response) -> str:
    """The one-line message the redirect sets for the next page."""
    for key, value in response.headers.multi_items():
        if key == "set-cookie" and value.startswith("allot_notice="):
            return unquote(value.split("=", 1)[1].split(";")[0]).strip('"')
    return ""


def test_filters_by_cluster_and_pool(console, admin_headers):
    client, _, (a, h1, h2) = console
    page = client.get("/ui/jobs?pool=h100").text
    assert f'job-row-{h1}"' in page and f'job-row-{h2}"' in page and f'job-row-{a}"' not in page
    page = client.get("/ui/jobs?cluster=local&pool=a100").text
    assert f'job-row-{a}"' in page and f'job-row-{h1}"' not in page
    r = client.get("/ui/jobs?pool=b200")
    assert r.status_code == 422 and 'data-testid="errors-pool"' in r.text and "no pool" in r.text
    r = client.get("/ui/jobs?cluster=elsewhere")
    assert r.status_code == 422 and 'data-testid="errors-cluster"' in r.text
    api = client.get("/api/v1/jobs?pool=h100", headers=admin_headers).json()
    assert sorted(j["id"] for j in api["items"]) == sorted([h1, h2])


def test_wait_and_run_times(console):
    client, _, (a, h1, _h2) = console
    now = utcnow()
    with transaction(client.app.state.allot.sessions) as s:
        job = s.get(Job, a)
        job.submitted_at = now - timedelta(hours=2)
        job.admitted_at = job.started_at = now - timedelta(hours=1, minutes=55)
        job.state = "running"
        s.get(Job, h1).submitted_at = now - timedelta(minutes=12, seconds=10)
    page = client.get("/ui/jobs").text
    assert f'data-testid="job-waited-{a}">5 min<' in page
    assert f'data-testid="job-ran-{a}">1 h 55 min<' in page
    assert f'data-testid="job-waited-{h1}">12 min<' in page and f'data-testid="job-ran-{h1}">—<' in page


def test_cancel_one_and_many_reports_each(console, admin_headers):
    client, token, (a, h1, h2) = console
    r = client.post("/ui/jobs/cancel", data={"csrf_token": token, "only": str(a), "job_ids": [str(h1)]},
                    follow_redirects=False)
    assert r.status_code == 303 and f"Job {a} cancelled." in notice(r)
    states = {j["id"]: j["state"] for j in client.get("/api/v1/jobs", headers=admin_headers).json()["items"]}
    assert states[a] == "cancelled" and states[h1] == "queued"
    r = client.post("/ui/jobs/cancel", data={"csrf_token": token, "job_ids": [str(a), str(h1), str(h2), "999999"],
                                             "back": "/ui/jobs?pool=h100"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/ui/jobs?pool=h100"
    text = notice(r)
    assert f"Job {a}: job {a} has already ended (cancelled)." in text
    assert f"Job {h1} cancelled." in text and f"Job {h2} cancelled." in text and "Job 999999:" in text
    audit = client.get("/api/v1/audit?action=job.cancel", headers=admin_headers)
    assert audit.status_code == 200 and audit.json()["total"] == 3  # one record per job cancelled, none for refusals
    r = client.post("/ui/jobs/cancel", data={"csrf_token": token, "back": "https://evil.example/"},
                    follow_redirects=False)
    assert r.headers["location"] == "/ui/" and "No job was selected" in notice(r)
    r = client.post("/ui/jobs/cancel", data={"job_ids": [str(a)]})
    assert r.status_code == 403  # no form token


def test_another_users_job_is_not_cancelled_from_the_list(console):
    client, _, (a, _h1, _h2) = console
    make_user(client, "bob")
    token = TOKEN.search(client.get("/login").text).group(1)
    r = client.post("/login", data={"username": "bob", "password": PASSWORD, "csrf_token": token, "next": "/ui/"},
                    follow_redirects=False)
    assert r.status_code == 303, r.text
    token = TOKEN.search(client.get("/ui/jobs").text).group(1)
    r = client.post("/ui/jobs/cancel", data={"csrf_token": token, "job_ids": [str(a)]}, follow_redirects=False)
    assert notice(r).startswith(f"Job {a}: ") and "cancelled." not in notice(r)
    with transaction(client.app.state.allot.sessions) as s:
        assert s.get(Job, a).state == "queued"


def test_the_poll_gets_the_table_alone(console):
    client, _, (a, _h1, _h2) = console
    page = client.get("/ui/jobs?pool=a100").text
    assert 'hx-get="/ui/jobs?pool=a100&amp;page=1"' in page and "document.visibilityState" in page
    fragment = client.get("/ui/jobs?pool=a100&page=1", headers={"HX-Request": "true", "HX-Target": "jobs-rows"})
    assert fragment.status_code == 200 and f'job-row-{a}"' in fragment.text and "<html" not in fragment.text


def test_the_cli_filters_by_cluster_and_pool(console, admin_headers, monkeypatch, tmp_path):
    client, _, (_a, h1, h2) = console
    allot = cli_runner(client, monkeypatch, tmp_path)(admin_headers)
    code, out = allot("jobs", "list", "--cluster", "local", "--pool", "h100", "--json")
    assert code == 0, out
    assert sorted(j["id"] for j in json.loads(out)["items"]) == sorted([h1, h2])
    code, out = allot("jobs", "list", "--pool", "b200")
    assert code != 0 and "no pool 'b200'" in out


def test_the_submit_form_stops_at_the_policy_and_shows_what_is_left(console, admin_headers):
    client, _, ids = console
    page = client.get("/ui/jobs/new").text  # the admin's default policy caps nothing: no slider, no limit
    assert 'data-testid="remaining-gpu">no cap' in page and "gpu-slider" not in page
    policy = {"name": "student", "gpu": 4, "cpu": "16", "memory": "64Gi"}
    assert client.post("/api/v1/resource-policies", headers=admin_headers, json=policy).status_code == 201
    make_user(client, "carol", policy="student", cluster_role="user")
    with transaction(client.app.state.allot.sessions) as s:  # one running job of carol's holds 1 GPU, 4 CPU, 16 GiB
        carol = s.scalar(select(User).where(User.username == "carol"))
        job = s.get(Job, ids[0])
        job.owner_id, job.state, job.cpu_milli, job.memory_bytes = carol.id, "running", 4000, 16 * 1024**3
    token = TOKEN.search(client.get("/login").text).group(1)
    r = client.post("/login", data={"username": "carol", "password": PASSWORD, "csrf_token": token, "next": "/ui/"},
                    follow_redirects=False)
    assert r.status_code == 303, r.text
    page = client.get("/ui/jobs/new").text
    assert "<strong>student</strong>" in page
    assert re.search(r'data-testid="allowance-gpu">.*?1 of 4 in use · <strong>3 left', page, re.DOTALL)
    assert re.search(r'data-testid="allowance-memory">.*?16 GiB of 64 GiB in use · <strong>48 GiB left', page, re.DOTALL)
    assert re.search(r'id="gpu-slider" min="0" max="3.0"', page)
    assert re.search(r'id="cpu-slider" min="0" max="12.0"', page)
    assert re.search(r'id="memory-slider" min="0" max="48.0"', page)
    api = client.get("/api/v1/users/carol/allowance", headers=admin_headers).json()
    assert api["caps"]["gpu"]["remaining"] == 3  # the page shows the API's figures
