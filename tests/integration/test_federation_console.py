"""The single sign-on console pages over HTTP: the connections table with its toggle, the form per protocol with
field errors, Test Provider from the form (through a real OIDC provider) and the password sign-in rule."""

from __future__ import annotations

import re

import pytest
from sso_helpers import API, oidc_provider, provider_answers, set_claims

from conftest import ADMIN_PASSWORD

TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture(scope="module")
def issuer():
    with oidc_provider() as url:
        yield url


def console_admin(client) -> str:
    token = TOKEN.search(client.get("/login").text).group(1)
    r = client.post("/login", data={"username": "admin", "password": ADMIN_PASSWORD, "csrf_token": token},
                    follow_redirects=False)
    assert r.status_code == 303
    return TOKEN.search(client.get("/ui/sso").text).group(1)


def oidc_form(csrf: str, issuer: str, **extra) -> dict:
    return {"csrf_token": csrf, "protocol": "oidc", "name": "Console SSO", "provider": "keycloak", "active": "true",
            "issuer": issuer, "client_id": "allotment", "client_secret": "console-secret",
            "userinfo_from_id_token": "true", "require_email_verified": "true", "create_users": "true",
            "verify_signature": "true", "code_challenge_method": "S256", "scopes": "openid, email, profile",
            "claims.user_id": "sub", "claims.email": "email", "claims.name": "name", "claims.groups": "groups",
            **extra}


def test_admin_creates_toggles_and_deletes_a_connection(client, issuer):
    csrf = console_admin(client)
    assert "Single sign-on" in client.get("/ui/").text  # in the admin's navigation
    page = client.get("/ui/sso/new?protocol=oidc").text
    assert "Code challenge method" in page and "IdP metadata" not in page
    r = client.post("/ui/sso/new", data={**oidc_form(csrf, issuer), "client_id": "", "issuer": "not a url"})
    assert r.status_code == 422
    assert 'data-testid="errors-issuer"' in r.text and "Client ID is required for oidc connections" not in r.text
    r = client.post("/ui/sso/new", data=oidc_form(csrf, issuer), follow_redirects=False)
    assert r.status_code == 303, r.text
    detail = client.get(r.headers["location"]).text
    assert "http://testserver/login/sso/callback" in detail and "console-secret" not in detail
    assert "openid, email, profile" in detail
    table = client.get("/ui/sso").text
    assert "Console SSO" in table and "keycloak" in table and "OIDC" in table
    conn = client.get(f"{API}/sso/connections").json()["items"][0]
    assert conn["settings"]["scopes"] == ["openid", "email", "profile"] and conn["secrets"]["client_secret"]["set"]
    r = client.post(f"/ui/sso/{conn['id']}/active", data={"csrf_token": csrf, "active": "false"},
                    follow_redirects=False)
    assert r.status_code == 303 and client.get(f"{API}/sso/providers").json()["items"] == []
    # Saving the form again without a secret keeps the secret.
    r = client.post(f"/ui/sso/{conn['id']}", data={**oidc_form(csrf, issuer, client_secret=""),
                                                   "name": "Renamed SSO"}, follow_redirects=False)
    assert r.status_code == 303, r.text
    again = client.get(f"{API}/sso/connections/{conn['id']}").json()
    assert again["name"] == "Renamed SSO" and again["secrets"]["client_secret"]["set"] and again["active"]
    r = client.post(f"/ui/sso/{conn['id']}/delete", data={"csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 303 and client.get(f"{API}/sso/connections").json()["items"] == []


def test_test_provider_from_the_form_shows_the_mapped_user(client, issuer):
    set_claims(issuer, "quinn-sub", email="quinn@example.com", email_verified=True, name="Quinn Q", groups=["ml"])
    csrf = console_admin(client)
    r = client.post("/ui/sso/new", data={**oidc_form(csrf, issuer), "action": "test"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith(issuer), r.text
    r = client.get(provider_answers(r.headers["location"], "quinn-sub"), follow_redirects=True)
    assert r.status_code == 200
    assert 'data-testid="mapped-email">quinn@example.com (verified)' in r.text and "Quinn Q" in r.text
    assert client.get(f"{API}/sso/connections").json()["items"] == []  # nothing saved
    r = client.post("/ui/sso/new", data={**oidc_form(csrf, "http://127.0.0.1:9"), "action": "test"})
    assert r.status_code == 502 and 'data-testid="test-error"' in r.text


def test_password_sign_in_rule_from_the_console(client):
    csrf = console_admin(client)
    r = client.post("/ui/sso/password-login", data={"csrf_token": csrf, "break_glass": ""})
    assert r.status_code == 409 and 'data-testid="errors-break_glass"' in r.text
    r = client.post("/ui/sso/password-login", data={"csrf_token": csrf, "break_glass": "admin"},
                    follow_redirects=False)
    assert r.status_code == 303
    assert client.get(f"{API}/sso/password-login").json() == {"enabled": False, "break_glass": ["admin"]}
