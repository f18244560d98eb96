"""`allot workspaces ...` against the app in-process: create, invite, invitations, accept, members, set-role,
remove-member, leave, cancel-invitation and submit-rules, each through the real API."""

from __future__ import annotations

import json

import pytest
from cli_inprocess import cli_runner

from conftest import login

API = "/api/v1"
PASSWORD = "Str0ng-password!"


@pytest.fixture
def allot_as(client, admin_headers, monkeypatch, tmp_path):
    """allot_as(headers)(*args) runs `allot ARGS...` as whoever the headers sign in."""
    return cli_runner(client, monkeypatch, tmp_path)


def person(client, admin_headers, name: str) -> dict[str, str]:
    r = client.post(f"{API}/users", headers=admin_headers,
                    json={"email": f"{name}@example.com", "username": name, "password": PASSWORD})
    assert r.status_code == 201, r.text
    client.put(f"{API}/clusters/local/users/{name}", headers=admin_headers, json={"role": "user"})
    return login(client, name, PASSWORD)


def test_the_workspace_workflow_from_the_cli(client, admin_headers, allot_as):
    bob = allot_as(person(client, admin_headers, "bob"))
    carol = allot_as(person(client, admin_headers, "carol"))
    code, out = bob("workspaces", "create", "vision", "--description", "Team vision")
    assert code == 0 and "workspace vision created; you own it" in out
    code, out = bob("workspaces", "invite", "vision", "carol@example.com", "--role", "viewer")
    assert code == 0 and "invited carol@example.com to workspace vision as viewer" in out
    code, out = bob("workspaces", "invite", "vision", "zed@example.com")
    zed_invitation = out.split("(invitation ")[1].split(")")[0]
    code, out = bob("workspaces", "members", "vision")
    assert code == 0 and "zed@example.com" in out and "invited" in out and "owner" in out
    code, out = carol("workspaces", "invitations", "--json")
    mine = json.loads(out)
    assert [(i["workspace"], i["role"]) for i in mine] == [("vision", "viewer")]
    code, out = carol("workspaces", "accept", str(mine[0]["id"]))
    assert code == 0 and "you joined workspace vision (cluster local) as viewer" in out
    code, out = bob("workspaces", "set-role", "vision", "carol", "member")
    assert code == 0 and "carol is now member of workspace vision" in out
    code, out = carol("workspaces", "list", "--json")
    assert {w["name"]: w["my_role"] for w in json.loads(out)} == {"personal-carol": "owner", "vision": "member"}
    code, out = bob("workspaces", "set-role", "vision", "carol", "chief")
    assert code != 0 and "role" in out
    code, out = bob("workspaces", "cancel-invitation", "vision", zed_invitation)
    assert code == 0 and f"invitation {zed_invitation} to workspace vision cancelled" in out
    code, out = bob("workspaces", "invitations", "vision", "--json")
    assert json.loads(out) == []
    code, out = carol("workspaces", "create-credential", "vision", "--label", "ci")
    assert code == 0 and "scoped to workspace local/vision" in out
    key = out.split("access key: ")[1].split()[0]
    code, out = carol("workspaces", "leave", "vision")
    assert code == 0 and f"you left workspace vision; revoked credential(s) {key}" in out
    code, out = bob("workspaces", "add-member", "vision", "carol")
    assert code == 0
    code, out = bob("workspaces", "remove-member", "vision", "user:carol")
    assert code == 0 and "user:carol removed from workspace vision" in out
    code, out = bob("workspaces", "remove-member", "vision", "robot:x")
    assert code != 0 and "MEMBER" in out
    code, out = bob("workspaces", "rename", "vision", "vision-2")
    assert code == 0
    code, out = bob("workspaces", "submit-rules", "vision-2")
    assert code == 0 and "no quota is bound to vision-2" in out
