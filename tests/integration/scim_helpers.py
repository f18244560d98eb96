"""Helpers for the SCIM tests: a provisioning client with a token, and scim2-client over Starlette's TestClient.

scim2-client's own engines are httpx2 (not installed), WSGI (allotment is ASGI) and ASGI (asynchronous, while
scim2-tester's check_server needs a synchronous client); the TestClient is a synchronous httpx client that calls
the ASGI app in process, so the adapter is the few lines scim2-client's httpx2 engine has.
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from scim2_client.client import BaseSyncSCIMClient

from allotment.core.permissions import Principal
from allotment.db import transaction
from allotment.federation.scim import clients
from allotment.identity.service import find_user

BASE = "http://testserver/scim/v2/"


class TestClientSCIM(BaseSyncSCIMClient):
    __test__ = False

    def __init__(self, client: TestClient, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.client = client

    def _parse_json(self, response: Any) -> Any:
        return response.json()

    def request(self, method: str, url: str, **kwargs: Any) -> Any:
        return self.client.request(method, url, **kwargs)


def admin_principal(session) -> Principal:
    admin = find_user(session, "admin")
    return Principal(id=admin.id, kind=admin.kind, username=admin.username, is_platform_admin=True)


def provisioning_token(app, name: str = "okta") -> str:
    """A new provisioning client `name` and a token for it, issued by the bootstrap admin."""
    state = app.state.allot
    with transaction(state.sessions) as session:
        actor = admin_principal(session)
        client = clients.create_client(session, actor, name, None, None)
        _, token = clients.issue_token(session, state.secret_key, actor, client, None, None)
    return token


def scim_http(app, token: str | None) -> TestClient:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return TestClient(app, base_url=BASE, headers=headers)
