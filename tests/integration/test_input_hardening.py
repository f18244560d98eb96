"""Hostile input through the API: huge integers, non-ASCII digits, lone surrogates, oversized bodies and fields, unsafe
names and loose types each get a 4xx naming the field (or 413 for a body), never a 500 (issue 8, items 4-6, 11, 12)."""

from __future__ import annotations

import json

import pytest
from inventory_helpers import API, make_user, quota, register_node

from allotment.core import limits
from allotment.db import transaction
from allotment.identity.models import ClusterRoleGrant, User
from allotment.inventory.models import Cluster

BIG = 2**63  # one past SQLite's and PostgreSQL's BIGINT


def fields(response) -> set[str]:
    return {e["field"] for e in response.json().get("errors", [])}


def raw_post(client, path: str, headers: dict, text: str, method: str = "POST"):
    return client.request(method, path, headers={**headers, "Content-Type": "application/json"}, content=text)


@pytest.fixture
def team(client, admin_headers):
    register_node(client, admin_headers, "gpu-01", "H100", 2)
    quota(client, admin_headers, "research", gpu="2")
    alice = make_user(client, "alice", groups=("team-a",), cluster_role="user")
    assert client.put(f"{API}/quotas/research/bindings/groups/team-a", headers=admin_headers).status_code == 204
    return alice


# --- item 4: every integer is bounded ----------------------------------------------------------------------------

def test_integers_past_64_bits_are_refused_naming_the_field(client, admin_headers):
    r = client.post(f"{API}/jobs/{BIG}/cancel", headers=admin_headers)
    assert r.status_code == 422 and fields(r) == {"job_id"}, r.text[:400]
    assert client.get(f"{API}/jobs/{BIG}", headers=admin_headers).status_code == 422
    r = client.get(f"{API}/credentials", headers=admin_headers, params={"offset": BIG})
    assert r.status_code == 422 and fields(r) == {"offset"}, r.text[:400]
    r = client.post(f"{API}/priority-classes", headers=admin_headers, json={"name": "huge", "value": BIG})
    assert r.status_code == 422 and fields(r) == {"value"}, r.text[:400]
    quota(client, admin_headers, "q")
    r = client.patch(f"{API}/quotas/q", headers=admin_headers, json={"min_runtime_s": BIG})
    assert r.status_code == 422 and fields(r) == {"min_runtime_s"}, r.text[:400]
    r = client.post(f"{API}/resource-policies", headers=admin_headers, json={"name": "p", "concurrent_jobs": BIG})
    assert r.status_code == 422 and fields(r) == {"concurrent_jobs"}, r.text[:400]
    r = client.post(f"{API}/clusters/local/nodes", headers=admin_headers,
                    json={"name": "n", "devices": [{"index": BIG, "model": "H100"}]})
    assert r.status_code == 422 and fields(r) == {"devices.0.index"}, r.text[:400]
    assert client.get(f"/ui/jobs/{BIG}", headers=admin_headers).status_code < 500
    assert client.get("/ui/jobs", headers=admin_headers, params={"page": BIG}).status_code < 500


def test_the_openapi_states_the_integer_bounds(client):
    spec = client.get("/api/openapi.json").json()
    cancel = spec["paths"]["/api/v1/jobs/{job_id}/cancel"]["post"]["parameters"][0]["schema"]
    assert cancel["maximum"] == limits.MAX_ID and cancel["minimum"] == 1
    value = spec["components"]["schemas"]["PriorityClassIn"]["properties"]["value"]
    assert value["maximum"] == limits.MAX_PRIORITY and value["minimum"] == -limits.MAX_PRIORITY
    offset = next(p for p in spec["paths"]["/api/v1/credentials"]["get"]["parameters"] if p["name"] == "offset")
    assert offset["schema"]["maximum"] == limits.MAX_OFFSET


# --- item 5: only ASCII digits are ids ---------------------------------------------------------------------------

