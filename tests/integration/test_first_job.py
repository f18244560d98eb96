"""DKube's single user out of the box: the first start creates a default quota over the default cluster's default
pool, bound to everyone with access to that cluster, and a job may name no quota when there is one to choose."""

from __future__ import annotations

import pytest
from inventory_helpers import API, make_user, quota

from conftest import make_settings


@pytest.fixture
def settings(tmp_path, backend):
    return make_settings(tmp_path, backend, bootstrap_default_quota=True)


def test_the_first_start_creates_a_default_quota_everyone_in_the_default_cluster_may_use(client, admin_headers):
    body = client.get(f"{API}/quotas/default", headers=admin_headers).json()
    assert body["cluster"] == "local" and body["pools"] == ["default"] and body["resources"] == []
    bindings = client.get(f"{API}/quotas/default/bindings", headers=admin_headers).json()
    assert [(b["kind"], b["name"]) for b in bindings] == [("group", "users")]


def test_the_first_admin_submits_without_naming_a_quota(client, admin_headers):
    r = client.post(f"{API}/jobs", headers=admin_headers, json={"cpu": 1, "command": ["echo", "hi"]})
    assert r.status_code == 201, r.text
    assert r.json()["quota"] == "default"


def test_a_member_of_the_default_cluster_submits_without_naming_a_quota(client, admin_headers):
    member = make_user(client, "dana", cluster_role="user")
    r = client.post(f"{API}/jobs", headers=member, json={"cpu": 1, "command": ["echo", "hi"]})
    assert r.status_code == 201, r.text
    assert r.json()["quota"] == "default"
    batch = client.post(f"{API}/jobs/batch", headers=member, json={"jobs": [{"cpu": 1, "command": ["x"]}]})
    assert batch.status_code == 201, batch.text


def test_without_access_to_any_quota_the_refusal_says_so(client, admin_headers):
    outsider = make_user(client, "olga")
    r = client.post(f"{API}/jobs", headers=outsider, json={"cpu": 1, "command": ["echo", "hi"]})
    # Not a malformed request but one the caller may not make anywhere: 403, as for a named quota they may not use.
    assert r.status_code == 403, r.text
    assert r.json()["errors"][0]["field"] == "quota"
    assert "you may not submit to any quota" in r.json()["errors"][0]["message"]
    batch = client.post(f"{API}/jobs/batch", headers=outsider, json={"jobs": [{"cpu": 1, "command": ["x"]}]})
    assert batch.status_code == 403 and batch.json()["errors"][0]["field"] == "jobs.0.quota", batch.text


def _other_cluster(client, admin_headers, username: str, quotas: list[str]) -> dict[str, str]:
    assert client.post(f"{API}/clusters", headers=admin_headers,
                       json={"name": "lab", "backend": "simulated"}).status_code == 201
    for name in quotas:
        quota(client, admin_headers, name, cluster="lab")
    headers = make_user(client, username)
    assert client.put(f"{API}/clusters/lab/users/{username}", headers=admin_headers,
                      json={"role": "user"}).status_code == 200
    for name in quotas:
        assert client.put(f"{API}/quotas/{name}/bindings/users/{username}", headers=admin_headers).status_code == 204
    return headers


def test_the_only_quota_a_user_may_submit_to_is_used(client, admin_headers):
    headers = _other_cluster(client, admin_headers, "lena", ["vision"])
    r = client.post(f"{API}/jobs", headers=headers, json={"cpu": 1, "command": ["x"]})
    assert r.status_code == 201, r.text
    assert r.json()["quota"] == "vision"


def test_an_ambiguous_choice_is_refused_listing_the_quotas(client, admin_headers):
    headers = _other_cluster(client, admin_headers, "omar", ["vision", "speech"])
    r = client.post(f"{API}/jobs", headers=headers, json={"cpu": 1, "command": ["x"]})
    assert r.status_code == 422
    assert r.json()["errors"] == [{"field": "quota", "message": "is required: you may submit to 2 quotas, choose one "
                                   "of speech (cluster lab), vision (cluster lab)"}]
    named = client.post(f"{API}/jobs", headers=headers, json={"quota": "speech", "cpu": 1, "command": ["x"]})
    assert named.status_code == 201


def test_an_operator_may_turn_the_default_quota_off(tmp_path):
    from fastapi.testclient import TestClient

    from allotment.api.app import create_app
    from conftest import ADMIN_PASSWORD, login

    with TestClient(create_app(make_settings(tmp_path, "sqlite", bootstrap_default_quota=False))) as client:
        headers = login(client, "admin", ADMIN_PASSWORD)
        assert client.get(f"{API}/quotas/default", headers=headers).status_code == 404
