"""Deleting a group (DKube): refused while it has members or grants anything, listing them, unless forced; then its
members lose only what was granted through it (ClearML), and keep what they were granted directly."""

from __future__ import annotations

import pytest
from inventory_helpers import API, make_user, quota, register_node

LOCAL = f"{API}/clusters/local"


def job(quota_name: str) -> dict:
    return {"quota": quota_name, "gpu": 1, "command": ["train"]}


@pytest.fixture
def team(client, admin_headers):
    """Group team (alice, bob): role user on local, bound to quota Shared, member of workspace ws (bound to WsQuota).
    alice also holds her own role on local and her own binding to Mine."""
    register_node(client, admin_headers, "gpu-01", "H100", 4)
    for name in ("Shared", "Mine", "WsQuota"):
        quota(client, admin_headers, name, gpu="1")
    users = {"alice": make_user(client, "alice", groups=("team",), cluster_role="user"),
             "bob": make_user(client, "bob", groups=("team",))}
    assert client.put(f"{LOCAL}/groups/team", json={"role": "user"}, headers=admin_headers).status_code == 200
    r = client.post(f"{LOCAL}/workspaces", headers=admin_headers, json={"name": "ws", "groups": ["team"]})
    assert r.status_code == 201, r.text
    for path in ("Shared/bindings/groups/team", "Mine/bindings/users/alice", "WsQuota/bindings/workspaces/ws"):
        assert client.put(f"{API}/quotas/{path}", headers=admin_headers).status_code == 204
    return users


def test_refused_listing_members_and_grants(client, admin_headers, team):
    r = client.delete(f"{API}/groups/team", headers=admin_headers)
    assert r.status_code == 409, r.text
    assert r.json()["detail"] == (
        "group team still has members (alice, bob); cluster roles (local (user)); quota bindings (Shared (cluster "
        "local)); workspace memberships (ws (cluster local)): remove them first, or delete it with force (its members "
        "keep what was granted to them directly)")
    assert r.json()["errors"][0]["field"] == "force"
    assert client.get(f"{API}/groups/team", headers=admin_headers).status_code == 200
    for name in ("Shared", "WsQuota"):  # nothing was taken away
        assert client.post(f"{API}/jobs", headers=team["bob"], json=job(name)).status_code == 201


def test_an_empty_group_that_grants_nothing_is_deleted_without_force(client, admin_headers):
    assert client.post(f"{API}/groups", headers=admin_headers, json={"name": "empty"}).status_code == 201
    assert client.delete(f"{API}/groups/empty", headers=admin_headers).status_code == 204


def test_forced_members_lose_only_what_the_group_granted(client, admin_headers, team):
    waiting = client.post(f"{API}/jobs", headers=team["bob"], json=job("Shared")).json()["id"]
    assert client.delete(f"{API}/groups/team?force=true", headers=admin_headers).status_code == 204
    assert client.get(f"{API}/groups/team", headers=admin_headers).status_code == 404

    # alice keeps her own role and binding, loses the group's binding and workspace.
    assert client.post(f"{API}/jobs", headers=team["alice"], json=job("Mine")).status_code == 201
    for name in ("Shared", "WsQuota"):
        r = client.post(f"{API}/jobs", headers=team["alice"], json=job(name))
        assert r.status_code == 403 and "is not bound to you" in r.json()["detail"], r.text
    # bob had access to local only through the group: it is gone, and his waiting job with it.
    r = client.post(f"{API}/jobs", headers=team["bob"], json=job("Mine"))
    assert r.status_code == 403 and "no access to cluster local" in r.json()["detail"]
    shown = client.get(f"{API}/jobs/{waiting}", headers=admin_headers).json()
    assert shown["state"] == "cancelled" and "bob no longer has access to cluster local" in shown["reason"]

    bound = {(b["kind"], b["name"]) for b in client.get(f"{API}/quotas/Mine/bindings", headers=admin_headers).json()}
    assert bound == {("user", "alice")}
    assert client.get(f"{API}/quotas/Shared/bindings", headers=admin_headers).json() == []
    members = client.get(f"{LOCAL}/workspaces/ws", headers=admin_headers).json()
    assert "team" not in str(members)
    event = client.get(f"{API}/audit?action=group.delete", headers=admin_headers).json()["items"][0]
    assert event["changes"]["forced"] is True and event["changes"]["jobs_cancelled"] == [waiting]
    assert event["changes"]["before"]["quotas"] == ["Shared (cluster local)"]