def test_superscript_digits_are_names_not_ids(client, admin_headers, team):
    assert client.get(f"{API}/users/%C2%B9", headers=admin_headers).status_code == 404
    assert client.get(f"{API}/users/99999999999999999999999", headers=admin_headers).status_code == 404
    r = client.post(f"{API}/jobs", headers=team, json={"quota": "²", "gpu": 1, "command": ["x"]})
    assert r.status_code == 404 and fields(r) == {"quota"}, r.text[:400]  # a name no quota has
    r = client.post(f"{API}/clusters/²/quotas/scale", headers=team, json={"changes": []})
    assert r.status_code in (403, 404), r.text[:400]
    for path in ("/groups/²", "/quotas/²", "/clusters/²", "/service-accounts/²", "/clusters/local/pools/²",
                 "/clusters/local/profiles/³", "/clusters/local/workspaces/¹"):
        assert client.get(f"{API}{path}", headers=admin_headers).status_code == 404, path


# --- item 6: lone surrogates -------------------------------------------------------------------------------------

def test_an_unpaired_surrogate_is_refused_naming_the_field(client, admin_headers, team):
    body = '{"email": "s@example.com", "username": "a\\ud800", "password": "Passw0rd!x"}'
    r = raw_post(client, f"{API}/users", admin_headers, body)
    assert r.status_code == 422 and fields(r) == {"username"}, r.text[:400]
    r = raw_post(client, f"{API}/jobs", team, '{"quota": "research", "gpu": 1, "command": ["x"], '
                                              '"labels": {"k": "\\udc00"}}')
    assert r.status_code == 422 and fields(r) == {"labels.k"}, r.text[:400]
    r = raw_post(client, f"{API}/jobs", team, '{"quota": "research", "gpu": 1, "command": ["x\\ud800"]}')
    assert r.status_code == 422 and fields(r) == {"command.0"}, r.text[:400]
    # a proper pair is fine where free text is allowed
    r = raw_post(client, f"{API}/jobs", team, '{"quota": "research", "gpu": 1, "command": ["echo", "\\ud83d\\ude00"]}')
    assert r.status_code == 201, r.text[:400]


# --- item 11: size limits ----------------------------------------------------------------------------------------

def test_a_body_over_the_limit_is_refused_before_it_is_read(client, admin_headers):
    big = b'{"jobs": [' + b" " * (limits.MAX_BODY_BYTES + 1) + b"]}"
    r = client.post(f"{API}/jobs/batch", headers={**admin_headers, "Content-Type": "application/json"}, content=big)
    assert r.status_code == 413, r.text[:400]
    assert r.headers["content-type"] == "application/problem+json"
    assert str(limits.MAX_BODY_BYTES) in r.json()["detail"]

    def chunks():  # no Content-Length: the server counts what arrives
        for _ in range(limits.MAX_BODY_BYTES // 65536 + 2):
            yield b" " * 65536

    r = client.post(f"{API}/jobs/batch", headers={**admin_headers, "Content-Type": "application/json"},
                    content=chunks())
    assert r.status_code == 413, r.text[:400]


def test_command_labels_and_batches_have_limits(client, admin_headers, team):
    job = {"quota": "research", "gpu": 1}
    r = client.post(f"{API}/jobs", headers=team, json={**job, "command": ["x" * (limits.MAX_ARG_CHARS + 1)]})
    assert r.status_code == 422 and fields(r) == {"command.0"}, r.text[:400]
    r = client.post(f"{API}/jobs", headers=team, json={**job, "command": ["x"] * (limits.MAX_COMMAND_ARGS + 1)})
    assert r.status_code == 422 and fields(r) == {"command"}, r.text[:400]
    many = ["y" * limits.MAX_ARG_CHARS] * (limits.MAX_COMMAND_CHARS // limits.MAX_ARG_CHARS + 1)
    r = client.post(f"{API}/jobs", headers=team, json={**job, "command": many})
    assert r.status_code == 422 and fields(r) == {"command"}, r.text[:400]
    assert str(limits.MAX_COMMAND_CHARS) in r.json()["detail"]
    r = client.post(f"{API}/jobs", headers=team, json={**job, "command": ["echo", "a\x00b"]})
    assert r.status_code == 422 and fields(r) == {"command.1"}, r.text[:400]
    labels = {f"k{i}": "v" for i in range(limits.MAX_LABELS + 1)}
    r = client.post(f"{API}/jobs", headers=team, json={**job, "command": ["x"], "labels": labels})
    assert r.status_code == 422 and fields(r) == {"labels"}, r.text[:400]
    r = client.post(f"{API}/jobs", headers=team, json={**job, "command": ["x"],
                                                       "labels": {"k": "v" * (limits.MAX_LABEL_VALUE + 1)}})
    assert r.status_code == 422 and fields(r) == {"labels.k"}, r.text[:400]
    r = client.post(f"{API}/jobs", headers=team, json={**job, "command": ["x"],
                                                       "labels": {"k" * (limits.MAX_LABEL_KEY + 1): "v"}})
    assert r.status_code == 422 and "labels" in next(iter(fields(r))), r.text[:400]
    r = client.post(f"{API}/jobs/batch", headers=team,
                    json={"jobs": [{**job, "command": ["x"]}] * (limits.MAX_BATCH_JOBS + 1)})
    assert r.status_code == 422 and fields(r) == {"jobs"}, r.text[:400]
    ok = client.post(f"{API}/jobs", headers=team, json={**job, "command": ["x"], "name": "bert",
                                                        "labels": {"runtime_ms": 3000, "team": "nlp", "x": True}})
    assert ok.status_code == 201, ok.text[:400]


def test_csv_imports_have_a_row_limit(client, admin_headers):
    rows = "".join(f"u{i}@example.com,u{i},Passw0rd!x\n" for i in range(limits.MAX_IMPORT_ROWS + 1))
    r = client.post(f"{API}/users/import", headers={**admin_headers, "Content-Type": "text/csv"},
                    content="email,username,password\n" + rows)
    assert r.status_code == 422, r.text[:400]
    assert str(limits.MAX_IMPORT_ROWS) in r.json()["detail"]


def test_the_openapi_documents_the_field_limits(client):
    schemas = client.get("/api/openapi.json").json()["components"]["schemas"]
    job = schemas["JobIn"]["properties"]
    command = next(s for s in job["command"]["anyOf"] if s.get("type") == "array")
    assert command["maxItems"] == limits.MAX_COMMAND_ARGS and command["items"]["maxLength"] == limits.MAX_ARG_CHARS
    labels = next(s for s in job["labels"]["anyOf"] if s.get("type") == "object")
    assert labels["maxProperties"] == limits.MAX_LABELS
    assert schemas["JobBatchIn"]["properties"]["jobs"]["maxItems"] == limits.MAX_BATCH_JOBS


# --- item 12: names ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("username", ["a\x00b", "a/b", "a?b", "..", "../../ui/users/1/deactivate?x=", "ab\u202ecd",
                                      "a\u200bb", "r\u043e\u043et", "ｂｏｂ", "-lead", "", "x" * 65])
