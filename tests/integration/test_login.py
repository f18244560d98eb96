"""Login, lockout after repeated failures, and changing one's own password."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select, update
from user_helpers import API, PASSWORD, audit_events, errors_by_field, login, make_user

from allotment.db import utcnow
from allotment.errors import Unauthenticated
from allotment.identity import service
from allotment.identity.models import User

LETTER = "must contain at least one letter (A-Z or a-z)"
DIGIT = "must contain at least one digit (0-9)"
SPECIAL = "must contain at least one special character (ASCII punctuation such as ! or #)"

WRONG = "Wr0ng-password!"
REFUSED = "wrong username or password"  # how every refused sign-in starts, a locked account's included


def attempt(client, username: str, password: str):
    return client.post(f"{API}/auth/login", json={"username": username, "password": password})


def locked_until(client, admin_headers, username: str) -> datetime | None:
    """The lock's end as an admin sees it (sign-in itself never says: see test_login_abuse.py)."""
    value = client.get(f"{API}/users/{username}", headers=admin_headers).json()["locked_until"]
    return datetime.fromisoformat(value) if value else None


def stored_user(app, username: str) -> User:
    with app.state.allot.sessions() as session:
        return session.scalar(select(User).where(User.username_key == username))


def test_five_failures_lock_the_account_for_twenty_minutes(client, admin_headers, app):
    make_user(client, admin_headers, "alice")
    for _ in range(4):
        r = attempt(client, "alice", WRONG)
        assert r.status_code == 401 and r.json()["detail"].startswith(REFUSED)
    before = utcnow()
    r = attempt(client, "alice", WRONG)
    assert r.status_code == 401 and r.json()["detail"].startswith(REFUSED), r.text
    assert r.headers["content-type"] == "application/problem+json"
    until = locked_until(client, admin_headers, "alice")
    assert before + timedelta(minutes=19, seconds=58) <= until <= utcnow() + timedelta(minutes=20, seconds=1)
    # While locked, even the right password is refused (with the same answer as a wrong one).
    r = attempt(client, "alice", PASSWORD)
    assert r.status_code == 401 and r.json()["detail"].startswith(REFUSED)
    # The lock covers the account however it is named.
    assert attempt(client, "ALICE@example.com", PASSWORD).status_code == 401
    assert locked_until(client, admin_headers, "alice") == until
    assert [e.action for e in audit_events(app, target="alice") if e.action.startswith("auth.")] == [
        "auth.login_failed"] * 4 + ["auth.locked"]


def test_the_lock_lifts_when_its_time_has_passed(client, admin_headers, app):
    make_user(client, admin_headers, "alice")
    for _ in range(5):
        attempt(client, "alice", WRONG)
    assert attempt(client, "alice", PASSWORD).status_code == 401
    with app.state.allot.sessions() as session:  # step past the lock instead of waiting 20 minutes
        session.execute(update(User).where(User.username_key == "alice")
                        .values(locked_until=utcnow() - timedelta(seconds=1)))
        session.commit()
    r = attempt(client, "alice", PASSWORD)
    assert r.status_code == 200, r.text
    user = stored_user(app, "alice")
    assert user.locked_until is None and user.failed_logins == 0


def test_after_a_lock_expires_the_count_starts_again(client, admin_headers, app):
    make_user(client, admin_headers, "alice")
    for _ in range(5):
        attempt(client, "alice", WRONG)
    with app.state.allot.sessions() as session:
        session.execute(update(User).where(User.username_key == "alice")
                        .values(locked_until=utcnow() - timedelta(seconds=1)))
        session.commit()
    for _ in range(4):
        assert attempt(client, "alice", WRONG).status_code == 401
    assert locked_until(client, admin_headers, "alice") < utcnow()  # the old lock, lifted
    assert attempt(client, "alice", WRONG).status_code == 401
    assert locked_until(client, admin_headers, "alice") > utcnow() + timedelta(minutes=19)


def test_a_successful_login_resets_the_failure_count(client, admin_headers):
    make_user(client, admin_headers, "alice")
    for _ in range(4):
        attempt(client, "alice", WRONG)
    login(client, "alice", PASSWORD)
    for _ in range(4):
        assert attempt(client, "alice", WRONG).status_code == 401
    login(client, "alice", PASSWORD)


def test_lockout_with_an_injected_clock(client, admin_headers, app):
    """The service takes `now`, so the 20-minute boundary itself is tested without waiting."""
    make_user(client, admin_headers, "alice")
    state = app.state.allot
    t0 = utcnow().replace(microsecond=0)

    def try_login(password: str, at: datetime):
        with state.sessions() as session:
            try:
                return service.login(session, "alice", password, "test", state.secret_key, 5, 20, 1, now=at)
            finally:
                session.commit()

    for i in range(4):
        with pytest.raises(Unauthenticated):
            try_login(WRONG, t0 + timedelta(seconds=i))
    with pytest.raises(Unauthenticated):
        try_login(WRONG, t0 + timedelta(seconds=4))
    assert stored_user(app, "alice").locked_until == t0 + timedelta(seconds=4, minutes=20)
    with pytest.raises(Unauthenticated):
        try_login(PASSWORD, t0 + timedelta(minutes=20, seconds=3))
    user, token = try_login(PASSWORD, t0 + timedelta(minutes=20, seconds=5))
    assert user.username == "alice" and token.startswith("st_")


