"""Credentials: the secret is shown once and stored only as an HMAC, expiry, last use, revocation on the next request,
own versus anyone's."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from access_helpers import API, PASSWORD, add_user, key_headers, login, new_credential, user_with_key, whoami
from sqlalchemy import select, text

from allotment.audit.models import AuditEvent
from allotment.db import utcnow
from allotment.identity import authn, credentials
from allotment.identity.models import Credential
from allotment.identity.secrets import token_digest


def test_secret_is_shown_once_with_a_snippet_and_stored_only_as_an_hmac(client, admin_headers):
    created = new_credential(client, admin_headers, label="laptop")
    key, secret = created["access_key"], created["secret_key"]
    assert created["label"] == "laptop" and created["owner"] == "admin" and created["expires_at"] is None
    assert created["cli_snippet"] == f"allot login http://testserver --access-key {key} --secret-stdin"
    assert f"ALLOT_TOKEN={key}:{secret}" in created["env_snippet"]

    assert whoami(client, key_headers(created))["username"] == "admin"
    listed = client.get(f"{API}/credentials", headers=admin_headers).json()
    assert [c["access_key"] for c in listed["items"]] == [key]
    assert secret not in str(listed) and "secret_key" not in listed["items"][0]
    with client.app.state.allot.sessions() as s:
        row = s.scalar(select(Credential).where(Credential.access_key == key))
        assert row.secret_hash == token_digest("test-secret-key", secret) != secret
        dump = " ".join(str(v) for r in s.execute(text("SELECT * FROM credentials")).all() for v in r)
        audit_dump = str([e.changes for e in s.scalars(select(AuditEvent))])
    assert secret not in dump and secret not in audit_dump


def test_wrong_secret_and_unknown_key_are_rejected(client, admin_headers):
    created = new_credential(client, admin_headers)
    for token in (f"{created['access_key']}:wrong", f"AKNOPE:{created['secret_key']}", "no-colon-token"):
        r = client.get(f"{API}/auth/whoami", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401, token


@pytest.mark.parametrize(("expires_in", "delta"), [("30d", timedelta(days=30)), ("12h", timedelta(hours=12)),
                                                    ("90m", timedelta(minutes=90)), ("1d12h", timedelta(hours=36))])
def test_expires_in_sets_the_expiry(client, admin_headers, expires_in, delta):
    created = new_credential(client, admin_headers, expires_in=expires_in)
    expires_at = datetime.fromisoformat(created["expires_at"])
    assert abs(expires_at - (utcnow() + delta)) < timedelta(minutes=1)


@pytest.mark.parametrize(("body", "field"), [({"expires_in": "30x"}, "expires_in"), ({"expires_in": "0d"}, "expires_in"),
                                             ({"expires_in": "99999d"}, "expires_in"),
                                             ({"expires_at": 1e10}, "expires_at"),
                                             ({"expires_in": None, "expires_at": None}, "expires_in"),
                                             ({"expires_in": "1d", "expires_at": "2999-01-01T00:00:00Z"}, "expires_in"),
                                             ({"label": "x" * 65}, "label")])
def test_bad_expiry_or_label_is_a_field_error(client, admin_headers, body, field):
    r = client.post(f"{API}/credentials", json=body, headers=admin_headers)
    assert r.status_code == 422
    assert [e["field"] for e in r.json()["errors"]] == [field]


def test_expired_credential_does_not_authenticate(client, admin_headers, monkeypatch):
    created = new_credential(client, admin_headers, expires_in="1h")
    headers = key_headers(created)
    assert whoami(client, headers)["username"] == "admin"  # now cached
    later = utcnow() + timedelta(hours=2)
    monkeypatch.setattr(authn, "utcnow", lambda: later)
    monkeypatch.setattr(credentials, "utcnow", lambda: later)
    r = client.get(f"{API}/auth/whoami", headers=headers)
    assert r.status_code == 401 and "expired" in r.json()["detail"]
    client.app.state.allot.auth_cache.clear()  # and from the database, not only from the cache
    r = client.get(f"{API}/auth/whoami", headers=headers)
    assert r.status_code == 401 and "expired" in r.json()["detail"]
    item = client.get(f"{API}/credentials", headers=admin_headers).json()["items"][0]
    assert item["status"] == "expired"
    assert client.get(f"{API}/credentials?status=active", headers=admin_headers).json()["total"] == 0


def test_last_use_is_recorded_with_its_source(client, admin_headers):
    created = new_credential(client, admin_headers)
    item = client.get(f"{API}/credentials", headers=admin_headers).json()["items"][0]
    assert item["last_used_at"] is None and item["status"] == "active"
    before = utcnow()
    whoami(client, key_headers(created))
    item = client.get(f"{API}/credentials", headers=admin_headers).json()["items"][0]
    assert datetime.fromisoformat(item["last_used_at"]) >= before - timedelta(seconds=1)
    assert item["last_used_from"] == "testclient"


def test_revocation_takes_effect_on_the_next_request(client, admin_headers):
    alice = user_with_key(client, "alice")
    key = alice["Authorization"].split()[1].split(":")[0]
    assert whoami(client, alice)["username"] == "alice"  # cached now
    assert client.delete(f"{API}/credentials/{key}", headers=alice).status_code == 204
    r = client.get(f"{API}/auth/whoami", headers=alice)
    assert r.status_code == 401 and "revoked" in r.json()["detail"]
    item = client.get(f"{API}/credentials?user=alice", headers=admin_headers).json()["items"][0]
    assert item["status"] == "revoked" and item["revoked_at"] is not None
    assert client.delete(f"{API}/credentials/{key}", headers=admin_headers).status_code == 204  # idempotent
    revokes = client.get(f"{API}/audit?action=credential.revoke", headers=admin_headers).json()
    assert revokes["total"] == 1 and revokes["items"][0]["actor"] == "alice"


def test_users_manage_their_own_and_admins_anyones(client, admin_headers):
    alice = user_with_key(client, "alice")
    bob = user_with_key(client, "bob")
    bob_key = client.get(f"{API}/credentials", headers=bob).json()["items"][0]["access_key"]

    mine = client.get(f"{API}/credentials", headers=alice).json()
    assert [c["owner"] for c in mine["items"]] == ["alice"]
    assert client.get(f"{API}/credentials?user=bob", headers=alice).status_code == 403
    assert client.get(f"{API}/credentials?user=nobody", headers=alice).status_code == 403  # same as for bob
    assert client.get(f"{API}/credentials?user=nobody", headers=admin_headers).status_code == 404
    assert client.get(f"{API}/credentials?all=true", headers=alice).status_code == 403
    assert client.get(f"{API}/credentials?user=alice", headers=alice).status_code == 200
    # Someone else's key reads as absent: it can be neither seen, relabelled nor revoked.
    assert client.get(f"{API}/credentials/{bob_key}", headers=alice).status_code == 404
    assert client.patch(f"{API}/credentials/{bob_key}", json={"label": "x"}, headers=alice).status_code == 404
    assert client.delete(f"{API}/credentials/{bob_key}", headers=alice).status_code == 404
    assert whoami(client, bob)["username"] == "bob"
    r = client.post(f"{API}/credentials", json={"user": "bob"}, headers=alice)
    assert r.status_code == 403

    everyone = client.get(f"{API}/credentials?all=true", headers=admin_headers).json()
    assert sorted(c["owner"] for c in everyone["items"]) == ["alice", "bob"]
    for_bob = new_credential(client, admin_headers, user="bob", label="made by admin")
    assert for_bob["owner"] == "bob" and whoami(client, key_headers(for_bob))["username"] == "bob"
    assert client.patch(f"{API}/credentials/{bob_key}", json={"label": "ci"}, headers=admin_headers).json()[
        "label"] == "ci"
    assert client.delete(f"{API}/credentials/{bob_key}", headers=admin_headers).status_code == 204
    assert client.get(f"{API}/auth/whoami", headers=bob).status_code == 401


def test_creating_and_relabelling_is_audited_without_secrets(client, admin_headers):
    created = new_credential(client, admin_headers, label="first", expires_in="1d")
    client.patch(f"{API}/credentials/{created['access_key']}", json={"label": "second"}, headers=admin_headers)
    events = client.get(f"{API}/audit?action=credential.*", headers=admin_headers).json()["items"]
    assert [e["action"] for e in events] == ["credential.update", "credential.create"]
    update, create = events
    assert create["target"] == created["access_key"] and create["changes"]["after"]["label"] == "first"
    assert create["changes"]["after"]["owner"] == "admin" and create["changes"]["after"]["expires_at"]
    assert update["changes"] == {"before": {"label": "first"}, "after": {"label": "second"}}
    assert created["secret_key"] not in str(events)


def test_inactive_user_gets_no_new_credentials_and_old_ones_stop(client, admin_headers):
    alice = user_with_key(client, "alice")
    from allotment.api.state import mark_identity_changed
    from allotment.db import transaction
    from allotment.identity.models import User

    with transaction(client.app.state.allot.sessions) as s:
        s.scalar(select(User).where(User.username == "alice")).is_active = False
        mark_identity_changed(s)
    assert client.get(f"{API}/auth/whoami", headers=alice).status_code == 401
    r = client.post(f"{API}/credentials", json={"user": "alice"}, headers=admin_headers)
    assert r.status_code == 409 and "inactive" in r.json()["detail"]


def test_password_login_session_can_create_credentials_for_itself(client):
    add_user(client, "carol")
    session = login(client, "carol", PASSWORD)
    created = new_credential(client, session)
    assert created["owner"] == "carol"
