"""PAI workspaces: a team space of a cluster whose members (users, groups) may submit to the quotas bound to it.
"Create a workspace named workspace-b for Team B and bind it to Quota1.1"; removing a member revokes at once."""

from __future__ import annotations

import pytest
from inventory_helpers import register_node

from conftest import login

API = "/api/v1"
PASSWORD = "Str0ng-password!"


def user(client, headers, name: str) -> dict[str, str]:
    r = client.post(f"{API}/users", headers=headers,
                    json={"email": f"{name}@example.com", "username": name, "password": PASSWORD})
    assert r.status_code == 201, r.text
    # Submitting takes a role on the quota's cluster besides the workspace's binding.
    assert client.put(f"{API}/clusters/local/users/{name}", headers=headers, json={"role": "user"}).status_code == 200
    return login(client, name, PASSWORD)


def submit(client, headers, quota: str):
    return client.post(f"{API}/jobs", headers=headers, json={"quota": quota, "command": ["train"], "gpu": 1})


@pytest.fixture
def pai(client, admin_headers):
    register_node(client, admin_headers, "gpu-01", "A100", 8)
    for name, parent in (("Quota1", None), ("Quota1.1", "Quota1")):
        r = client.post(f"{API}/clusters/local/quotas", headers=admin_headers,
                        json={"name": name, "parent": parent, "resources": [{"resource": "gpu", "guarantee": 4}]})
        assert r.status_code == 201, r.text
    return {name: user(client, admin_headers, name) for name in ("bob", "carol", "dave")}


def test_members_of_a_workspace_bound_to_a_quota_may_submit_and_removal_revokes(client, admin_headers, pai):
    r = client.post(f"{API}/clusters/local/workspaces", headers=admin_headers,
                    json={"name": "workspace-b", "description": "Team B", "users": ["bob"]})
    assert r.status_code == 201, r.text
    assert [(m["kind"], m["name"], m["role"]) for m in r.json()["members"]] == [("user", "bob", "member")]
    assert r.json()["quotas"] == []
    r = client.put(f"{API}/quotas/Quota1.1/bindings/workspaces/workspace-b", headers=admin_headers)
    assert r.status_code == 204, r.text

    assert submit(client, pai["bob"], "Quota1.1").status_code == 201
    refused = submit(client, pai["carol"], "Quota1.1")
    assert refused.status_code == 403
    assert "not bound to you, your groups or your workspaces" in refused.json()["detail"]
    # Binding is to Quota1.1 only: its parent is not open to the workspace.
    assert submit(client, pai["bob"], "Quota1").status_code == 403

    quota = client.get(f"{API}/quotas/Quota1.1", headers=pai["bob"]).json()
    assert {"kind": "workspace", "name": "workspace-b"} in [{k: b[k] for k in ("kind", "name")}
                                                            for b in quota["bindings"]]
    assert quota["can_submit"] is True
    mine = client.get(f"{API}/quotas", params={"submittable": "true"}, headers=pai["bob"]).json()
    assert [q["name"] for q in mine["items"]] == ["Quota1.1"]

    # A group member of the workspace: carol through team-b.
    assert client.post(f"{API}/groups", headers=admin_headers, json={"name": "team-b"}).status_code == 201
    assert client.put(f"{API}/groups/team-b/members/carol", headers=admin_headers).status_code == 204
    r = client.put(f"{API}/clusters/local/workspaces/workspace-b/members/groups/team-b", headers=admin_headers)
    assert r.status_code == 204
    assert submit(client, pai["carol"], "Quota1.1").status_code == 201
    assert submit(client, pai["dave"], "Quota1.1").status_code == 403

    # Removing the member revokes at once (the next submission).
    r = client.delete(f"{API}/clusters/local/workspaces/workspace-b/members/users/bob", headers=admin_headers)
    assert r.status_code == 204
    assert submit(client, pai["bob"], "Quota1.1").status_code == 403
    r = client.delete(f"{API}/clusters/local/workspaces/workspace-b/members/users/bob", headers=admin_headers)
    assert r.status_code == 404 and "user bob is not a member of workspace workspace-b" in r.json()["detail"]

    # Unbinding the workspace revokes it for the group member too.
    r = client.delete(f"{API}/quotas/Quota1.1/bindings/workspaces/workspace-b", headers=admin_headers)
    assert r.status_code == 204
    assert submit(client, pai["carol"], "Quota1.1").status_code == 403

    actions = [e["action"] for e in client.get(f"{API}/audit", params={"target": "workspace-b"},
                                               headers=admin_headers).json()["items"]]
    assert {"workspace.create", "workspace.member_add", "workspace.member_remove"} <= set(actions)
    binds = client.get(f"{API}/audit", params={"action": "quota.bind", "target": "Quota1.1"},
                       headers=admin_headers).json()["items"]
    assert binds[0]["changes"] == {"after": {"workspace": "workspace-b"}}


