"""Groups: create, rename, delete, membership; the built-in `users` and `admins` groups."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from user_helpers import API, PASSWORD, audit_events, errors_by_field, login, make_user

from allotment.identity.models import ClusterRoleGrant, Group, GroupMember, User
from allotment.inventory.models import Cluster


def grant(app, *, cluster: str = "local", user: str | None = None, group: str | None = None, role: str) -> None:
    """Cluster role grants are another module's API; tests write the rows the way it does."""
    with app.state.allot.sessions() as session:
        cluster_id = session.scalar(select(Cluster.id).where(Cluster.name == cluster))
        user_id = session.scalar(select(User.id).where(User.username == user)) if user else None
        group_id = session.scalar(select(Group.id).where(Group.name == group)) if group else None
        session.add(ClusterRoleGrant(cluster_id=cluster_id, user_id=user_id, group_id=group_id, role=role))
        session.commit()
    app.state.allot.auth_cache.clear()


def group_names(client, headers) -> list[str]:
    r = client.get(f"{API}/groups", headers=headers)
    assert r.status_code == 200, r.text
    return [g["name"] for g in r.json()["items"]]


def test_create_list_and_read_a_group(client, admin_headers, app):
    make_user(client, admin_headers, "alice")
    r = client.post(f"{API}/groups", headers=admin_headers, json={"name": "vision", "description": "CV team"})
    assert r.status_code == 201, r.text
    assert (r.json()["name"], r.json()["description"], r.json()["builtin"], r.json()["members"]) == (
        "vision", "CV team", False, [])
    assert client.put(f"{API}/groups/vision/members/alice", headers=admin_headers).status_code == 204
    alice = login(client, "alice", PASSWORD)
    # Any signed-in user may read groups.
    assert group_names(client, alice) == ["admins", "queue-admins", "users", "vision"]
    counts = {g["name"]: g["member_count"] for g in client.get(f"{API}/groups", headers=alice).json()["items"]}
    assert counts == {"admins": 1, "queue-admins": 0, "users": 2, "vision": 1}
    detail = client.get(f"{API}/groups/VISION", headers=alice).json()
    assert [m["username"] for m in detail["members"]] == ["alice"]
    assert client.get(f"{API}/groups").status_code == 401
    assert audit_events(app, "group.create")[-1].changes == {
        "before": {"name": None, "description": None}, "after": {"name": "vision", "description": "CV team"}}


@pytest.mark.parametrize(
    ("name", "status"),
    [("", 422), ("has space", 422), ("x" * 65, 422), ("123", 422), ("-lead", 422), ("VISION", 409),
     ("Users", 409)],
)
def test_group_names_are_checked(client, admin_headers, name, status):
    client.post(f"{API}/groups", headers=admin_headers, json={"name": "vision"}).raise_for_status()
    r = client.post(f"{API}/groups", headers=admin_headers, json={"name": name})
    assert r.status_code == status, r.text
    assert list(errors_by_field(r)) == ["name"]


def test_only_platform_admins_change_groups(client, admin_headers):
    make_user(client, admin_headers, "alice")
    client.post(f"{API}/groups", headers=admin_headers, json={"name": "vision"}).raise_for_status()
    alice = login(client, "alice", PASSWORD)
    assert client.post(f"{API}/groups", headers=alice, json={"name": "mine"}).status_code == 403
    assert client.patch(f"{API}/groups/vision", headers=alice, json={"name": "x"}).status_code == 403
    assert client.delete(f"{API}/groups/vision", headers=alice).status_code == 403
    assert client.put(f"{API}/groups/vision/members/alice", headers=alice).status_code == 403
    assert client.put(f"{API}/groups/admins/members/alice", headers=alice).status_code == 403


