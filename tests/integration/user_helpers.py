"""Helpers shared by the users, groups and login API tests."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from allotment.audit.models import AuditEvent
from allotment.identity.models import Credential, User
from allotment.identity.secrets import new_access_key, new_secret, token_digest

API = "/api/v1"
PASSWORD = "Passw0rd!"


def make_user(client, headers, username: str, password: str = PASSWORD, **fields: Any) -> dict:
    body = {"email": f"{username}@example.com", "username": username, "password": password, **fields}
    r = client.post(f"{API}/users", headers=headers, json=body)
    assert r.status_code == 201, r.text
    return r.json()


def errors_by_field(response) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for e in response.json().get("errors", []):
        out.setdefault(e["field"], []).append(e["message"])
    return out


def audit_events(app, action: str | None = None, target: str | None = None) -> list[AuditEvent]:
    with app.state.allot.sessions() as session:
        query = select(AuditEvent).order_by(AuditEvent.id)
        if action:
            query = query.where(AuditEvent.action == action)
        if target:
            query = query.where(AuditEvent.target == target)
        return list(session.scalars(query))


def add_credential(app, username: str) -> str:
    """Insert a credential row for a user the way the credentials service stores it; returns the bearer value."""
    state = app.state.allot
    access_key, secret = new_access_key(), new_secret()
    with state.sessions() as session:
        user = session.scalar(select(User).where(User.username_key == username.lower()))
        session.add(Credential(access_key=access_key, secret_hash=token_digest(state.secret_key, secret),
                               user_id=user.id, label="test"))
        session.commit()
    return f"{access_key}:{secret}"


def login(client, username: str, password: str) -> dict[str, str]:
    """Sign in and return the bearer header (defined here, not imported from conftest: tests/e2e has its own)."""
    r = client.post(f"{API}/auth/login", json={"username": username, "password": password})
    assert r.status_code == 200, r.text
    client.cookies.clear()  # tests authenticate with explicit headers only
    return {"Authorization": f"Bearer {r.json()['token']}"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def credentials_of(app, username: str) -> list[Credential]:
    with app.state.allot.sessions() as session:
        user = session.scalar(select(User).where(User.username_key == username.lower()))
        return list(session.scalars(select(Credential).where(Credential.user_id == user.id)))