def test_workspace_management_is_for_its_owners_and_cluster_admins_and_names_are_checked(client, admin_headers,
                                                                                          pai):
    # A user of the cluster creates a workspace and owns it; another user may read it but not change it.
    r = client.post(f"{API}/clusters/local/workspaces", headers=pai["bob"], json={"name": "mine"})
    assert r.status_code == 201, r.text
    assert [(m["name"], m["role"]) for m in r.json()["members"]] == [("bob", "owner")]
    assert r.json()["my_role"] == "owner"
    assert client.get(f"{API}/clusters/local/workspaces/mine", headers=pai["dave"]).status_code == 200
    r = client.patch(f"{API}/clusters/local/workspaces/mine", headers=pai["dave"], json={"description": "x"})
    assert r.status_code == 403 and "owners and admins" in r.json()["detail"]
    assert client.delete(f"{API}/clusters/local/workspaces/mine", headers=pai["bob"]).status_code == 204
    assert client.post(f"{API}/clusters/local/workspaces", headers=admin_headers,
                       json={"name": "workspace-a"}).status_code == 201
    r = client.post(f"{API}/clusters/local/workspaces", headers=admin_headers, json={"name": "workspace-a"})
    assert r.status_code == 409 and r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["errors"] == [{"field": "name", "message": "workspace workspace-a exists"}]
    r = client.post(f"{API}/clusters/local/workspaces", headers=admin_headers, json={"name": "x", "users": ["nobody"]})
    assert r.status_code == 404
    assert client.get(f"{API}/clusters/local/workspaces/x", headers=admin_headers).status_code == 404
    r = client.put(f"{API}/quotas/Quota1/bindings/workspaces/nope", headers=admin_headers)
    assert r.status_code == 404 and "no workspace 'nope'" in r.json()["detail"]

    r = client.patch(f"{API}/clusters/local/workspaces/workspace-a", headers=admin_headers,
                     json={"name": "workspace-team-a", "description": "Team A"})
    assert r.status_code == 200 and (r.json()["name"], r.json()["description"]) == ("workspace-team-a", "Team A")
    assert client.put(f"{API}/quotas/Quota1/bindings/workspaces/workspace-team-a",
                      headers=admin_headers).status_code == 204
    listed = client.get(f"{API}/clusters/local/workspaces", headers=admin_headers).json()
    assert [(w["name"], w["quotas"]) for w in listed["items"] if not w["personal"]] == [
        ("workspace-team-a", ["Quota1"])]

    # Deleting the workspace removes its bindings.
    assert client.delete(f"{API}/clusters/local/workspaces/workspace-team-a",
                         headers=admin_headers).status_code == 204
    quota = client.get(f"{API}/quotas/Quota1", headers=admin_headers).json()
    assert [b for b in quota["bindings"] if b["kind"] == "workspace"] == []
    entry = client.get(f"{API}/audit", params={"action": "workspace.delete"}, headers=admin_headers).json()["items"][0]
    assert entry["changes"]["before"]["quotas"] == ["Quota1"]


def test_a_workspace_of_another_cluster_cannot_be_bound(client, admin_headers, pai):
    assert client.post(f"{API}/clusters", headers=admin_headers,
                       json={"name": "other", "backend": "simulated"}).status_code == 201
    assert client.post(f"{API}/clusters/other/workspaces", headers=admin_headers,
                       json={"name": "far", "users": ["bob"]}).status_code == 201
    r = client.put(f"{API}/quotas/Quota1/bindings/workspaces/far", headers=admin_headers)
    assert r.status_code == 404 and "no workspace 'far' in this cluster" in r.json()["detail"]
