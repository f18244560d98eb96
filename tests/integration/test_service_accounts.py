"""Service accounts: API-only principals with their own credentials, impersonation only when allowed (and audited as
such), deletion that revokes credentials but keeps the row."""

from __future__ import annotations

from access_helpers import API, PASSWORD, add_user, key_headers, login, new_credential, user_with_key, whoami
from sqlalchemy import select

from allotment.identity.models import User

ON_BEHALF = "X-Allot-On-Behalf-Of"


def create_sa(client, admin_headers, name="ci-bot", **body) -> dict:
    r = client.post(f"{API}/service-accounts", json={"name": name, **body}, headers=admin_headers)
    assert r.status_code == 201, r.text
    return r.json()


def test_create_returns_a_first_credential_that_authenticates(client, admin_headers):
    sa = create_sa(client, admin_headers, description="runs the nightly jobs")
    assert sa["name"] == "ci-bot" and sa["allow_impersonation"] is False and sa["is_active"] is True
    assert sa["credential"]["owner"] == "ci-bot" and sa["credential"]["secret_key"]
    me = whoami(client, key_headers(sa["credential"]))
    assert me["kind"] == "service_account" and me["username"] == "ci-bot" and me["is_platform_admin"] is False
    listed = client.get(f"{API}/service-accounts", headers=admin_headers).json()
    assert listed["total"] == 1 and listed["items"][0]["credential_count"] == 1
    assert listed["items"][0]["last_active_at"] is not None
    with client.app.state.allot.sessions() as s:
        row = s.scalar(select(User).where(User.username == "ci-bot"))
        assert row.kind == "service_account" and row.password_hash is None and row.email is None


def test_more_credentials_and_its_own(client, admin_headers):
    sa = create_sa(client, admin_headers, with_credential=False)
    assert sa["credential"] is None
    r = client.post(f"{API}/service-accounts/ci-bot/credentials", json={"label": "agent-2", "expires_in": "7d"},
                    headers=admin_headers)
    assert r.status_code == 201 and r.json()["owner"] == "ci-bot" and r.json()["expires_at"]
    sa_headers = key_headers(r.json())
    own = new_credential(client, sa_headers, label="rotated")  # a service account manages its own credentials
    assert own["owner"] == "ci-bot"
    listed = client.get(f"{API}/service-accounts/ci-bot/credentials", headers=admin_headers).json()
    assert sorted(c["label"] for c in listed["items"]) == ["agent-2", "rotated"]


def test_service_accounts_never_log_in_with_a_password(client, admin_headers):
    create_sa(client, admin_headers)
    for password in ("", "anything-1!", PASSWORD):
        r = client.post(f"{API}/auth/login", json={"username": "ci-bot", "password": password or "x"})
        assert r.status_code == 401


def test_name_is_unique_together_with_usernames(client, admin_headers):
    add_user(client, "alice")
    for name in ("alice", "ADMIN"):
        r = client.post(f"{API}/service-accounts", json={"name": name}, headers=admin_headers)
        assert r.status_code == 409 and r.json()["errors"][0]["field"] == "name"
    create_sa(client, admin_headers)
    assert client.post(f"{API}/service-accounts", json={"name": "CI-bot"}, headers=admin_headers).status_code == 409
    r = client.post(f"{API}/service-accounts", json={"name": "has space"}, headers=admin_headers)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "name"


def test_impersonation_is_refused_unless_allowed(client, admin_headers):
    add_user(client, "alice")
    sa = create_sa(client, admin_headers)
    headers = key_headers(sa["credential"])
    r = client.get(f"{API}/auth/whoami", headers={**headers, ON_BEHALF: "alice"})
    assert r.status_code == 403 and "impersonation is off" in r.json()["detail"]

    r = client.patch(f"{API}/service-accounts/ci-bot", json={"allow_impersonation": True}, headers=admin_headers)
    assert r.status_code == 200 and r.json()["allow_impersonation"] is True
    me = whoami(client, {**headers, ON_BEHALF: "alice"})
    assert me["username"] == "alice" and me["acting_as"] == "alice" and me["actor"] == "ci-bot"
    assert whoami(client, {**headers, ON_BEHALF: "ALICE@example.com"})["username"] == "alice"
    r = client.get(f"{API}/auth/whoami", headers={**headers, ON_BEHALF: "nobody"})
    assert r.status_code == 403

    client.patch(f"{API}/service-accounts/ci-bot", json={"allow_impersonation": False}, headers=admin_headers)
    r = client.get(f"{API}/auth/whoami", headers={**headers, ON_BEHALF: "alice"})
    assert r.status_code == 403  # switched off: refused on the very next request

    alice = user_with_key(client, "alice2")
    r = client.get(f"{API}/auth/whoami", headers={**alice, ON_BEHALF: "alice"})
    assert r.status_code == 403  # users cannot impersonate at all


