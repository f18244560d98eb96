"""Workspaces: invitations expire after their stated lifetime (an expired one cannot be accepted, and is shown as
expired), and credentials scoped to a workspace are revoked when their owner loses access to it indirectly (they leave
the group that was the member, or the group is deleted)."""

from __future__ import annotations

from datetime import datetime, timedelta

from access_helpers import key_headers
from sqlalchemy import update

from allotment.db import utcnow
from allotment.workspaces.models import WorkspaceInvitation
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


def expire(client, invitation_id: int) -> None:
    """Moves the invitation's end into the past, as time passing would."""
    with client.app.state.allot.sessions() as session:
        session.execute(update(WorkspaceInvitation).where(WorkspaceInvitation.id == invitation_id)
                        .values(expires_at=utcnow() - timedelta(minutes=1)))
        session.commit()


def test_an_invitation_states_its_lifetime_and_cannot_be_accepted_once_expired(client, admin_headers):
    bob, carol = user(client, admin_headers, "bob"), user(client, admin_headers, "carol")
    assert client.post(WS, headers=bob, json={"name": "team"}).status_code == 201
    r = client.post(f"{WS}/team/invitations", headers=bob, json={"email": "carol@example.com"})
    assert r.status_code == 201, r.text
    sent = r.json()
    assert sent["lifetime_days"] == 7 and sent["status"] == "pending"
    invited, expires = (datetime.fromisoformat(sent[k]) for k in ("invited_at", "expires_at"))
    assert expires - invited == timedelta(days=7)
    short = client.post(f"{WS}/team/invitations", headers=bob,
                        json={"email": "dave@example.com", "lifetime_days": 1}).json()
    assert short["lifetime_days"] == 1
    for bad in (0, 91, "soon"):
        r = client.post(f"{WS}/team/invitations", headers=bob, json={"email": "eve@example.com", "lifetime_days": bad})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "lifetime_days", r.text

    expire(client, sent["id"])
    listed = {i["email"]: i["status"] for i in client.get(f"{WS}/team/invitations", headers=bob).json()}
    assert listed == {"carol@example.com": "expired", "dave@example.com": "pending"}
    assert [i["status"] for i in client.get(f"{API}/workspace-invitations", headers=carol).json()] == ["expired"]
    r = client.post(f"{API}/workspace-invitations/accept", headers=carol, json={"token": sent["token"]})
    assert r.status_code == 410 and r.json()["errors"][0]["field"] == "token" and "expired" in r.json()["detail"]
    r = client.post(f"{API}/workspace-invitations/{sent['id']}/accept", headers=carol)
    assert r.status_code == 410 and "expired" in r.json()["detail"]
    members = [m["name"] for m in client.get(f"{WS}/team", headers=bob).json()["members"]]
    assert "carol" not in members
    # A new invitation may be sent once the old one expired.
    assert client.post(f"{WS}/team/invitations", headers=bob, json={"email": "carol@example.com"}).status_code == 201


def test_an_expired_invitation_does_not_join_an_account_created_later(client, admin_headers):
    bob = user(client, admin_headers, "bob")
    assert client.post(WS, headers=bob, json={"name": "team"}).status_code == 201
    sent = client.post(f"{WS}/team/invitations", headers=bob, json={"email": "late@example.com"}).json()
    expire(client, sent["id"])
    user(client, admin_headers, "late")
    assert "late" not in [m["name"] for m in client.get(f"{WS}/team", headers=bob).json()["members"]]


def _team_through_group(client, admin_headers):
    bob, carol = user(client, admin_headers, "bob"), user(client, admin_headers, "carol")
    assert client.post(WS, headers=bob, json={"name": "team"}).status_code == 201
    assert client.post(f"{API}/groups", headers=admin_headers, json={"name": "vision"}).status_code == 201
    assert client.put(f"{API}/groups/vision/members/carol", headers=admin_headers).status_code in (200, 201, 204)
    r = client.put(f"{WS}/team/members/groups/vision", headers=bob)
    assert r.status_code in (200, 201, 204), r.text
    r = client.post(f"{WS}/team/credentials", headers=carol, json={"label": "team ci"})
    assert r.status_code == 201, r.text
    scoped = key_headers(r.json())
    assert client.get(f"{API}/auth/whoami", headers=scoped).status_code == 200
    return bob, scoped


def test_leaving_the_group_that_was_the_member_revokes_the_scoped_credentials(client, admin_headers):
    _, scoped = _team_through_group(client, admin_headers)
    assert client.delete(f"{API}/groups/vision/members/carol", headers=admin_headers).status_code == 204
    assert client.get(f"{API}/auth/whoami", headers=scoped).status_code == 401


def test_deleting_the_group_that_was_the_member_revokes_the_scoped_credentials(client, admin_headers):
    _, scoped = _team_through_group(client, admin_headers)
    r = client.delete(f"{API}/groups/vision", headers=admin_headers, params={"force": "true"})
    assert r.status_code == 204, r.text
    assert client.get(f"{API}/auth/whoami", headers=scoped).status_code == 401


def test_a_direct_member_leaving_the_group_keeps_the_scoped_credentials(client, admin_headers):
    bob, scoped = _team_through_group(client, admin_headers)
    assert client.put(f"{WS}/team/members/users/carol", headers=bob).status_code in (200, 201, 204)
    assert client.delete(f"{API}/groups/vision/members/carol", headers=admin_headers).status_code == 204
    assert client.get(f"{API}/auth/whoami", headers=scoped).status_code == 200
