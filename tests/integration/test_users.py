"""Users API: creation rules, listing, detail, updates and self-service limits (Backend.AI's user rules)."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update
from user_helpers import (
    API,
    PASSWORD,
    add_credential,
    audit_events,
    bearer,
    credentials_of,
    errors_by_field,
    login,
    make_user,
)

from allotment.db import utcnow
from allotment.identity.models import SERVICE_ACCOUNT, ClusterRoleGrant, Credential, Group, GroupMember, User
from allotment.inventory.models import Cluster

LETTER = "must contain at least one letter (A-Z or a-z)"
DIGIT = "must contain at least one digit (0-9)"
SPECIAL = "must contain at least one special character (ASCII punctuation such as ! or #)"

LONG = "x" * 65
# 255 characters: one more than RFC 5321 allows (identity providers send long addresses; 254 are accepted).
LONG_EMAIL = "a" * 60 + "@" + ("b" * 60 + ".") * 3 + "example.com"


# --- create -------------------------------------------------------------------------------------------------------

def test_create_user_returns_it_without_secrets(client, admin_headers):
    r = client.post(f"{API}/users", headers=admin_headers, json={
        "email": "Alice@Example.com", "username": "Alice", "password": PASSWORD, "full_name": "Alice Liddell",
        "need_password_change": True, "resource_policy": "students"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert {k: body[k] for k in ("email", "username", "full_name", "is_active", "need_password_change",
                                 "resource_policy")} == {
        "email": "Alice@Example.com", "username": "Alice", "full_name": "Alice Liddell", "is_active": True,
        "need_password_change": True, "resource_policy": "students"}
    assert "password" not in body and "password_hash" not in body
    # The new user can log in with the password, by username or e-mail in any case.
    login(client, "alice", PASSWORD)
    login(client, "ALICE@example.COM", PASSWORD)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"email": "not-an-email"}, {"email": 1}),
        ({"email": LONG_EMAIL}, {"email": ["must be at most 254 characters long",
                                          ("is not a valid e-mail address (The email address is too long "
                                           "(1 character too many).)")]}),
        ({"username": LONG}, {"username": ["must be at most 64 characters long"]}),
        ({"username": "two words"}, {"username": ["must not contain spaces or ':'"]}),
        ({"full_name": LONG}, {"full_name": ["must be at most 64 characters long"]}),
        ({"password": "Sh0rt!"}, {"password": ["must be at least 8 characters long"]}),
        ({"password": "12345678!"}, {"password": [LETTER]}),
        ({"password": "abcdefgh!"}, {"password": [DIGIT]}),
        ({"password": "abcdefg12"}, {"password": [SPECIAL]}),
        ({"password": "abc"}, {"password": ["must be at least 8 characters long", DIGIT,
                                            SPECIAL]}),
    ],
)
def test_create_reports_each_broken_rule(client, admin_headers, fields, expected):
    body = {"email": "bob@example.com", "username": "bob", "password": PASSWORD, **fields}
    r = client.post(f"{API}/users", headers=admin_headers, json=body)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    got = errors_by_field(r)
    assert set(got) == set(expected)
    for field, messages in expected.items():
        if isinstance(messages, int):
            assert len(got[field]) == messages
        else:
            assert got[field] == messages
    assert client.get(f"{API}/users/bob", headers=admin_headers).status_code == 404


def test_create_lists_every_failing_rule_of_every_field_at_once(client, admin_headers):
    r = client.post(f"{API}/users", headers=admin_headers, json={
        "email": "x" * 255, "username": "a b" + "c" * 63, "password": "abc", "full_name": LONG})
    assert r.status_code == 422
    got = errors_by_field(r)
    assert "must be at most 254 characters long" in got["email"] and len(got["email"]) == 2
    assert got["username"] == ["must be at most 64 characters long", "must not contain spaces or ':'"]
    assert got["full_name"] == ["must be at most 64 characters long"]
    assert len(got["password"]) == 3


def test_limits_are_inclusive_at_64_characters(client, admin_headers):
    email = LONG_EMAIL[:-2] + "m"  # 254 characters, the e-mail's limit
    assert len(email) == 254
    make_user(client, admin_headers, "b" * 64, email=email, full_name="c" * 64)


@pytest.mark.parametrize("username", ["bob@example", "12345"])
def test_usernames_that_would_be_ambiguous_references_are_refused(client, admin_headers, username):
    r = client.post(f"{API}/users", headers=admin_headers,
                    json={"email": "bob@example.com", "username": username, "password": PASSWORD})
    assert r.status_code == 422 and list(errors_by_field(r)) == ["username"]


@pytest.mark.parametrize(
    ("email", "username", "fields"),
    [
        ("ALICE@example.com", "someone", ["email"]),
        ("someone@example.com", "ALICE", ["username"]),
        ("Alice@EXAMPLE.com", "alice", ["email", "username"]),
    ],
)
def test_duplicates_ignoring_case_are_409_naming_the_field(client, admin_headers, email, username, fields):
    make_user(client, admin_headers, "alice")
    r = client.post(f"{API}/users", headers=admin_headers,
                    json={"email": email, "username": username, "password": PASSWORD})
    assert r.status_code == 409, r.text
    assert sorted(errors_by_field(r)) == fields


def test_only_platform_admins_create_and_list(client, admin_headers):
    make_user(client, admin_headers, "alice")
    alice = login(client, "alice", PASSWORD)
    body = {"email": "eve@example.com", "username": "eve", "password": PASSWORD}
    assert client.post(f"{API}/users", headers=alice, json=body).status_code == 403
    assert client.post(f"{API}/users", json=body).status_code == 401
    assert client.get(f"{API}/users", headers=alice).status_code == 403


def test_users_are_never_deleted(client, admin_headers):
    make_user(client, admin_headers, "alice")
    r = client.delete(f"{API}/users/alice", headers=admin_headers)
    assert r.status_code in (404, 405)
    assert client.get(f"{API}/users/alice", headers=admin_headers).status_code == 200


# --- list ---------------------------------------------------------------------------------------------------------

@pytest.fixture
def population(client, admin_headers, app):
    emails = {"carol": "carol@example.com", "alice": "alice@example.com", "bob": "robert@lab.org",
              "dave": "dave@lab.org"}
    for name, email in emails.items():
        make_user(client, admin_headers, name, email=email)
    client.post(f"{API}/users/dave/deactivate", headers=admin_headers).raise_for_status()
    with app.state.allot.sessions() as session:  # a service account is not a user and is never listed here
        session.add(User(kind=SERVICE_ACCOUNT, username="ci-bot", username_key="ci-bot"))
        session.commit()


def names(response) -> list[str]:
    assert response.status_code == 200, response.text
    return [u["username"] for u in response.json()["items"]]


def test_list_filters_by_active_flag(client, admin_headers, population):
    assert names(client.get(f"{API}/users", headers=admin_headers)) == ["admin", "alice", "bob", "carol", "dave"]
    assert names(client.get(f"{API}/users?active=true", headers=admin_headers)) == ["admin", "alice", "bob", "carol"]
    assert names(client.get(f"{API}/users?active=false", headers=admin_headers)) == ["dave"]


@pytest.mark.parametrize(
    ("search", "expected"),
    [("LAB.ORG", ["bob", "dave"]), ("aro", ["carol"]), ("rob", ["bob"]), ("example", ["admin", "alice", "carol"]), ("%", []),
     ("_", []), ("zzz", [])],
)
def test_list_searches_substrings_of_email_and_username(client, admin_headers, population, search, expected):
    r = client.get(f"{API}/users", headers=admin_headers, params={"search": search})
    assert names(r) == expected
    assert r.json()["total"] == len(expected)


@pytest.mark.parametrize(
    ("sort", "expected"),
    [("username", ["admin", "alice", "bob", "carol", "dave"]),
     ("-username", ["dave", "carol", "bob", "alice", "admin"]),
     ("email", ["admin", "alice", "carol", "dave", "bob"]),
     ("-email", ["bob", "dave", "carol", "alice", "admin"]),
     ("created_at", ["admin", "carol", "alice", "bob", "dave"]),
     ("-created_at", ["dave", "bob", "alice", "carol", "admin"])],
)
def test_list_sorts(client, admin_headers, population, sort, expected):
    assert names(client.get(f"{API}/users", headers=admin_headers, params={"sort": sort})) == expected


def test_list_paginates_with_total(client, admin_headers, population):
    r = client.get(f"{API}/users", headers=admin_headers, params={"limit": 2, "offset": 1})
    assert names(r) == ["alice", "bob"]
    assert r.json()["total"] == 5
    r = client.get(f"{API}/users", headers=admin_headers, params={"limit": 2, "offset": 4, "active": "true"})
    assert names(r) == [] and r.json()["total"] == 4


@pytest.mark.parametrize("params", [{"sort": "password"}, {"limit": 0}, {"limit": 501}, {"offset": -1}])
def test_list_rejects_bad_parameters(client, admin_headers, params):
    r = client.get(f"{API}/users", headers=admin_headers, params=params)
    assert r.status_code == 422
    assert list(errors_by_field(r)) == list(params)


# --- detail -------------------------------------------------------------------------------------------------------

def test_detail_shows_groups_cluster_roles_and_usable_credentials(client, admin_headers, app):
    user = make_user(client, admin_headers, "alice")
    client.post(f"{API}/groups", headers=admin_headers, json={"name": "vision"}).raise_for_status()
    client.put(f"{API}/groups/vision/members/alice", headers=admin_headers).raise_for_status()
    add_credential(app, "alice")
    add_credential(app, "alice")
    with app.state.allot.sessions() as session:
        local = session.scalar(select(Cluster).where(Cluster.name == "local"))
        other = Cluster(name="gpu-farm", backend="local")
        session.add(other)
        session.flush()
        vision = session.scalar(select(Group).where(Group.name == "vision"))
        session.add_all([ClusterRoleGrant(cluster_id=local.id, user_id=user["id"], role="user"),
                         ClusterRoleGrant(cluster_id=local.id, group_id=vision.id, role="manager"),
                         ClusterRoleGrant(cluster_id=other.id, group_id=vision.id, role="user")])
        first = session.scalar(select(Credential).where(Credential.user_id == user["id"]))
        first.revoked_at = utcnow()
        session.commit()
    for ref in ("alice", "ALICE@example.com", str(user["id"])):
        body = client.get(f"{API}/users/{ref}", headers=admin_headers).json()
        assert body["username"] == "alice"
        assert body["groups"] == ["users", "vision"]
        # The highest of the direct and the group grant wins.
        assert body["cluster_roles"] == {"gpu-farm": "user", "local": "manager"}
        assert body["credential_count"] == 1
        assert body["is_platform_admin"] is False


def test_detail_of_unknown_user_is_404_for_admins(client, admin_headers):
    r = client.get(f"{API}/users/nobody", headers=admin_headers)
    assert r.status_code == 404 and "nobody" in r.json()["detail"]


# --- update -------------------------------------------------------------------------------------------------------

def test_admin_updates_every_editable_field_and_it_is_audited(client, admin_headers, app):
    make_user(client, admin_headers, "alice")
    r = client.patch(f"{API}/users/alice", headers=admin_headers, json={
        "username": "alice2", "full_name": "Alice L.", "need_password_change": True, "resource_policy": "gpu-small"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["username"], body["full_name"], body["need_password_change"], body["resource_policy"]) == (
        "alice2", "Alice L.", True, "gpu-small")
    assert client.get(f"{API}/users/alice", headers=admin_headers).status_code == 404
    login(client, "alice2", PASSWORD)
    event = audit_events(app, "user.update")[-1]
    assert event.actor == "admin" and event.target == "alice2"
    assert event.changes == {
        "before": {"username": "alice", "full_name": None, "need_password_change": False, "resource_policy": None},
        "after": {"username": "alice2", "full_name": "Alice L.", "need_password_change": True,
                  "resource_policy": "gpu-small"}}


def test_email_cannot_change(client, admin_headers):
    make_user(client, admin_headers, "alice")
    r = client.patch(f"{API}/users/alice", headers=admin_headers, json={"email": "new@example.com"})
    assert r.status_code == 422
    assert r.json()["errors"] == [{"field": "email",
                                   "message": "cannot be changed: the e-mail is the account's identity"}]
    assert client.get(f"{API}/users/alice", headers=admin_headers).json()["email"] == "alice@example.com"


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [({"username": None}, 422, "username"), ({"is_active": None}, 422, "is_active"),
     ({"username": "ADMIN"}, 409, "username"), ({"username": LONG}, 422, "username"),
     ({"full_name": LONG}, 422, "full_name"), ({"password": "weak"}, 422, "password"),
     ({"unknown": 1}, 422, "unknown")],
)
def test_update_validates(client, admin_headers, body, status, field):
    make_user(client, admin_headers, "alice")
    r = client.patch(f"{API}/users/alice", headers=admin_headers, json=body)
    assert r.status_code == status, r.text
    assert field in errors_by_field(r)


def test_admin_password_reset_ends_the_users_sessions(client, admin_headers, app):
    make_user(client, admin_headers, "alice")
    alice = login(client, "alice", PASSWORD)
    r = client.patch(f"{API}/users/alice", headers=admin_headers, json={"password": "N3w-password"})
    assert r.status_code == 200
    assert client.get(f"{API}/auth/whoami", headers=alice).status_code == 401
    assert client.post(f"{API}/auth/login", json={"username": "alice", "password": PASSWORD}).status_code == 401
    login(client, "alice", "N3w-password")
    event = audit_events(app, "user.update")[-1]
    assert event.changes == {"before": {}, "after": {"password_changed": True}}
    assert "N3w" not in str(event.changes)


# --- self service -------------------------------------------------------------------------------------------------

def test_user_sees_self_but_not_others(client, admin_headers):
    make_user(client, admin_headers, "alice")
    make_user(client, admin_headers, "bob")
    alice = login(client, "alice", PASSWORD)
    assert client.get(f"{API}/users/alice", headers=alice).json()["username"] == "alice"
    assert client.get(f"{API}/users/bob", headers=alice).status_code == 403
    # Unknown and known accounts look the same to a non-admin: no probing which accounts exist.
    assert client.get(f"{API}/users/nobody", headers=alice).status_code == 403
    assert client.get(f"{API}/users/alice").status_code == 401


def test_user_changes_own_full_name_and_username_only(client, admin_headers):
    """The username too (ClearML's profile): tests/integration/test_own_username.py."""
    make_user(client, admin_headers, "alice")
    make_user(client, admin_headers, "bob")
    alice = login(client, "alice", PASSWORD)
    r = client.patch(f"{API}/users/alice", headers=alice, json={"full_name": "Alice"})
    assert r.status_code == 200 and r.json()["full_name"] == "Alice"
    for body in ({"is_active": False}, {"need_password_change": False}, {"resource_policy": "unlimited"},
                 {"full_name": "ok", "is_active": True}):
        r = client.patch(f"{API}/users/alice", headers=alice, json=body)
        assert r.status_code == 403, body
    assert client.patch(f"{API}/users/bob", headers=alice, json={"full_name": "Bobby"}).status_code == 403
    after = client.get(f"{API}/users/alice", headers=admin_headers).json()
    assert (after["username"], after["full_name"], after["is_active"]) == ("alice", "Alice", True)


def test_user_changes_own_password_with_the_current_one(client, admin_headers):
    make_user(client, admin_headers, "alice")
    alice = login(client, "alice", PASSWORD)
    other_device = login(client, "alice", PASSWORD)
    r = client.patch(f"{API}/users/alice", headers=alice, json={"password": "N3w-password"})
    assert r.status_code == 422 and "current_password" in errors_by_field(r)
    r = client.patch(f"{API}/users/alice", headers=alice, json={"password": "N3w-password",
                                                                 "current_password": "Wr0ng-pass"})
    assert r.status_code == 403 and errors_by_field(r) == {"current_password": ["is not your current password"]}
    r = client.patch(f"{API}/users/alice", headers=alice, json={"password": "N3w-password",
                                                                 "current_password": PASSWORD})
    assert r.status_code == 200, r.text
    assert client.get(f"{API}/auth/whoami", headers=alice).status_code == 200  # this session goes on
    assert client.get(f"{API}/auth/whoami", headers=other_device).status_code == 401  # others end
    login(client, "alice", "N3w-password")


# --- deactivate / activate ----------------------------------------------------------------------------------------

def test_deactivation_revokes_credentials_ends_sessions_and_blocks_login(client, admin_headers, app):
    make_user(client, admin_headers, "alice")
    session_token = login(client, "alice", PASSWORD)
    credential = bearer(add_credential(app, "alice"))
    assert client.get(f"{API}/auth/whoami", headers=credential).status_code == 200
    r = client.post(f"{API}/users/alice/deactivate", headers=admin_headers)
    assert r.status_code == 200 and r.json()["is_active"] is False and r.json()["credential_count"] == 0
    assert client.get(f"{API}/auth/whoami", headers=session_token).status_code == 401
    assert client.get(f"{API}/auth/whoami", headers=credential).status_code == 401
    r = client.post(f"{API}/auth/login", json={"username": "alice", "password": PASSWORD})
    assert r.status_code == 401 and r.json()["detail"] == "the account is inactive"
    assert all(c.revoked_at is not None for c in credentials_of(app, "alice"))
    event = audit_events(app, "user.deactivate")[-1]
    assert event.changes == {"before": {"is_active": True},
                             "after": {"is_active": False, "credentials_revoked": 1, "sessions_ended": 1,
                                       "stop_jobs": False, "jobs_cancelled": []}}


def test_activation_restores_login_but_not_credentials(client, admin_headers, app):
    make_user(client, admin_headers, "alice")
    credential = bearer(add_credential(app, "alice"))
    client.post(f"{API}/users/alice/deactivate", headers=admin_headers).raise_for_status()
    revoked_at = credentials_of(app, "alice")[0].revoked_at
    r = client.post(f"{API}/users/alice/activate", headers=admin_headers)
    assert r.status_code == 200 and r.json()["is_active"] is True
    login(client, "alice", PASSWORD)
    assert client.get(f"{API}/auth/whoami", headers=credential).status_code == 401
    assert credentials_of(app, "alice")[0].revoked_at == revoked_at
    assert [e.target for e in audit_events(app, "user.activate")] == ["alice"]


def test_an_inactive_users_live_session_and_credential_stop_working(client, admin_headers, app):
    """Even a session or credential that was somehow not revoked does not authenticate an inactive user."""
    make_user(client, admin_headers, "alice")
    token = login(client, "alice", PASSWORD)
    credential = bearer(add_credential(app, "alice"))
    with app.state.allot.sessions() as session:
        session.execute(update(User).where(User.username == "alice").values(is_active=False))
        session.commit()
    app.state.allot.auth_cache.clear()
    assert client.get(f"{API}/auth/whoami", headers=token).status_code == 401
    assert client.get(f"{API}/auth/whoami", headers=credential).status_code == 401


def test_patch_is_active_deactivates_the_same_way(client, admin_headers, app):
    make_user(client, admin_headers, "alice")
    credential = bearer(add_credential(app, "alice"))
    r = client.patch(f"{API}/users/alice", headers=admin_headers, json={"is_active": False})
    assert r.status_code == 200 and r.json()["is_active"] is False
    assert client.get(f"{API}/auth/whoami", headers=credential).status_code == 401
    r = client.patch(f"{API}/users/alice", headers=admin_headers, json={"is_active": True})
    assert r.json()["is_active"] is True
    assert client.get(f"{API}/auth/whoami", headers=credential).status_code == 401


def test_only_admins_deactivate(client, admin_headers):
    make_user(client, admin_headers, "alice")
    alice = login(client, "alice", PASSWORD)
    assert client.post(f"{API}/users/alice/deactivate", headers=alice).status_code == 403
    assert client.post(f"{API}/users/admin/deactivate", headers=alice).status_code == 403


def test_the_last_active_admin_cannot_be_deactivated(client, admin_headers, app):
    r = client.post(f"{API}/users/admin/deactivate", headers=admin_headers)
    assert r.status_code == 409 and "last active platform admin" in r.json()["detail"]
    r = client.patch(f"{API}/users/admin", headers=admin_headers, json={"is_active": False})
    assert r.status_code == 409
    make_user(client, admin_headers, "root2")
    client.put(f"{API}/groups/admins/members/root2", headers=admin_headers).raise_for_status()
    assert client.post(f"{API}/users/admin/deactivate", headers=admin_headers).status_code == 200
    with app.state.allot.sessions() as session:  # still a member of admins, just inactive
        assert session.scalar(select(GroupMember).join(User).where(User.username == "admin")) is not None


def test_user_lifecycle_is_audited_without_secrets(client, admin_headers, app):
    make_user(client, admin_headers, "alice", full_name="Alice")
    create = audit_events(app, "user.create", "alice")[-1]
    assert create.actor == "admin" and create.source is not None
    assert create.changes["after"]["email"] == "alice@example.com"
    assert create.changes["after"]["full_name"] == "Alice"
    for event in audit_events(app):
        assert PASSWORD not in str(event.changes)
        assert "password_hash" not in str(event.changes)


def test_a_service_account_acting_for_a_user_cannot_change_their_password(client, app):
    """Impersonation may act as the user, but not take over the account."""
    from allotment.core.permissions import Principal
    from allotment.errors import Forbidden
    from allotment.identity import service
    from allotment.identity.throttle import RateLimiter

    with app.state.allot.sessions() as session:
        session.add(User(email="al@example.com", email_key="al@example.com", username="al", username_key="al"))
        session.flush()
        al = session.scalar(select(User).where(User.username_key == "al"))
        acting = Principal(id=al.id, kind="user", username="al", actor_id=999, actor_username="ci-bot")
        with pytest.raises(Forbidden):
            service.update_user(session, acting, al, {"password": "N3w-password", "current_password": "x"}, None,
                                RateLimiter(5, 1.0))
        with pytest.raises(Forbidden):
            service.change_own_password(session, acting, "x", "N3w-password", None, RateLimiter(5, 1.0))