def test_rename_and_describe(client, admin_headers, app):
    client.post(f"{API}/groups", headers=admin_headers, json={"name": "vision"}).raise_for_status()
    client.post(f"{API}/groups", headers=admin_headers, json={"name": "nlp"}).raise_for_status()
    r = client.patch(f"{API}/groups/vision", headers=admin_headers, json={"name": "cv", "description": "images"})
    assert r.status_code == 200 and (r.json()["name"], r.json()["description"]) == ("cv", "images")
    assert client.get(f"{API}/groups/vision", headers=admin_headers).status_code == 404
    assert client.patch(f"{API}/groups/cv", headers=admin_headers, json={"name": "NLP"}).status_code == 409
    assert client.patch(f"{API}/groups/cv", headers=admin_headers, json={"name": "a b"}).status_code == 422
    assert audit_events(app, "group.update")[-1].changes == {
        "before": {"name": "vision", "description": None}, "after": {"name": "cv", "description": "images"}}


def test_membership_is_many_to_many_and_idempotent(client, admin_headers, app):
    for name in ("alice", "bob"):
        make_user(client, admin_headers, name)
    for group in ("vision", "nlp"):
        client.post(f"{API}/groups", headers=admin_headers, json={"name": group}).raise_for_status()
        for user in ("alice", "bob"):
            assert client.put(f"{API}/groups/{group}/members/{user}", headers=admin_headers).status_code == 204
    assert client.put(f"{API}/groups/vision/members/alice", headers=admin_headers).status_code == 204
    assert client.get(f"{API}/users/alice", headers=admin_headers).json()["groups"] == ["nlp", "users", "vision"]
    assert client.delete(f"{API}/groups/vision/members/alice", headers=admin_headers).status_code == 204
    r = client.delete(f"{API}/groups/vision/members/alice", headers=admin_headers)
    assert r.status_code == 404 and "not a member" in r.json()["detail"]
    assert client.put(f"{API}/groups/vision/members/nobody", headers=admin_headers).status_code == 404
    assert client.put(f"{API}/groups/nothing/members/alice", headers=admin_headers).status_code == 404
    assert [m["username"] for m in client.get(f"{API}/groups/vision", headers=admin_headers).json()["members"]] == [
        "bob"]
    added = [e.changes["after"]["member"] for e in audit_events(app, "group.add_member")]
    assert added == ["alice", "bob", "alice", "bob"]  # the repeated PUT changed nothing, so it is not logged
    removed = audit_events(app, "group.remove_member")
    assert [(e.target, e.changes["before"]["member"]) for e in removed] == [("vision", "alice")]


def test_deleting_a_group_removes_only_what_it_granted(client, admin_headers, app):
    make_user(client, admin_headers, "alice")
    client.post(f"{API}/groups", headers=admin_headers, json={"name": "vision"}).raise_for_status()
    client.post(f"{API}/groups", headers=admin_headers, json={"name": "nlp"}).raise_for_status()
    for group in ("vision", "nlp"):
        client.put(f"{API}/groups/{group}/members/alice", headers=admin_headers).raise_for_status()
    grant(app, group="vision", role="manager")
    grant(app, user="alice", role="user")
    alice = login(client, "alice", PASSWORD)
    assert client.get(f"{API}/auth/whoami", headers=alice).json()["cluster_roles"] == {"local": "manager"}
    assert client.get(f"{API}/groups/vision", headers=admin_headers).json()["cluster_roles"] == {"local": "manager"}

    assert client.delete(f"{API}/groups/vision", headers=admin_headers).status_code == 409  # it has a member
    assert client.delete(f"{API}/groups/vision?force=true", headers=admin_headers).status_code == 204
    assert client.get(f"{API}/groups/vision", headers=admin_headers).status_code == 404
    # The group's grant is gone on the next request; alice's own grant, account and other groups stay.
    assert client.get(f"{API}/auth/whoami", headers=alice).json()["cluster_roles"] == {"local": "user"}
    detail = client.get(f"{API}/users/alice", headers=admin_headers).json()
    assert detail["is_active"] is True and detail["groups"] == ["nlp", "users"]
    with app.state.allot.sessions() as session:
        assert session.scalar(select(ClusterRoleGrant).where(ClusterRoleGrant.group_id.is_not(None))) is None
        assert len(session.scalars(select(GroupMember)).all()) == 2  # admin in admins, alice in nlp
    event = audit_events(app, "group.delete")[-1]
    assert event.changes == {"before": {"name": "vision", "description": None, "members": ["alice"],
                                        "cluster_roles": {"local": "manager"}, "quotas": [], "workspaces": []},
                             "after": None, "forced": True, "jobs_cancelled": []}


