"""The console's user pages: the resource policy in the create and edit forms (the same service as the API), the
password rules listed under the field in the server's words, groups as links, the user's jobs and allowance on
their page."""

from __future__ import annotations

import re

import pytest
from inventory_helpers import quota, register_node

from allotment.db import transaction
from allotment.web.password_rules import rules
from allotment.workloads.models import Job

ADMIN_PASSWORD = "Adm1n-password!"
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
API = "/api/v1"


@pytest.fixture
def console(client, admin_headers):
    policy = {"name": "student", "gpu": 2, "cpu": "8", "memory": "32Gi"}
    assert client.post(f"{API}/resource-policies", headers=admin_headers, json=policy).status_code == 201
    token = TOKEN.search(client.get("/login").text).group(1)
    r = client.post("/login", data={"username": "admin", "password": ADMIN_PASSWORD, "csrf_token": token,
                                    "next": "/ui/"}, follow_redirects=False)
    assert r.status_code == 303, r.text
    return client, TOKEN.search(client.get("/ui/users/new").text).group(1)


def test_a_user_is_created_and_edited_with_a_resource_policy(console, admin_headers):
    client, token = console
    page = client.get("/ui/users/new").text
    assert '<option value="student">' in page and '<option value="default" selected>' in page
    form = {"csrf_token": token, "email": "dana@example.com", "username": "dana", "password": "Dana-pass-1!",
            "password_confirm": "Dana-pass-1!", "resource_policy": "student"}
    r = client.post("/ui/users", data=form, follow_redirects=False)
    assert r.status_code == 303, r.text
    assert client.get(f"{API}/users/dana/allowance", headers=admin_headers).json()["policy"] == "student"
    user_id = r.headers["location"].rsplit("/", 1)[1]
    page = client.get(f"/ui/users/{user_id}/edit").text
    assert '<option value="student" selected>' in page
    r = client.post(f"/ui/users/{user_id}/edit", data={"csrf_token": token, "username": "dana",
                                                       "resource_policy": "default"}, follow_redirects=False)
    assert r.status_code == 303, r.text
    assert client.get(f"{API}/users/dana/allowance", headers=admin_headers).json()["policy"] == "default"
    r = client.post(f"/ui/users/{user_id}/edit", data={"csrf_token": token, "username": "dana",
                                                       "resource_policy": "bad/name"})
    assert r.status_code == 422 and 'data-testid="errors-resource_policy"' in r.text  # under its field
    assert 'value="bad/name" selected' in r.text  # what was chosen stays


def test_password_rules_are_listed_in_the_servers_words(console):
    client, token = console
    page = client.get("/ui/users/new").text
    for rule in rules():
        assert f'data-testid="rule-{rule.key}"' in page
    assert "Must contain at least one digit (0-9)" in page and "password_rules.js" in page
    form = {"csrf_token": token, "email": "eve@example.com", "username": "eve", "password": "abcdefgh",
            "password_confirm": "abcdefgh"}
    r = client.post("/ui/users", data=form)
    assert r.status_code == 422 and 'data-testid="errors-password"' in r.text
    assert "at least one digit (0-9)" in r.text  # the same words under the field from the server


def test_the_user_page_links_groups_and_shows_jobs_and_allowance(console, admin_headers):
    client, token = console
    register_node(client, admin_headers, "a-1", "A100", 4)
    quota(client, admin_headers, "research")
    r = client.post("/ui/users", data={"csrf_token": token, "email": "finn@example.com", "username": "finn",
                                       "password": "Finn-pass-1!", "password_confirm": "Finn-pass-1!",
                                       "resource_policy": "student"}, follow_redirects=False)
    user_id = r.headers["location"].rsplit("/", 1)[1]
    assert client.post(f"{API}/groups", headers=admin_headers, json={"name": "vision"}).status_code == 201
    assert client.put(f"{API}/groups/vision/members/finn", headers=admin_headers).status_code == 204
    r = client.post(f"{API}/jobs", headers=admin_headers, json={"quota": "research", "command": ["x"], "gpu": "1"})
    assert r.status_code == 201, r.text
    job_id = r.json()["id"]
    with transaction(client.app.state.allot.sessions) as s:  # finn's job, holding a GPU
        job = s.get(Job, job_id)
        job.owner_id, job.state = int(user_id), "running"
    page = client.get(f"/ui/users/{user_id}").text
    assert '<a href="/ui/groups/vision" class="badge">vision</a>' in page
    assert '<a href="/ui/resource-policies/student">student</a>' in page
    assert re.search(r'data-testid="allowance-gpu">.*?1 of 2 in use · <strong>1 left', page, re.DOTALL)
    assert 'href="/ui/jobs?owner=finn"' in page and "1 in all" in page
    assert f'href="/ui/jobs/{job_id}">#{job_id}</a>' in page
