"""`allot access-rules ...` against the app in process: create, list with its filters, show, edit, delete, and a
workspace's default, each through the real API."""

from __future__ import annotations

import json

import pytest
from cli_inprocess import cli_runner

from conftest import login

API = "/api/v1"
PASSWORD = "Str0ng-password!"


@pytest.fixture
def allot_as(client, admin_headers, monkeypatch, tmp_path):
    return cli_runner(client, monkeypatch, tmp_path)


def person(client, admin_headers, name: str) -> dict[str, str]:
    r = client.post(f"{API}/users", headers=admin_headers,
                    json={"email": f"{name}@example.com", "username": name, "password": PASSWORD})
    assert r.status_code == 201, r.text
    client.put(f"{API}/clusters/local/users/{name}", headers=admin_headers, json={"role": "user"})
    return login(client, name, PASSWORD)


def test_the_access_rules_workflow_from_the_cli(client, admin_headers, allot_as):
    bob_headers = person(client, admin_headers, "bob")
    person(client, admin_headers, "carol")
    bob, carol = allot_as(bob_headers), allot_as(login(client, "carol", PASSWORD))
    assert bob("workspaces", "create", "team")[0] == 0
    assert bob("workspaces", "add-member", "team", "carol")[0] == 0
    r = client.post(f"{API}/projects", headers=bob_headers, json={"workspace": "team", "name": "vision"})
    assert r.status_code == 201, r.text
    assert client.post(f"{API}/groups", headers=admin_headers, json={"name": "cv"}).status_code == 201

    code, out = bob("access-rules", "create", "project", "modify", "--resource", "vision", "-w", "team",
                    "--user", "carol", "--group", "cv")
    assert code == 0 and "grants read & modify on project vision to user:carol, group:cv" in out, out
    rule_id = out.split("access rule ")[1].split()[0]
    code, out = bob("access-rules", "create", "model", "read", "-w", "team", "--user", "bob")
    assert code == 0 and "every model of the workspace" in out, out
    code, out = bob("access-rules", "create", "project", "sometimes", "-w", "team", "--user", "bob")
    assert code != 0 and "level" in out

    code, out = carol("access-rules", "list", "-w", "team")
    assert code == 0 and "project vision" in out and "every model of the workspace" in out, out
    code, out = carol("access-rules", "list", "--type", "model", "--json")
    assert [r["resource_type"] for r in json.loads(out)["items"]] == ["model"]
    code, out = bob("access-rules", "list", "--grantee", "group:cv", "--json")
    assert [r["id"] for r in json.loads(out)["items"]] == [int(rule_id)]
    code, out = bob("access-rules", "list", "-w", "team", "--type", "project", "--resource", "vision", "--json")
    assert [r["id"] for r in json.loads(out)["items"]] == [int(rule_id)]

    code, out = carol("access-rules", "edit", rule_id, "--level", "read")
    assert code != 0 and "owners and admins" in out  # carol is a member, not an admin of the workspace
    code, out = bob("access-rules", "edit", rule_id, "--level", "read", "--group", "cv")
    assert code == 0 and f"access rule {rule_id} now grants read-only on project vision to group:cv" in out, out
    code, out = bob("access-rules", "show", rule_id, "--json")
    assert json.loads(out)["grantees"] == [{"kind": "group", "name": "cv"}]
    code, out = bob("access-rules", "delete", rule_id)
    assert code == 0 and f"access rule {rule_id} deleted" in out

    code, out = bob("access-rules", "default", "team", "read")
    assert code == 0 and "grant read" in out
    code, out = carol("access-rules", "default", "team")
    assert code == 0 and "grant read" in out
