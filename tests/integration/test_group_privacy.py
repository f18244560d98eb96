"""Who may list a group's members: platform admins, and the members of that group unless it is a built-in one
(`users` is everyone, `admins` names the admins: the user directory is not for every user to read)."""

from __future__ import annotations

from user_helpers import API, PASSWORD, login, make_user


def setup_vision(client, admin_headers) -> tuple[dict, dict]:
    make_user(client, admin_headers, "alice", full_name="Alice Liddell")
    make_user(client, admin_headers, "bob")
    client.post(f"{API}/groups", headers=admin_headers, json={"name": "vision"}).raise_for_status()
    assert client.put(f"{API}/groups/vision/members/alice", headers=admin_headers).status_code == 204
    return login(client, "alice", PASSWORD), login(client, "bob", PASSWORD)


def test_ordinary_users_cannot_read_the_builtin_groups(client, admin_headers):
    alice, _ = setup_vision(client, admin_headers)
    for group in ("users", "admins", "USERS"):
        r = client.get(f"{API}/groups/{group}", headers=alice)
        assert r.status_code == 403, r.text
        assert "Alice Liddell" not in r.text
    assert [m["username"] for m in client.get(f"{API}/groups/admins", headers=admin_headers).json()["members"]] == [
        "admin"]
    assert len(client.get(f"{API}/groups/users", headers=admin_headers).json()["members"]) == 3


def test_members_read_their_own_group_and_nobody_else_does(client, admin_headers):
    alice, bob = setup_vision(client, admin_headers)
    r = client.get(f"{API}/groups/vision", headers=alice)
    assert r.status_code == 200 and [m["username"] for m in r.json()["members"]] == ["alice"]
    assert client.get(f"{API}/groups/vision", headers=bob).status_code == 403
    # An unknown group is refused the same way, so a non-admin cannot probe which groups exist.
    assert client.get(f"{API}/groups/nope", headers=bob).status_code == 403
    assert client.get(f"{API}/groups/nope", headers=admin_headers).status_code == 404
    # Leaving the group ends the access (the principal cache is cleared by the change).
    assert client.delete(f"{API}/groups/vision/members/alice", headers=admin_headers).status_code == 204
    assert client.get(f"{API}/groups/vision", headers=alice).status_code == 403


def test_the_consoles_group_pages_follow_the_rule(client, admin_headers):
    setup_vision(client, admin_headers)
    token = client.post(f"{API}/auth/login", json={"username": "alice", "password": PASSWORD})
    assert token.status_code == 200
    for page in ("/ui/groups", "/ui/groups/users", "/ui/groups/admins"):
        r = client.get(page)
        assert r.status_code == 403 and "Alice Liddell" not in r.text
