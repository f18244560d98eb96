"""Helpers for the credential, service account, cluster role and audit tests: principals set up directly through the
services (so these tests do not depend on the users and groups API), and headers for a credential."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from allotment.db import transaction
from allotment.identity.models import Group, GroupMember, User
from allotment.identity.service import create_user

PASSWORD = "Us3r-password!"
API = "/api/v1"


def add_user(client: TestClient, username: str, *, platform_admin: bool = False) -> None:
    with transaction(client.app.state.allot.sessions) as session:
        create_user(session, email=f"{username}@example.com", username=username, password=PASSWORD,
                    platform_admin=platform_admin)


def add_group(client: TestClient, name: str, members: list[str]) -> None:
    from allotment.api.state import mark_identity_changed

    with transaction(client.app.state.allot.sessions) as session:
        group = Group(name=name)
        session.add(group)
        session.flush()
        for username in members:
            user = session.scalar(select(User).where(User.username == username))
            session.add(GroupMember(group_id=group.id, user_id=user.id))
        mark_identity_changed(session)


def login(client: TestClient, username: str, password: str) -> dict[str, str]:
    """Like conftest.login. Not imported from there: `conftest` names whichever conftest.py (tests/e2e,
    tests/unit/core) pytest imported last, so `from conftest import ...` breaks depending on collection order."""
    r = client.post(f"{API}/auth/login", json={"username": username, "password": password})
    assert r.status_code == 200, r.text
    client.cookies.clear()
    return {"Authorization": f"Bearer {r.json()['token']}"}


def key_headers(created: dict) -> dict[str, str]:
    return {"Authorization": f"Bearer {created['access_key']}:{created['secret_key']}"}


def new_credential(client: TestClient, headers: dict, **body) -> dict:
    r = client.post(f"{API}/credentials", json=body, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


def user_with_key(client: TestClient, username: str, **kwargs) -> dict[str, str]:
    """A new user and headers carrying a credential of theirs."""
    add_user(client, username, **kwargs)
    return key_headers(new_credential(client, login(client, username, PASSWORD)))


def whoami(client: TestClient, headers: dict) -> dict:
    r = client.get(f"{API}/auth/whoami", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()