def test_acting_on_behalf_is_audited_with_both_names(client, admin_headers):
    """End to end: a cluster manager's change made by a service account records the account as the actor."""
    add_user(client, "mia")
    add_user(client, "bob")
    client.put(f"{API}/clusters/local/users/mia", json={"role": "manager"}, headers=admin_headers)
    sa = create_sa(client, admin_headers, allow_impersonation=True)
    headers = {**key_headers(sa["credential"]), ON_BEHALF: "mia"}

    r = client.put(f"{API}/clusters/local/users/bob", json={"role": "user"}, headers=headers)
    assert r.status_code == 200, r.text
    event = client.get(f"{API}/audit?target=local/bob", headers=admin_headers).json()["items"][0]
    assert event["action"] == "cluster_role.grant"
    assert event["actor"] == "ci-bot" and event["on_behalf_of"] == "mia"
    assert event["changes"] == {"before": {"role": None}, "after": {"role": "user"}}
    for actor in ("mia", "ci-bot"):  # found under either name
        found = client.get(f"{API}/audit?actor={actor}&action=cluster_role.grant", headers=admin_headers).json()
        assert [e["target"] for e in found["items"]] == ["local/bob"]
    # Without the header the account acts as itself, and it holds no role on the cluster.
    r = client.put(f"{API}/clusters/local/users/bob", json={"role": "manager"}, headers=key_headers(sa["credential"]))
    assert r.status_code == 403


def test_impersonating_an_admin_does_not_grant_admin_rights_nor_credentials(client, admin_headers):
    sa = create_sa(client, admin_headers, allow_impersonation=True)
    headers = {**key_headers(sa["credential"]), ON_BEHALF: "admin"}
    me = whoami(client, headers)
    assert me["username"] == "admin" and me["is_platform_admin"] is False
    assert client.get(f"{API}/service-accounts", headers=headers).status_code == 403
    r = client.post(f"{API}/credentials", json={}, headers=headers)
    assert r.status_code == 403 and "on behalf" in r.json()["detail"]
    other = create_sa(client, admin_headers, name="other-bot")
    r = client.get(f"{API}/auth/whoami", headers={**key_headers(sa["credential"]), ON_BEHALF: "other-bot"})
    assert r.status_code == 403 and other  # service accounts are not impersonated


def test_delete_revokes_credentials_and_keeps_the_row(client, admin_headers):
    sa = create_sa(client, admin_headers)
    headers = key_headers(sa["credential"])
    assert whoami(client, headers)["username"] == "ci-bot"
    assert client.delete(f"{API}/service-accounts/ci-bot", headers=admin_headers).status_code == 204
    r = client.get(f"{API}/auth/whoami", headers=headers)
    assert r.status_code == 401
    assert client.get(f"{API}/service-accounts/ci-bot", headers=admin_headers).status_code == 404
    assert client.get(f"{API}/service-accounts", headers=admin_headers).json()["total"] == 0
    kept = client.get(f"{API}/service-accounts?include_deleted=true", headers=admin_headers).json()["items"]
    assert len(kept) == 1 and kept[0]["name"] == "ci-bot" and kept[0]["deleted_at"] is not None
    assert kept[0]["is_active"] is False and kept[0]["id"] == sa["id"]
    creds = client.get(f"{API}/credentials?all=true", headers=admin_headers).json()["items"]
    assert [c["status"] for c in creds if c["owner"] == "ci-bot"] == ["revoked"]
    event = client.get(f"{API}/audit?action=service_account.delete", headers=admin_headers).json()["items"][0]
    assert event["changes"]["revoked_credentials"] == [sa["credential"]["access_key"]]
    # The name is free again; the old row (and everything it owns) keeps its id.
    again = create_sa(client, admin_headers)
    assert again["id"] != sa["id"]


def test_update_and_audit(client, admin_headers):
    create_sa(client, admin_headers, description="old")
    r = client.patch(f"{API}/service-accounts/ci-bot", json={"description": None}, headers=admin_headers)
    assert r.status_code == 200 and r.json()["description"] is None
    actions = [e["action"] for e in client.get(f"{API}/audit?target=ci-bot", headers=admin_headers).json()["items"]]
    assert actions == ["service_account.update", "service_account.create"]


def test_only_platform_admins_manage_service_accounts(client, admin_headers):
    alice = user_with_key(client, "alice")
    assert client.get(f"{API}/service-accounts", headers=alice).status_code == 403
    assert client.post(f"{API}/service-accounts", json={"name": "x"}, headers=alice).status_code == 403
    session = login(client, "alice", PASSWORD)
    assert client.post(f"{API}/service-accounts", json={"name": "x"}, headers=session).status_code == 403
