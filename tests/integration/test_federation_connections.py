"""Identity provider connections through the API: checked by field, secrets sealed and never shown back, unique
display names, the providers the login page offers, Test Provider, OAuth 2.0 without OIDC, and turning password
sign-in off with break-glass admins kept."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sso_helpers import (
    API,
    create_connection,
    oidc_connection,
    oidc_provider,
    provider_answers,
    set_claims,
    sso_login,
)
from user_helpers import PASSWORD, audit_events, errors_by_field, login, make_user

from allotment.federation.models import IdentityConnection
from conftest import ADMIN_PASSWORD


@pytest.fixture(scope="module")
def issuer():
    with oidc_provider() as url:
        yield url


def test_settings_are_checked_by_field(client, admin_headers):
    r = client.post(f"{API}/sso/connections", headers=admin_headers, json={
        "name": "Bad", "protocol": "oidc", "settings": {"authorization_endpoint": "ftp://x", "entity_id": "e"}})
    assert r.status_code == 422, r.text
    errors = errors_by_field(r)
    assert "must be an http:// or https:// URL with a host" in errors["authorization_endpoint"]
    assert errors["entity_id"] == ["is not a setting of oidc connections"]
    r = client.post(f"{API}/sso/connections", headers=admin_headers, json={
        "name": "Bad", "protocol": "oidc", "settings": {"issuer": "https://idp.example.com"}})
    assert errors_by_field(r) == {"client_id": ["is required for oidc connections"]}
    r = client.post(f"{API}/sso/connections", headers=admin_headers, json={
        "name": "Bad", "protocol": "oauth2", "settings": {"client_id": "c"}})
    assert set(errors_by_field(r)) == {"authorization_endpoint", "token_endpoint", "userinfo_endpoint"}
    r = client.post(f"{API}/sso/connections", headers=admin_headers, json={
        "name": "Bad", "protocol": "saml", "settings": {"idp_metadata": "<not xml"}})
    assert "is not readable SAML metadata" in errors_by_field(r)["idp_metadata"][0]
    r = client.post(f"{API}/sso/connections", headers=admin_headers, json={
        "name": "Bad", "protocol": "oidc", "provider": "duo", "settings": {"issuer": "https://i.example", "client_id": "c"}})
    assert "must be one of" in errors_by_field(r)["provider"][0]


def test_secrets_are_sealed_and_never_shown_and_names_are_unique(client, admin_headers, app):
    body = oidc_connection("Corp SSO", "https://idp.example.com")
    created = create_connection(client, admin_headers, body)
    assert created["secrets"] == {"client_secret": {"set": True}}
    assert "s3cret-client" not in client.get(f"{API}/sso/connections/{created['id']}", headers=admin_headers).text
    assert created["callback_url"] == "http://testserver/login/sso/callback"
    with app.state.allot.sessions() as session:
        stored = session.scalar(select(IdentityConnection).where(IdentityConnection.id == created["id"]))
        assert stored.sealed_secrets and "s3cret-client" not in stored.sealed_secrets
    r = client.post(f"{API}/sso/connections", headers=admin_headers, json={**body, "name": "corp sso"})
    assert r.status_code == 409 and "name" in errors_by_field(r)
    # An update changes only what it names; a secret given as null is cleared.
    r = client.patch(f"{API}/sso/connections/Corp SSO", headers=admin_headers,
                     json={"active": False, "secrets": {"client_secret": None}})
    assert r.status_code == 200, r.text
    assert r.json()["secrets"] == {"client_secret": {"set": False}} and r.json()["active"] is False
    assert r.json()["settings"]["client_id"] == "allotment"
    update = [e for e in audit_events(app, target="Corp SSO") if e.action == "sso.connection_update"][-1]
    assert update.changes["after"]["secrets_changed"] == ["client_secret"] and "s3cret" not in str(update.changes)
    assert client.delete(f"{API}/sso/connections/Corp SSO", headers=admin_headers).status_code == 204
    assert client.get(f"{API}/sso/connections/Corp SSO", headers=admin_headers).status_code == 404


def test_the_login_page_offers_active_connections_only(client, admin_headers, issuer):
    on = create_connection(client, admin_headers, oidc_connection("Shown", issuer))
    off = create_connection(client, admin_headers, {**oidc_connection("Hidden", issuer), "active": False})
    providers = client.get(f"{API}/sso/providers").json()
    assert [p["name"] for p in providers["items"]] == ["Shown"] and providers["password_login"] is True
    page = client.get("/login").text
    assert "Sign in with Shown" in page and "Hidden" not in page
    r = client.get(f"/login/sso/{off['id']}", follow_redirects=False)
    assert r.status_code == 403 and "turned off" in r.text
    assert client.get(f"/login/sso/{on['id']}", follow_redirects=False).status_code == 303


def test_test_provider_shows_the_mapped_user_without_saving_or_signing_in(client, admin_headers, issuer):
    set_claims(issuer, "tess-sub", email="tess@example.com", email_verified=True, name="Tess T",
               groups=["ml", "ops"], picture="https://example.com/tess.png")
    r = client.post(f"{API}/sso/test", headers=admin_headers, json=oidc_connection("Draft", issuer,
                                                                                   userinfo_from_id_token=False))
    assert r.status_code == 200 and r.json()["status"] == "pending", r.text
    started = r.json()
    result = client.get(f"{API}/sso/tests/{started['test_id']}", headers=admin_headers).json()
    assert result["status"] == "pending"
    r = client.get(provider_answers(started["authorize_url"], "tess-sub"), follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/ui/sso/tests/{started['test_id']}"
    result = client.get(f"{API}/sso/tests/{started['test_id']}", headers=admin_headers).json()
    assert result["status"] == "ok", result
    assert result["user"] == {"user_id": "tess-sub", "email": "tess@example.com", "name": "Tess T",
                              "username": None, "picture": "https://example.com/tess.png",
                              "groups": ["ml", "ops"], "email_verified": True}
    assert client.get(f"{API}/sso/connections", headers=admin_headers).json()["items"] == []
    assert client.get(f"{API}/users/tess", headers=admin_headers).status_code == 404
    # A provider that cannot be reached answers at once with its error.
    r = client.post(f"{API}/sso/test", headers=admin_headers,
                    json=oidc_connection("Nowhere", "http://127.0.0.1:9/nothing"))
    assert r.json()["status"] == "error" and "cannot reach the provider's discovery document" in r.json()["error"]


def test_oauth2_without_oidc_reads_the_user_info_endpoint(client, admin_headers, issuer):
    set_claims(issuer, "otto-sub", email="otto@example.com", email_verified=True, name="Otto",
               preferred_username="otto")
    conn = create_connection(client, admin_headers, {
        "name": "Plain OAuth", "protocol": "oauth2", "provider": "custom",
        "settings": {"client_id": "allotment", "authorization_endpoint": f"{issuer}/oauth2/authorize",
                     "token_endpoint": f"{issuer}/oauth2/token", "userinfo_endpoint": f"{issuer}/userinfo",
                     "scopes": "email,profile",
                     "claims": {"user_id": "sub", "username": "preferred_username"}},
        "secrets": {"client_secret": "x"}})
    assert conn["settings"]["claims"]["email"] == "email"  # unnamed mappings keep their defaults
    r = sso_login(client, conn["id"], "otto-sub")
    assert r.status_code == 303, r.text
    assert client.get(f"{API}/auth/whoami").json()["username"] == "otto"


def test_password_sign_in_can_be_turned_off_keeping_break_glass_admins(client, admin_headers, app):
    make_user(client, admin_headers, "pat")
    r = client.put(f"{API}/sso/password-login", headers=admin_headers, json={"enabled": False})
    assert r.status_code == 409 and "break_glass" in errors_by_field(r)
    r = client.put(f"{API}/sso/password-login", headers=admin_headers, json={"enabled": False, "break_glass": ["pat"]})
    assert r.status_code == 409  # pat is no platform admin
    r = client.put(f"{API}/sso/password-login", headers=admin_headers,
                   json={"enabled": False, "break_glass": ["nobody-here"]})
    assert r.status_code == 404 and "nobody-here is not a user" in r.text
    r = client.put(f"{API}/sso/password-login", headers=admin_headers,
                   json={"enabled": False, "break_glass": ["admin"]})
    assert r.status_code == 200 and r.json() == {"enabled": False, "break_glass": ["admin"]}
    r = client.post(f"{API}/auth/login", json={"username": "pat", "password": PASSWORD})
    assert r.status_code == 403 and "password sign-in is turned off" in r.json()["detail"]
    r = client.post(f"{API}/auth/login", json={"username": "nobody", "password": PASSWORD})
    assert r.status_code == 403  # the same answer for every name but a break-glass one
    login(client, "admin", ADMIN_PASSWORD)
    assert "break-glass" in client.get("/login", headers={"cookie": ""}).text
    assert [e.action for e in audit_events(app, action="sso.password_login")] == ["sso.password_login"]
    client.put(f"{API}/sso/password-login", headers=admin_headers, json={"enabled": True}).raise_for_status()
    assert client.post(f"{API}/auth/login", json={"username": "pat", "password": PASSWORD}).status_code == 200
