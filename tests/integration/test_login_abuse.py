"""Abuse of password sign-in and of credentials: the lockout tells nothing about which accounts exist, anyone can
be locked out only from password sign-in (admins unlock), and sources that keep failing are throttled."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from user_helpers import API, PASSWORD, add_credential, audit_events, login, make_user

from allotment.api.app import create_app
from allotment.identity import throttle
from conftest import ADMIN_PASSWORD, make_settings

WRONG = "Wr0ng-password!"


def attempt(client, username: str, password: str):
    return client.post(f"{API}/auth/login", json={"username": username, "password": password})


@pytest.fixture
def verifications(monkeypatch) -> list[str]:
    """Every argon2 verification the server runs (argon2-cffi's PasswordHasher.verify)."""
    calls: list[str] = []
    real = PasswordHasher.verify

    def counting(self, hash_, password):
        calls.append(password if isinstance(password, str) else password.decode())
        return real(self, hash_, password)

    monkeypatch.setattr(PasswordHasher, "verify", counting)
    return calls


def lock(client, username: str, settings) -> None:
    for _ in range(settings.login_max_failures):
        assert attempt(client, username, WRONG).status_code == 401


def test_unknown_known_and_locked_accounts_get_the_same_answer(client, admin_headers, settings, verifications):
    make_user(client, admin_headers, "alice")
    make_user(client, admin_headers, "bob")
    lock(client, "alice", settings)
    verifications.clear()
    answers = {
        "unknown user": attempt(client, "nobody", WRONG),
        "known user, wrong password": attempt(client, "bob", WRONG),
        "locked user, wrong password": attempt(client, "alice", WRONG),
        # The right password on a locked account says nothing either: otherwise the lock would stop nobody from
        # guessing (the answer would change exactly when the guess is right).
        "locked user, right password": attempt(client, "alice", PASSWORD),
    }
    bodies = {what: (r.status_code, r.headers["content-type"], r.json()) for what, r in answers.items()}
    assert len(set(map(repr, bodies.values()))) == 1, bodies
    status, _, body = bodies["unknown user"]
    assert status == 401 and body["detail"].startswith("wrong username or password")
    # The same work for each: exactly one argon2 verification (a dummy hash for the unknown user).
    assert verifications == [WRONG, WRONG, WRONG, PASSWORD]


def test_the_lock_is_recorded_and_lifts_for_the_right_password_only_after_unlock(client, admin_headers, settings,
                                                                                    app):
    make_user(client, admin_headers, "alice")
    lock(client, "alice", settings)
    assert client.get(f"{API}/users/alice", headers=admin_headers).json()["locked_until"] is not None
    assert [e.action for e in audit_events(app, target="alice") if e.action.startswith("auth.")] == [
        "auth.login_failed"] * 4 + ["auth.locked"]
    assert attempt(client, "alice", PASSWORD).status_code == 401

    r = client.post(f"{API}/users/alice/unlock", headers=admin_headers)
    assert r.status_code == 200, r.text
    assert r.json()["locked_until"] is None
    event = audit_events(app, "user.unlock", "alice")[-1]
    assert event.actor == "admin" and event.changes["after"] == {"locked_until": None}
    assert attempt(client, "alice", PASSWORD).status_code == 200


def test_only_platform_admins_unlock(client, admin_headers, settings):
    make_user(client, admin_headers, "alice")
    make_user(client, admin_headers, "bob")
    bob = login(client, "bob", PASSWORD)
    lock(client, "alice", settings)
    assert client.post(f"{API}/users/alice/unlock", headers=bob).status_code == 403
    assert client.post(f"{API}/users/alice/unlock").status_code == 401
    assert client.post(f"{API}/users/nobody/unlock", headers=admin_headers).status_code == 404


def test_a_lock_never_blocks_credentials_so_a_locked_admin_can_unlock_themselves(client, app, settings):
    credential = {"Authorization": f"Bearer {add_credential(app, 'admin')}"}
    lock(client, "admin", settings)  # five anonymous requests lock the only admin
    assert attempt(client, "admin", ADMIN_PASSWORD).status_code == 401
    assert client.get(f"{API}/auth/whoami", headers=credential).status_code == 200
    assert client.post(f"{API}/users/admin/unlock", headers=credential).status_code == 200
    assert attempt(client, "admin", ADMIN_PASSWORD).status_code == 200


def test_unlocking_an_unlocked_account_changes_and_records_nothing(client, admin_headers, app):
    make_user(client, admin_headers, "alice")
    assert client.post(f"{API}/users/alice/unlock", headers=admin_headers).status_code == 200
    assert audit_events(app, "user.unlock") == []


# --- per-source rate limits ---------------------------------------------------------------------------------------

@pytest.fixture
def strict(tmp_path, backend):
    """An app with small per-source limits: 3 failed logins and 3 failed credentials at once, refilling slowly."""
    settings = make_settings(tmp_path, backend, login_failures_burst=3, login_failures_per_minute=1,
                             credential_failures_burst=3, credential_failures_per_minute=1)
    app = create_app(settings)
    with TestClient(app) as c, TestClient(app, client=("10.0.0.9", 5000)) as other:
        yield app, c, other


def test_failed_logins_from_one_source_are_throttled_with_retry_after(strict, verifications):
    _, client, other = strict
    headers = login(client, "admin", ADMIN_PASSWORD)
    make_user(client, headers, "alice")
    assert login(client, "alice", PASSWORD)  # successful logins give their attempt back
    for name in ("alice", "nobody", "bob"):
        assert attempt(client, name, WRONG).status_code == 401
    verifications.clear()
    r = attempt(client, "alice", PASSWORD)
    assert r.status_code == 429, r.text
    assert r.headers["content-type"] == "application/problem+json" and r.json()["code"] == "login_rate_limited"
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    assert verifications == []  # refused before any argon2 work
    # Another source is not affected, and the account is not locked by the throttled source.
    assert attempt(other, "alice", PASSWORD).status_code == 200


def test_the_consoles_sign_in_form_shares_the_limit(strict):
    _, client, _ = strict
    for _ in range(3):
        attempt(client, "nobody", WRONG)
    page = client.get("/login")
    token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    r = client.post("/login", data={"username": "admin", "password": ADMIN_PASSWORD, "csrf_token": token},
                    follow_redirects=False)
    assert r.status_code == 429 and "Retry-After" in r.headers
    assert "text/html" in r.headers["content-type"]


def test_failed_credentials_are_throttled_and_audited_once_per_source_and_window(strict, monkeypatch):
    monkeypatch.setattr(throttle, "REFUSED_WRITE_INTERVAL_S", 0.0)  # write every refusal, so the counts are exact
    app, client, other = strict
    good = add_credential(app, "admin")
    access_key = good.split(":")[0]
    answers = [client.get(f"{API}/auth/whoami", headers={"Authorization": f"Bearer {access_key}:wrong-{i}"})
               for i in range(10)]
    assert [r.status_code for r in answers] == [401] * 3 + [429] * 7
    assert answers[-1].json()["code"] == "credential_rate_limited" and int(answers[-1].headers["Retry-After"]) >= 1
    # The right secret from the throttled source waits too (it is not cached yet); from elsewhere it works.
    assert client.get(f"{API}/auth/whoami", headers={"Authorization": f"Bearer {good}"}).status_code == 429
    assert other.get(f"{API}/auth/whoami", headers={"Authorization": f"Bearer {good}"}).status_code == 200

    events = audit_events(app, "auth.credential_failed")
    assert len(events) == 1, [e.changes for e in events]
    event = events[0]
    assert event.source == "testclient" and event.target == "testclient"
    after = event.changes["after"]
    assert (after["failures"], after["refused"], after["access_keys"]) == (3, 8, [access_key])
    assert "wrong-" not in repr(event.changes)  # never the secret


def test_unknown_access_keys_are_counted_but_not_named(strict):
    app, client, _ = strict
    for key in ("AKNOPE", "my-secret-pasted-as-key"):
        client.get(f"{API}/auth/whoami", headers={"Authorization": f"Bearer {key}:x"})
    (event,) = audit_events(app, "auth.credential_failed")
    assert event.changes["after"]["failures"] == 2 and event.changes["after"]["access_keys"] == []


def test_the_limiters_memory_is_bounded():
    limiter = throttle.RateLimiter(burst=1, per_minute=1, max_keys=100)
    for i in range(1000):
        limiter.take(f"10.0.{i // 256}.{i % 256}")
    assert len(limiter) <= 100