def test_usernames_outside_the_pattern_are_refused(client, admin_headers, username):
    r = client.post(f"{API}/users", headers=admin_headers,
                    json={"email": "n@example.com", "username": username, "password": "Passw0rd!x"})
    assert r.status_code == 422 and fields(r) == {"username"}, r.text[:400]


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/groups", {"name": "a/b"}, "name"),
    ("/clusters", {"name": "a?b"}, "name"),
    ("/clusters/local/pools", {"name": "a\u202eb"}, "name"),
    ("/clusters/local/quotas", {"name": "a\x00"}, "name"),
    ("/clusters/local/profiles", {"name": "..", "gpu": 1}, "name"),
    ("/clusters/local/workspaces", {"name": "w\u200b"}, "name"),
    ("/resource-policies", {"name": "p#1"}, "name"),
    ("/priority-classes", {"name": "c%2F", "value": 1}, "name"),
    ("/service-accounts", {"name": "bot/1"}, "name"),
    ("/credentials", {"label": "lap\x00top"}, "label"),  # a label is free text, but never with controls
    ("/groups", {"name": "ok", "description": "bad\u202etext"}, "description"),
])
def test_object_names_outside_the_pattern_are_refused(client, admin_headers, path, body, field):
    r = client.post(f"{API}{path}", headers=admin_headers, json=body)
    assert r.status_code == 422 and fields(r) == {field}, r.text[:400]


def test_job_names_are_names(client, team):
    r = client.post(f"{API}/jobs", headers=team, json={"quota": "research", "gpu": 1, "command": ["x"],
                                                       "name": "../x"})
    assert r.status_code == 422 and fields(r) == {"name"}, r.text[:400]


