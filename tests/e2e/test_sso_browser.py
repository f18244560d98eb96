"""Signing in through an OIDC provider from the console's login page, in a real browser: Playwright drives Debian's
Chromium against the shared `allot server` and a real provider (oidc-provider-mock)."""

from __future__ import annotations

import os

import pytest

from e2e.clitools import api, unique
from integration.sso_helpers import oidc_provider, set_claims

playwright_api = pytest.importorskip("playwright.sync_api")

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TIMEOUT_MS = 15_000


@pytest.fixture(scope="module")
def issuer():
    with oidc_provider() as url:
        yield url


@pytest.fixture
def page(server):
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: run scripts/ensure-chromium.sh (scripts/test.sh does)")
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(base_url=server.url)
        context.set_default_timeout(TIMEOUT_MS)
        yield context.new_page()
        browser.close()


def test_sign_in_through_the_provider_from_the_login_page(server, admin_config, issuer, page):
    name = unique("Browser SSO")
    sub = unique("sub")
    username = unique("walt")
    group = unique("gpu-team")
    api(admin_config, "POST", "groups", json={"name": group})
    set_claims(issuer, sub, email=f"{username}@example.com", email_verified=True, preferred_username=username,
               name="Walter White", groups=[group])
    api(admin_config, "POST", "sso/connections", json={
        "name": name, "protocol": "oidc", "provider": "custom",
        "settings": {"issuer": issuer, "client_id": "allotment", "sync_groups": True},
        "secrets": {"client_secret": "browser-secret"}})
    page.goto("/login?next=/ui/jobs")
    page.get_by_role("button", name=f"Sign in with {name}").click()
    page.wait_for_url(f"{issuer}/**")
    page.fill("input[name=sub]", sub)
    page.get_by_role("button", name="Authorize").click()
    page.wait_for_url(f"{server.url}/ui/jobs")
    me = page.request.get(f"{server.url}/api/v1/auth/whoami").json()
    assert me["username"] == username and group in me["groups"]
    assert username in page.content()
