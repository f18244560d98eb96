"""Workspaces (ClearML, PAI): invitations pending until accepted or cancelled, an invitation for an address without
an account joining when the account is created, personal workspaces, leaving, removal revoking the credentials scoped
to the workspace, member roles and PAI's resource user roles (who may submit to each bound quota)."""

from __future__ import annotations

import pytest
from access_helpers import key_headers, new_credential
from inventory_helpers import register_node

from conftest import login

API = "/api/v1"
PASSWORD = "Str0ng-password!"
WS = f"{API}/clusters/local/workspaces"


def user(client, headers, name: str) -> dict[str, str]:
    r = client.post(f"{API}/users", headers=headers,
                    json={"email": f"{name}@example.com", "username": name, "password": PASSWORD})
    assert r.status_code == 201, r.text
    assert client.put(f"{API}/clusters/local/users/{name}", headers=headers, json={"role": "user"}).status_code == 200
    return login(client, name, PASSWORD)


def submit(client, headers, quota: str):
    return client.post(f"{API}/jobs", headers=headers, json={"quota": quota, "command": ["train"], "gpu": 1})


@pytest.fixture
def team(client, admin_headers):
    """bob owns workspace `team`, bound to quota Team."""
    register_node(client, admin_headers, "gpu-01", "A100", 8)
    r = client.post(f"{API}/clusters/local/quotas", headers=admin_headers,
                    json={"name": "Team", "resources": [{"resource": "gpu", "guarantee": 4}]})
    assert r.status_code == 201, r.text
    people = {name: user(client, admin_headers, name) for name in ("bob", "carol", "dave")}
    assert client.post(WS, headers=people["bob"], json={"name": "team"}).status_code == 201
    assert client.put(f"{API}/quotas/Team/bindings/workspaces/team", headers=admin_headers).status_code == 204
    return people


def invite(client, headers, email: str, role: str = "member"):
    return client.post(f"{WS}/team/invitations", headers=headers, json={"email": email, "role": role})


def roles(client, headers) -> dict[str, str]:
    return {m["name"]: m["role"] for m in client.get(f"{WS}/team", headers=headers).json()["members"]}


def test_an_invitation_is_pending_with_its_date_until_accepted_and_can_be_cancelled(client, admin_headers, team):
    bob, carol, dave = team["bob"], team["carol"], team["dave"]
    r = invite(client, bob, "Carol@Example.com")
    assert r.status_code == 201, r.text
    sent = r.json()
    assert sent["link"].endswith(f"?token={sent['token']}") and sent["role"] == "member"
    pending = client.get(f"{WS}/team/invitations", headers=bob).json()
    assert [(p["email"], p["invited_at"]) for p in pending] == [("Carol@example.com", sent["invited_at"])]
    # The invitee sees it (the console's notice reads the same list) and is not a member yet.
    mine = client.get(f"{API}/workspace-invitations", headers=carol).json()
    assert [(i["workspace"], i["cluster"], i["role"]) for i in mine] == [("team", "local", "member")]
    assert submit(client, carol, "Team").status_code == 403
    r = client.post(f"{API}/workspace-invitations/{sent['id']}/accept", headers=carol)
    assert r.status_code == 200, r.text
    assert roles(client, bob)["carol"] == "member"
    assert client.get(f"{WS}/team/invitations", headers=bob).json() == []
    assert submit(client, carol, "Team").status_code == 201

    # Cancelled: the token no longer works, and the invitee's list is empty.
    r = invite(client, bob, "dave@example.com", "viewer")
    assert client.delete(f"{WS}/team/invitations/{r.json()['id']}", headers=bob).status_code == 204
    assert client.get(f"{API}/workspace-invitations", headers=dave).json() == []
    refused = client.post(f"{API}/workspace-invitations/accept", headers=dave, json={"token": r.json()["token"]})
    # An unknown token is a reference to nothing (404, naming the field), not a malformed request.
    assert refused.status_code == 404 and refused.json()["errors"][0]["field"] == "token"
    # Someone else's invitation cannot be accepted by id; the token can be by whoever holds it.
    r = invite(client, bob, "dave@example.com", "viewer")
    assert client.post(f"{API}/workspace-invitations/{r.json()['id']}/accept", headers=carol).status_code == 404
    r = client.post(f"{API}/workspace-invitations/accept", headers=dave, json={"token": r.json()["token"]})
    assert r.status_code == 200 and roles(client, bob)["dave"] == "viewer"

    # Bad input names the field; a plain member cannot invite.
    r = invite(client, bob, "not-an-address")
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "email"
    r = invite(client, bob, "x@example.com", "boss")
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "role"
    r = invite(client, bob, "carol@example.com")
    assert r.status_code == 409 and r.json()["errors"][0]["field"] == "email"
    assert invite(client, carol, "x@example.com").status_code == 403

    actions = [e["action"] for e in client.get(f"{API}/audit", params={"target": "local/team"},
                                               headers=admin_headers).json()["items"]]
    assert {"workspace.invite", "workspace.invitation_accept", "workspace.invitation_cancel"} <= set(actions)


def test_an_invitation_for_an_address_without_an_account_joins_when_the_account_is_created(client, admin_headers,
                                                                                           team):
    assert invite(client, team["bob"], "erin@example.com", "admin").status_code == 201
    erin = user(client, admin_headers, "erin")
    assert roles(client, team["bob"])["erin"] == "admin"
    mine = client.get(f"{API}/workspaces", headers=erin).json()
    # The personal workspace comes first; it was created with the account.
    assert [(w["name"], w["personal"], w["my_role"]) for w in mine] == [("personal-erin", True, "owner"),
                                                                         ("team", False, "admin")]