def test_confusables_of_existing_names_are_refused(client, admin_headers):
    for username in ("adrnin", "ADMlN", "Admin"):
        r = client.post(f"{API}/users", headers=admin_headers,
                        json={"email": f"{username}x@example.com", "username": username, "password": "Passw0rd!x"})
        assert r.status_code == 409 and fields(r) == {"username"}, r.text[:400]
    assert client.post(f"{API}/groups", headers=admin_headers, json={"name": "vision"}).status_code == 201
    r = client.post(f"{API}/groups", headers=admin_headers, json={"name": "visi0n"})
    assert r.status_code == 409 and fields(r) == {"name"}, r.text[:400]
    r = client.post(f"{API}/service-accounts", headers=admin_headers, json={"name": "adm1n"})
    assert r.status_code == 409 and fields(r) == {"name"}, r.text[:400]
    r = client.post(f"{API}/clusters", headers=admin_headers, json={"name": "IocaI"})
    assert r.status_code == 409 and fields(r) == {"name"}, r.text[:400]
    ok = client.post(f"{API}/users", headers=admin_headers,
                     json={"email": "amy@example.com", "username": "amy.lee_2-b", "password": "Passw0rd!x"})
    assert ok.status_code == 201, ok.text[:400]


def test_console_urls_escape_names(client, admin_headers):
    """A name from before the pattern (or an engine) cannot turn a console button into another action."""
    with transaction(client.app.state.allot.sessions) as s:
        bad = "../../../../ui/users/1/deactivate?x="
        user = User(username=bad, username_key=bad, email="old@example.com", email_key="old@example.com",
                    password_hash="x")
        s.add(user)
        s.flush()
        local = s.query(Cluster).filter_by(name="local").one()
        s.add(ClusterRoleGrant(cluster_id=local.id, user_id=user.id, role="user"))
        user_id = user.id
    page = client.get("/ui/clusters/local/members", headers=admin_headers)
    assert page.status_code == 200
    assert "/members/../" not in page.text and "deactivate?x=/remove" not in page.text
    assert f"/members/{user_id}/remove" in page.text or "%2F..%2F" in page.text


# --- strict types and the schema's name and password rules -------------------------------------------------------

def test_booleans_are_not_numbers_and_infinity_is_refused(client, admin_headers, team):
    r = client.post(f"{API}/jobs", headers=team, json={"quota": "research", "gpu": True, "command": ["x"]})
    assert r.status_code == 422 and fields(r) == {"gpu"}, r.text[:400]
    r = raw_post(client, f"{API}/quotas/research", admin_headers, '{"weight": Infinity}', method="PATCH")
    assert r.status_code == 422 and fields(r) == {"weight"}, r.text[:400]
    r = raw_post(client, f"{API}/quotas/research", admin_headers, '{"gpu_hours_budget": NaN}', method="PATCH")
    assert r.status_code == 422 and fields(r) == {"gpu_hours_budget"}, r.text[:400]
    r = client.post(f"{API}/priority-classes", headers=admin_headers, json={"name": "t", "value": True})
    assert r.status_code == 422 and fields(r) == {"value"}, r.text[:400]
    r = client.patch(f"{API}/quotas/research", headers=admin_headers, json={"min_runtime_s": 1.5})
    assert r.status_code == 422 and fields(r) == {"min_runtime_s"}, r.text[:400]
    ok = client.post(f"{API}/jobs", headers=team, json={"quota": "research", "gpu": 0.5, "cpu": "500m",
                                                        "memory": "16Gi", "command": "python train.py"})
    assert ok.status_code == 201 and (ok.json()["cpu"], ok.json()["memory"]) == ("0.5", "16Gi"), ok.text[:400]
    assert client.patch(f"{API}/quotas/research", headers=admin_headers, json={"weight": 2}).status_code == 200


def test_the_schema_carries_the_name_and_password_rules(client):
    schemas = client.get("/api/openapi.json").json()["components"]["schemas"]
    user = schemas["UserCreate"]["properties"]
    assert user["username"]["pattern"] and user["username"]["maxLength"] == limits.MAX_NAME
    assert user["password"]["minLength"] == 8 and user["password"]["maxLength"] == 256
    for schema in ("GroupCreate", "QuotaCreate", "ClusterCreate", "PoolCreate", "ProfileCreate", "WorkspaceCreate",
                   "ServiceAccountCreate", "PriorityClassIn"):
        for variant in schemas[schema].get("oneOf", [schemas[schema]]):  # ClusterCreate: one schema per backend
            name = variant["properties"]["name"]
            assert name.get("pattern") and name["maxLength"] <= limits.MAX_NAME, schema
    assert json.dumps(schemas["JobIn"]["properties"]["gpu"]).count('"boolean"') == 0
