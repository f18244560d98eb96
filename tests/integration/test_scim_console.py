"""The console's SCIM page: create a provisioning client, issue a token shown once, revoke it."""

from __future__ import annotations

import re

import pytest
from inventory_helpers import make_user
from scim_helpers import scim_http

from conftest import ADMIN_PASSWORD

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
pytestmark = pytest.mark.parametrize("backend", ["sqlite"])


def console_admin(client) -> str:
    token = CSRF.search(client.get("/login").text).group(1)
    r = client.post("/login", data={"username": "admin", "password": ADMIN_PASSWORD, "csrf_token": token},
                    follow_redirects=False)
    assert r.status_code == 303, r.text
    return CSRF.search(client.get("/ui/scim").text).group(1)


def test_admin_creates_a_client_issues_a_token_once_and_revokes_it(client):
    csrf = console_admin(client)
    page = client.get("/ui/scim")
    assert page.status_code == 200 and "http://testserver/scim/v2" in page.text and 'href="/ui/scim"' in page.text

    r = client.post("/ui/scim", data={"csrf_token": csrf, "name": "two words"})
    assert r.status_code == 422 and 'data-testid="errors-name"' in r.text
    r = client.post("/ui/scim", data={"csrf_token": csrf, "name": "okta", "description": "Okta prod"},
                    follow_redirects=False)
    assert r.status_code == 303
    r = client.post("/ui/scim/okta/tokens", data={"csrf_token": csrf, "label": "tenant-1"}, follow_redirects=False)
    assert r.status_code == 303
    shown = client.get(r.headers["location"])
    token = re.search(r'data-testid="scim-token">([^<]+)<', shown.text).group(1)
    assert scim_http(client.app, token).get("Users").status_code == 200
    # Shown once: the same page again no longer holds it.
    assert token not in client.get(r.headers["location"]).text and token not in client.get("/ui/scim").text

    token_id = re.search(r'/ui/scim/okta/tokens/(\d+)/revoke', client.get("/ui/scim").text).group(1)
    r = client.post(f"/ui/scim/okta/tokens/{token_id}/revoke", data={"csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 303
    assert scim_http(client.app, token).get("Users").status_code == 401
    assert "revoked" in client.get("/ui/scim").text


def test_the_page_is_for_platform_admins_only(client):
    alice = make_user(client, "alice")
    assert client.get("/ui/scim", headers=alice, follow_redirects=False).status_code == 403