def test_leaving_revokes_credentials_scoped_to_the_workspace_and_keeps_jobs(client, admin_headers, team):
    bob, carol = team["bob"], team["carol"]
    client.put(f"{WS}/team/members/users/carol", headers=bob)
    assert client.post(f"{API}/clusters/local/quotas", headers=admin_headers, json={"name": "Open"}).status_code == 201
    assert client.put(f"{API}/quotas/Open/bindings/groups/users", headers=admin_headers).status_code == 204
    r = client.post(f"{WS}/team/credentials", headers=carol, json={"label": "team ci"})
    assert r.status_code == 201, r.text
    scoped = key_headers(r.json())
    anywhere = key_headers(new_credential(client, carol))
    # A scoped credential acts in its workspace only: not through carol's other grants (Open, bound to everyone).
    job = submit(client, scoped, "Team")
    assert job.status_code == 201, job.text
    assert submit(client, scoped, "Open").status_code == 403
    assert submit(client, anywhere, "Open").status_code == 201

    r = client.post(f"{WS}/team/leave", headers=carol)
    assert r.status_code == 200 and r.json()["revoked_credentials"] == [scoped["Authorization"].split()[1]
                                                                          .split(":")[0]]
    assert client.get(f"{API}/auth/whoami", headers=scoped).status_code == 401
    assert submit(client, anywhere, "Team").status_code == 403  # no access to the workspace's quota any more
    assert submit(client, anywhere, "Open").status_code == 201  # an unscoped credential keeps working
    assert client.get(f"{API}/jobs/{job.json()['id']}", headers=admin_headers).status_code == 200  # jobs stay
    assert "carol" not in roles(client, bob)
    r = client.post(f"{WS}/team/leave", headers=carol)
    assert r.status_code == 403 and "not a member" in r.json()["detail"]
    events = client.get(f"{API}/audit", params={"action": "workspace.leave"}, headers=admin_headers).json()["items"]
    assert events[0]["changes"]["before"]["member"] == "user:carol"


def test_removal_revokes_scoped_credentials_and_personal_workspaces_and_last_owners_stay(client, admin_headers,
                                                                                         team):
    bob, dave = team["bob"], team["dave"]
    client.put(f"{WS}/team/members/users/dave", headers=bob)
    scoped = key_headers(client.post(f"{WS}/team/credentials", headers=dave, json={}).json())
    assert client.get(f"{API}/auth/whoami", headers=scoped).status_code == 200
    assert client.delete(f"{WS}/team/members/users/dave", headers=bob).status_code == 204
    assert client.get(f"{API}/auth/whoami", headers=scoped).status_code == 401

    r = client.post(f"{WS}/team/leave", headers=bob)
    assert r.status_code == 409 and r.json()["errors"][0]["field"] == "role"  # the last owner
    r = client.post(f"{WS}/personal-bob/leave", headers=bob)
    assert r.status_code == 403 and "personal workspace" in r.json()["detail"]
    r = client.delete(f"{WS}/personal-bob/members/users/bob", headers=admin_headers)
    assert r.status_code == 409 and "personal workspace" in r.json()["detail"]


def test_roles_decide_who_manages_and_submits_and_resource_user_roles_narrow_a_quota(client, admin_headers, team):
    bob, carol, dave = team["bob"], team["carol"], team["dave"]
    client.put(f"{WS}/team/members/users/carol", headers=bob, json={"role": "admin"})
    client.put(f"{WS}/team/members/users/dave", headers=bob, json={"role": "viewer"})
    assert submit(client, dave, "Team").status_code == 403  # viewers read only
    # An admin of the workspace manages members below owner, not owners.
    assert client.patch(f"{WS}/team/members/users/dave", headers=carol, json={"role": "member"}).status_code == 204
    assert submit(client, dave, "Team").status_code == 201
    r = client.patch(f"{WS}/team/members/users/dave", headers=carol, json={"role": "owner"})
    assert r.status_code == 403
    r = client.patch(f"{WS}/team/members/users/bob", headers=carol, json={"role": "member"})
    assert r.status_code == 403
    r = client.patch(f"{WS}/team/members/users/dave", headers=bob, json={"role": "chief"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "role"
    r = client.patch(f"{WS}/team/members/users/bob", headers=bob, json={"role": "member"})
    assert r.status_code == 409  # the last owner

    # PAI resource user roles: only admins, and dave by name, may submit to Team.
    r = client.put(f"{WS}/team/submit-rules/Team", headers=bob, json={"roles": ["admin"], "users": ["dave"]})
    assert r.status_code == 200 and r.json() == {"quota": "Team", "roles": ["admin"], "users": ["dave"]}
    assert submit(client, carol, "Team").status_code == 201
    assert submit(client, dave, "Team").status_code == 201
    client.patch(f"{WS}/team/members/users/carol", headers=bob, json={"role": "member"})
    assert submit(client, carol, "Team").status_code == 403
    r = client.put(f"{WS}/team/submit-rules/Nope", headers=bob, json={"roles": ["admin"]})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "quota"
    r = client.put(f"{WS}/team/submit-rules/Team", headers=bob, json={"roles": ["boss"]})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "roles"
    assert client.put(f"{WS}/team/submit-rules/Team", headers=bob, json={}).status_code == 200
    assert client.get(f"{WS}/team/submit-rules", headers=dave).json() == [{"quota": "Team", "roles": None,
                                                                             "users": []}]
    assert submit(client, carol, "Team").status_code == 201