def test_the_users_group_holds_everyone_and_cannot_be_changed(client, admin_headers):
    make_user(client, admin_headers, "alice")
    members = client.get(f"{API}/groups/users", headers=admin_headers).json()["members"]
    assert [m["username"] for m in members] == ["admin", "alice"]
    for method, path, body in [("PATCH", "/groups/users", {"description": "x"}),
                               ("PATCH", "/groups/users", {"name": "everyone"}),
                               ("DELETE", "/groups/users", None),
                               ("PUT", "/groups/users/members/alice", None),
                               ("DELETE", "/groups/users/members/alice", None)]:
        r = client.request(method, f"{API}{path}", headers=admin_headers, json=body)
        assert r.status_code == 409, (method, path, r.text)
        assert "built-in group 'users'" in r.json()["detail"]
    assert "users" in group_names(client, admin_headers)


def test_the_admins_group_cannot_be_renamed_or_deleted(client, admin_headers):
    r = client.patch(f"{API}/groups/admins", headers=admin_headers, json={"name": "root"})
    assert r.status_code == 409 and "built-in" in r.json()["detail"]
    assert client.delete(f"{API}/groups/admins", headers=admin_headers).status_code == 409
    r = client.patch(f"{API}/groups/admins", headers=admin_headers, json={"description": "platform operators"})
    assert r.status_code == 200 and r.json()["description"] == "platform operators"


def test_admins_membership_is_platform_admin(client, admin_headers):
    make_user(client, admin_headers, "alice")
    alice = login(client, "alice", PASSWORD)
    assert client.get(f"{API}/users", headers=alice).status_code == 403
    client.put(f"{API}/groups/admins/members/alice", headers=admin_headers).raise_for_status()
    # Takes effect on the next request of an existing session.
    assert client.get(f"{API}/users", headers=alice).status_code == 200
    assert client.get(f"{API}/auth/whoami", headers=alice).json()["is_platform_admin"] is True
    assert client.get(f"{API}/users/alice", headers=admin_headers).json()["is_platform_admin"] is True
    client.delete(f"{API}/groups/admins/members/alice", headers=admin_headers).raise_for_status()
    assert client.get(f"{API}/users", headers=alice).status_code == 403


def test_the_last_admin_cannot_leave_admins(client, admin_headers):
    r = client.delete(f"{API}/groups/admins/members/admin", headers=admin_headers)
    assert r.status_code == 409 and "last active platform admin" in r.json()["detail"]
    make_user(client, admin_headers, "alice")
    client.put(f"{API}/groups/admins/members/alice", headers=admin_headers).raise_for_status()
    # An inactive admin does not count: the platform would have nobody able to sign in and administer it.
    client.post(f"{API}/users/alice/deactivate", headers=admin_headers).raise_for_status()
    assert client.delete(f"{API}/groups/admins/members/admin", headers=admin_headers).status_code == 409
    client.post(f"{API}/users/alice/activate", headers=admin_headers).raise_for_status()
    assert client.delete(f"{API}/groups/admins/members/admin", headers=admin_headers).status_code == 204
    alice = login(client, "alice", PASSWORD)
    assert client.delete(f"{API}/groups/admins/members/alice", headers=alice).status_code == 409