def test_unknown_users_and_inactive_users_cannot_log_in(client, admin_headers):
    assert attempt(client, "nobody", WRONG).status_code == 401
    make_user(client, admin_headers, "alice")
    client.post(f"{API}/users/alice/deactivate", headers=admin_headers).raise_for_status()
    r = attempt(client, "alice", PASSWORD)
    assert r.status_code == 401 and r.json()["detail"] == "the account is inactive"
    # A wrong password gives the generic message, so inactivity is only revealed to whoever knows the password.
    assert attempt(client, "alice", WRONG).json()["detail"].startswith(REFUSED)


def test_successful_logins_are_audited(client, admin_headers, app):
    make_user(client, admin_headers, "alice")
    login(client, "alice", PASSWORD)
    event = audit_events(app, "auth.login", "alice")[-1]
    assert event.actor == "alice" and event.source is not None


# --- POST /auth/password ------------------------------------------------------------------------------------------

def change(client, headers, current: str, new: str):
    return client.post(f"{API}/auth/password", headers=headers,
                       json={"current_password": current, "new_password": new})


def test_change_own_password(client, admin_headers, app):
    make_user(client, admin_headers, "alice", need_password_change=True)
    alice = login(client, "alice", PASSWORD)
    laptop = login(client, "alice", PASSWORD)
    r = change(client, alice, PASSWORD, "Br4nd-new-pw")
    assert r.status_code == 204, r.text
    assert client.get(f"{API}/auth/whoami", headers=alice).status_code == 200
    assert client.get(f"{API}/auth/whoami", headers=laptop).status_code == 401  # other sessions end
    assert attempt(client, "alice", PASSWORD).status_code == 401
    login(client, "alice", "Br4nd-new-pw")
    assert client.get(f"{API}/users/alice", headers=admin_headers).json()["need_password_change"] is False
    event = audit_events(app, "user.password_change")[-1]
    assert event.actor == "alice"
    assert "Br4nd" not in str(event.changes) and PASSWORD not in str(event.changes)


def test_change_needs_the_right_current_password(client, admin_headers):
    make_user(client, admin_headers, "alice")
    alice = login(client, "alice", PASSWORD)
    r = change(client, alice, WRONG, "Br4nd-new-pw")
    assert r.status_code == 403
    assert errors_by_field(r) == {"current_password": ["is not your current password"]}
    login(client, "alice", PASSWORD)


def test_new_password_must_follow_the_policy(client, admin_headers):
    make_user(client, admin_headers, "alice")
    alice = login(client, "alice", PASSWORD)
    r = change(client, alice, PASSWORD, "abc")
    assert r.status_code == 422
    assert errors_by_field(r) == {"new_password": ["must be at least 8 characters long",
                                                   DIGIT,
                                                   SPECIAL]}
    r = change(client, alice, PASSWORD, PASSWORD)
    assert errors_by_field(r) == {"new_password": ["must differ from the current password"]}
    assert change(client, {}, PASSWORD, "Br4nd-new-pw").status_code == 401


def test_wrong_current_passwords_are_throttled_not_locked(client, admin_headers, app):
    """A stolen session must not become an unlimited password-guessing oracle, nor a way to lock the owner's
    password sign-in."""
    make_user(client, admin_headers, "alice")
    alice = login(client, "alice", PASSWORD)
    for _ in range(5):
        assert change(client, alice, WRONG, "Br4nd-new-pw").status_code == 403
    r = change(client, alice, PASSWORD, "Br4nd-new-pw")  # throttled before the check: a right guess looks the same
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    assert client.get(f"{API}/users/alice", headers=admin_headers).json()["locked_until"] is None
    login(client, "alice", PASSWORD)
    assert len(audit_events(app, "auth.password_confirm_failed")) == 5


def test_an_admin_password_reset_lifts_a_lock(client, admin_headers):
    make_user(client, admin_headers, "alice")
    for _ in range(5):
        attempt(client, "alice", WRONG)
    r = client.patch(f"{API}/users/alice", headers=admin_headers, json={"password": "Res3t-by-admin"})
    assert r.status_code == 200 and r.json()["locked_until"] is None
    login(client, "alice", "Res3t-by-admin")


def test_reactivation_lifts_a_lock(client, admin_headers):
    make_user(client, admin_headers, "alice")
    for _ in range(5):
        attempt(client, "alice", WRONG)
    client.post(f"{API}/users/alice/deactivate", headers=admin_headers).raise_for_status()
    r = client.post(f"{API}/users/alice/activate", headers=admin_headers)
    assert r.json()["locked_until"] is None
    login(client, "alice", PASSWORD)


def test_logout_ends_the_session(client, admin_headers):
    make_user(client, admin_headers, "alice")
    alice = login(client, "alice", PASSWORD)
    assert client.post(f"{API}/auth/logout", headers=alice).status_code == 204
    assert client.get(f"{API}/auth/whoami", headers=alice).status_code == 401
