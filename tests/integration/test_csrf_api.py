"""CSRF on the REST API: a request authenticated by the console's session cookie may change something only when it
carries the console's CSRF token or comes from this server's own origin; bearer tokens are unaffected."""

from __future__ import annotations

import re

import pytest
from user_helpers import API, make_user

from conftest import ADMIN_PASSWORD

SAME_ORIGIN = "http://testserver"  # TestClient's base URL
PAGE_TOKEN = re.compile(r'"X-CSRF-Token": "([^"]+)"')


@pytest.fixture
def cookie_client(client, admin_headers):
    """The client holding the admin's session cookie (what a browser that used the console has)."""
    make_user(client, admin_headers, "carol")
    r = client.post(f"{API}/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})
    assert r.status_code == 200 and client.cookies.get("allot_session")
    return client


def carol_is_active(client, admin_headers) -> bool:
    return client.get(f"{API}/users/carol", headers=admin_headers).json()["is_active"]


def deactivate_carol(client, **headers):
    return client.post(f"{API}/users/carol/deactivate", headers=headers)


@pytest.mark.parametrize("headers", [
    {"Origin": "http://evil.example"},
    {"Origin": "http://testserver:8888"},  # another port of the same host: a job's notebook, for example
    {"Origin": "https://testserver"},
    {"Origin": "null"},
    {"Referer": "http://evil.example/page"},
    {},  # neither Origin nor Referer nor token
    {"X-CSRF-Token": "forged"},
    {"Origin": "http://evil.example", "Referer": f"{SAME_ORIGIN}/ui/"},  # Origin wins when present
])
def test_cross_site_cookie_requests_are_refused(cookie_client, admin_headers, headers):
    r = deactivate_carol(cookie_client, **headers)
    assert r.status_code == 403, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "csrf_failed"
    assert "CSRF" in r.json()["detail"]
    cookie_client.cookies.clear()
    assert carol_is_active(cookie_client, admin_headers)


@pytest.mark.parametrize("headers", [
    {"Origin": SAME_ORIGIN},
    {"Origin": "http://testserver:80"},
    {"Referer": f"{SAME_ORIGIN}/ui/users"},
])
def test_same_origin_cookie_requests_pass(cookie_client, admin_headers, headers):
    assert deactivate_carol(cookie_client, **headers).status_code == 200
    cookie_client.cookies.clear()
    assert not carol_is_active(cookie_client, admin_headers)


def test_the_consoles_token_passes(cookie_client, admin_headers):
    page = cookie_client.get("/ui/")
    token = PAGE_TOKEN.search(page.text).group(1)  # what htmx sends with every request of the page
    assert deactivate_carol(cookie_client, **{"X-CSRF-Token": token}).status_code == 200


def test_bearer_tokens_and_safe_methods_are_unaffected(cookie_client, admin_headers):
    assert cookie_client.get(f"{API}/users/carol", headers={"Origin": "http://evil.example"}).status_code == 200
    r = cookie_client.post(f"{API}/users/carol/deactivate", headers={**admin_headers, "Origin": "http://evil.example"})
    assert r.status_code == 200


def test_a_public_route_ignores_the_check(cookie_client):
    """Signing in again with a cookie still set is not a cookie-authenticated change."""
    r = cookie_client.post(f"{API}/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})
    assert r.status_code == 200
