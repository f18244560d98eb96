"""Single sign-on through a real OIDC provider (oidc-provider-mock, started here): the authorization code flow with
PKCE and a nonce, JIT creation, email_verified, existing and invited users only, group sync on repeated logins,
inactive and locked accounts refused, refused tokens (tampered, expired, signed by another key), the audit."""

from __future__ import annotations

import time
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import select, update
from sso_helpers import (
    API,
    create_connection,
    oidc_connection,
    oidc_provider,
    provider_answers,
    set_claims,
    sso_login,
    to_provider,
)
from user_helpers import audit_events, make_user

from allotment.db import utcnow
from allotment.federation.oidc import ProviderError, verify_id_token
from allotment.identity.models import User

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def issuer():
    with oidc_provider() as url:
        yield url


def whoami(client) -> dict:
    r = client.get(f"{API}/auth/whoami")
    assert r.status_code == 200, r.text
    return r.json()


def test_code_flow_with_pkce_creates_the_user_and_signs_in(client, admin_headers, app, issuer):
    set_claims(issuer, "alice-sub", email="alice@example.com", email_verified=True, name="Alice Liddell",
               preferred_username="alice")
    conn = create_connection(client, admin_headers, oidc_connection("Example SSO", issuer))
    authorize = to_provider(client, f"/login/sso/{conn['id']}")
    query = parse_qs(urlsplit(authorize).query)
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) == 43
    assert query["nonce"] and query["state"] and query["redirect_uri"] == ["http://testserver/login/sso/callback"]
    r = client.get(provider_answers(authorize, "alice-sub"), follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/ui/", r.text
    me = whoami(client)
    assert me["username"] == "alice" and not me["is_platform_admin"]
    with app.state.allot.sessions() as session:
        user = session.scalar(select(User).where(User.username_key == "alice"))
        assert user.email == "alice@example.com" and user.full_name == "Alice Liddell"
        assert user.password_hash is None  # federated users have no password to guess
    logins = [e for e in audit_events(app, target="alice") if e.action == "auth.login"]
    assert logins and logins[-1].changes == {"after": {"via": "sso:Example SSO"}}
    # The second login finds the same account through its link.
    client.cookies.clear()
    assert sso_login(client, conn["id"], "alice-sub").status_code == 303
    assert whoami(client)["username"] == "alice"


def test_a_callback_replayed_or_from_another_browser_is_refused(client, admin_headers, issuer):
    set_claims(issuer, "bob-sub", email="bob@example.com", email_verified=True)
    conn = create_connection(client, admin_headers, oidc_connection("Replay", issuer))
    callback = provider_answers(to_provider(client, f"/login/sso/{conn['id']}"), "bob-sub")
    stolen = client.cookies.get("allot_sso_state")
    client.cookies.delete("allot_sso_state", path="/login/sso")
    r = client.get(callback, follow_redirects=False)
    assert r.status_code == 403 and "not started in this browser" in r.text
    client.cookies.set("allot_sso_state", stolen, path="/login/sso")
    assert client.get(callback, follow_redirects=False).status_code == 303
    r = client.get(callback, follow_redirects=False)
    assert r.status_code == 401 and "expired or was already used" in r.text


def test_unverified_email_is_refused_and_audited(client, admin_headers, app, issuer):
    set_claims(issuer, "carol-sub", email="carol@example.com", email_verified=False)
    conn = create_connection(client, admin_headers, oidc_connection("Verified only", issuer))
    r = sso_login(client, conn["id"], "carol-sub")
    assert r.status_code == 401 and "email_verified" in r.text
    failed = [e for e in audit_events(app, target="Verified only") if e.action == "auth.login_failed"]
    assert failed and "email_verified" in failed[-1].changes["after"]["reason"]
    # With the check off, the same answer signs in.
    client.patch(f"{API}/sso/connections/{conn['id']}", json={"settings": {"require_email_verified": False}},
                 headers=admin_headers).raise_for_status()
    assert sso_login(client, conn["id"], "carol-sub").status_code == 303


def test_without_jit_only_existing_or_invited_users_sign_in(client, admin_headers, issuer):
    set_claims(issuer, "dave-sub", email="dave@example.com", email_verified=True)
    set_claims(issuer, "erin-sub", email="Erin@Example.com", email_verified=True)
    conn = create_connection(client, admin_headers, oidc_connection("Invite only", issuer,
                                                                    create_users=False))
    r = sso_login(client, conn["id"], "dave-sub")
    assert r.status_code == 403 and "ask an administrator to invite you" in r.text
    make_user(client, admin_headers, "erin")  # invited: the admin created her account with her e-mail
    assert sso_login(client, conn["id"], "erin-sub").status_code == 303
    assert whoami(client)["username"] == "erin"


def test_inactive_and_locked_accounts_are_refused(client, admin_headers, app, issuer):
    set_claims(issuer, "frank-sub", email="frank@example.com", email_verified=True)
    conn = create_connection(client, admin_headers, oidc_connection("Rules", issuer))
    make_user(client, admin_headers, "frank")
    client.post(f"{API}/users/frank/deactivate", headers=admin_headers).raise_for_status()
    r = sso_login(client, conn["id"], "frank-sub")
    assert r.status_code == 403 and "inactive" in r.text
    client.post(f"{API}/users/frank/activate", headers=admin_headers).raise_for_status()
    with app.state.allot.sessions() as session:
        session.execute(update(User).where(User.username_key == "frank")
                        .values(locked_until=utcnow() + timedelta(minutes=20)))
        session.commit()
    r = sso_login(client, conn["id"], "frank-sub")
    assert r.status_code == 403 and "locked" in r.text
    assert [e.action for e in audit_events(app, target="frank")
            if e.action == "auth.login_failed"] == ["auth.login_failed"] * 2


def test_group_sync_adds_and_removes_only_what_the_provider_granted(client, admin_headers, app, issuer):
    for name in ("ml", "vision", "ops"):
        client.post(f"{API}/groups", json={"name": name}, headers=admin_headers).raise_for_status()
    set_claims(issuer, "gina-sub", email="gina@example.com", email_verified=True, groups=["ML", "vision", "nope"])
    conn = create_connection(client, admin_headers, oidc_connection("Groups", issuer, sync_groups=True))
    assert sso_login(client, conn["id"], "gina-sub").status_code == 303
    me = whoami(client)
    assert {"ml", "vision"} <= set(me["groups"]) and "ops" not in me["groups"]
    # An admin adds her to ops directly: the provider's sync never takes that away.
    client.put(f"{API}/groups/ops/members/{me['username']}", headers=admin_headers).raise_for_status()
    set_claims(issuer, "gina-sub", email="gina@example.com", email_verified=True, groups=["vision"])
    client.cookies.clear()
    assert sso_login(client, conn["id"], "gina-sub").status_code == 303
    groups = set(whoami(client)["groups"])
    assert "ml" not in groups and {"vision", "ops"} <= groups
    set_claims(issuer, "gina-sub", email="gina@example.com", email_verified=True, groups=[])
    client.cookies.clear()
    assert sso_login(client, conn["id"], "gina-sub").status_code == 303
    assert set(whoami(client)["groups"]) & {"ml", "vision", "ops"} == {"ops"}


def test_an_id_token_signed_by_another_key_is_refused(client, admin_headers, issuer):
    set_claims(issuer, "hank-sub", email="hank@example.com", email_verified=True)
    with oidc_provider() as other:
        conn = create_connection(client, admin_headers, oidc_connection("Wrong keys", issuer,
                                                                        jwks_uri=f"{other}/jwks"))
        r = sso_login(client, conn["id"], "hank-sub")
    assert r.status_code == 401 and "signature does not verify" in r.text
    assert client.get(f"{API}/auth/whoami").status_code == 401


def _real_id_token(issuer: str, sub: str, nonce: str) -> str:
    """An id token from the provider's own code flow (the test acts as the client)."""
    r = httpx.get(f"{issuer}/oauth2/authorize", params={
        "client_id": "direct", "redirect_uri": "http://127.0.0.1/cb", "response_type": "code",
        "scope": "openid email", "nonce": nonce, "state": "x"}, timeout=5)
    assert r.status_code == 200
    r = httpx.post(str(r.request.url), data={"sub": sub}, follow_redirects=False, timeout=5)
    code = parse_qs(urlsplit(r.headers["location"]).query)["code"][0]
    token = httpx.post(f"{issuer}/oauth2/token", data={"grant_type": "authorization_code", "code": code,
                                                       "redirect_uri": "http://127.0.0.1/cb"},
                       auth=("direct", "x"), timeout=5).json()
    return token["id_token"]


def test_tampered_and_expired_id_tokens_are_refused(issuer):
    id_token = _real_id_token(issuer, "ivy-sub", "n-1")
    jwks = httpx.get(f"{issuer}/jwks", timeout=5).json()
    claims = verify_id_token(id_token, client_id="direct", issuer=issuer, nonce="n-1", jwks=jwks)
    assert claims["sub"] == "ivy-sub"
    header, payload, signature = id_token.split(".")
    import base64
    import json

    body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    forged = base64.urlsafe_b64encode(json.dumps({**body, "sub": "admin"}).encode()).rstrip(b"=").decode()
    with pytest.raises(ProviderError, match="signature does not verify"):
        verify_id_token(f"{header}.{forged}.{signature}", client_id="direct", issuer=issuer, nonce="n-1", jwks=jwks)
    later = int(time.time()) + 2 * 3600  # the provider's tokens live an hour
    with pytest.raises(ProviderError, match="exp"):
        verify_id_token(id_token, client_id="direct", issuer=issuer, nonce="n-1", jwks=jwks, now=later)
    with pytest.raises(ProviderError, match="nonce"):
        verify_id_token(id_token, client_id="direct", issuer=issuer, nonce="other", jwks=jwks)
    with pytest.raises(ProviderError, match="aud"):
        verify_id_token(id_token, client_id="someone-else", issuer=issuer, nonce="n-1", jwks=jwks)
