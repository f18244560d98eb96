"""The web console in a real browser: Playwright drives Debian's Chromium against a real `allot server` process
(the session's shared server from tests/e2e/conftest.py).

Chromium comes from scripts/ensure-chromium.sh (never `playwright install`); the console's htmx and CSS from npm.
"""

from __future__ import annotations

import os
import re

import httpx
import pytest

from e2e.clitools import unique

playwright_api = pytest.importorskip("playwright.sync_api")

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ADMIN_PASSWORD = "Adm1n-password!"
TIMEOUT_MS = 15_000


@pytest.fixture(scope="module")
def base_url(server) -> str:
    """The shared `allot server` of tests/e2e/conftest.py; its data is shared, so names here are unique."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: run scripts/ensure-chromium.sh (scripts/test.sh does)")
    return server.url


@pytest.fixture(scope="module")
def browser(base_url):
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, base_url):
    context = browser.new_context(base_url=base_url, viewport={"width": 1360, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    pg = context.new_page()
    yield pg
    context.close()


def api_token(base_url: str, username: str, password: str) -> dict[str, str]:
    r = httpx.post(f"{base_url}/api/v1/auth/login", json={"username": username, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def sign_in(page, username: str, password: str) -> None:
    page.goto("/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url("**/ui/")


def test_sign_in_shows_the_dashboard_and_sign_out_ends_the_session(page, base_url):
    page.goto("/ui/users")
    assert re.search(r"/login\?next=/ui/users$", page.url), page.url  # anonymous: sent to sign in first

    page.fill("#username", "admin")
    page.fill("#password", "wrong-Passw0rd!")
    page.click("button[type=submit]")
    assert "wrong username or password" in page.get_by_test_id("login-error").inner_text()

    page.fill("#password", ADMIN_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/ui/users")  # back to where the visitor was going
    page.goto("/ui/")
    assert page.get_by_test_id("whoami").inner_text() == "admin"
    active = httpx.get(f"{base_url}/api/v1/users?active=true&limit=1",
                       headers=api_token(base_url, "admin", ADMIN_PASSWORD)).json()["total"]
    assert page.get_by_test_id("tile-users").inner_text() == str(active)
    assert int(page.get_by_test_id("tile-clusters").inner_text()) >= 1
    page.screenshot(path="/tmp/allot-console-dashboard.png", full_page=True)

    page.click("text=Sign out")
    page.wait_for_url("**/login")
    assert "signed out" in page.content()
    page.goto("/ui/")
    assert "/login" in page.url


def test_create_user_shows_field_errors_then_creates_and_deactivates(page, base_url):
    name, password = unique("ada"), "Lovelace-1815"
    sign_in(page, "admin", ADMIN_PASSWORD)
    page.goto("/ui/users")
    page.get_by_test_id("create-user").click()

    page.fill("#email", "not-an-email")
    page.fill("#username", name)
    page.fill("#password", "short")
    page.fill("#password_confirm", "short")
    page.click("form[data-testid=new-user-form] button[type=submit]")
    password_errors = page.get_by_test_id("errors-password").inner_text()
    assert "must be at least 8 characters long" in password_errors
    assert "must contain at least one digit" in password_errors
    assert "must contain at least one special character" in password_errors
    assert "not a valid e-mail address" in page.get_by_test_id("errors-email").inner_text()
    assert page.input_value("#username") == name  # what was typed is kept
    page.screenshot(path="/tmp/allot-console-user-errors.png", full_page=True)

    page.fill("#email", f"{name}@example.com")
    page.fill("#password", password)
    page.fill("#password_confirm", password)
    page.click("form[data-testid=new-user-form] button[type=submit]")
    page.wait_for_url(re.compile(r"/ui/users/\d+$"))
    assert f"User {name} created." in page.content()
    assert page.get_by_test_id("user-status").inner_text() == "active"

    page.goto(f"/ui/users?search={name}")
    row = page.locator(f"tr[data-username='{name}']")
    page.once("dialog", lambda dialog: dialog.accept())  # the "are you sure" confirmation
    row.get_by_test_id(f"deactivate-{name}").click()
    page.locator(f"tr[data-username='{name}'] .badge.off").wait_for()  # htmx swapped the row in place
    assert f"{name} is deactivated" in page.get_by_test_id("row-notice").inner_text()
    assert row.get_by_test_id(f"activate-{name}").is_visible()
    page.screenshot(path="/tmp/allot-console-users.png", full_page=True)

    page.goto(f"/ui/users?status=inactive&search={name}")
    assert page.locator(f"tr[data-username='{name}']").count() == 1
    r = httpx.post(f"{base_url}/api/v1/auth/login", json={"username": name, "password": password})
    assert r.status_code == 401  # an inactive user cannot sign in


def test_credential_secret_is_shown_once_and_works_until_revoked(page, base_url):
    sign_in(page, "admin", ADMIN_PASSWORD)
    page.goto("/ui/credentials")
    page.fill("#label", "laptop")
    page.get_by_test_id("create-credential").click()
    access_key = page.get_by_test_id("new-access-key").inner_text().strip()
    secret = page.get_by_test_id("new-secret-key").inner_text().strip()
    assert access_key and secret
    page.screenshot(path="/tmp/allot-console-credentials.png", full_page=True)

    key_auth = {"Authorization": f"Bearer {access_key}:{secret}"}
    whoami = httpx.get(f"{base_url}/api/v1/auth/whoami", headers=key_auth)
    assert whoami.status_code == 200 and whoami.json()["username"] == "admin"

    page.goto("/ui/credentials")  # shown once: a later visit lists the key but never the secret
    assert page.get_by_test_id("secret-once").count() == 0
    assert secret not in page.content()
    assert page.locator(f"tr[data-access-key='{access_key}']").count() == 1

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_test_id(f"revoke-{access_key}").click()
    page.locator(f"tr[data-access-key='{access_key}'] .badge.bad").wait_for()
    assert httpx.get(f"{base_url}/api/v1/auth/whoami", headers=key_auth).status_code == 401


def test_non_admin_gets_403_on_admin_pages(page, base_url):
    name, password = unique("grace"), "Hopper-1906!"
    admin = api_token(base_url, "admin", ADMIN_PASSWORD)
    r = httpx.post(f"{base_url}/api/v1/users", headers=admin,
                   json={"email": f"{name}@example.com", "username": name, "password": password})
    assert r.status_code == 201, r.text

    sign_in(page, name, password)
    assert page.locator("aside >> text=Users").count() == 0  # the sidebar hides what the policy denies
    response = page.goto("/ui/users")
    assert response.status == 403
    assert "Access denied" in page.get_by_test_id("error-page").inner_text()
    assert "Traceback" not in page.content()
    page.screenshot(path="/tmp/allot-console-403.png", full_page=True)


def test_a_queued_job_says_why_it_waits_and_can_be_cancelled(page, base_url):
    admin = api_token(base_url, "admin", ADMIN_PASSWORD)
    quota, name = unique("q"), unique("train")
    r = httpx.post(f"{base_url}/api/v1/clusters/local/quotas", headers=admin,
                   json={"name": quota, "resources": [{"resource": "gpu", "guarantee": 0, "limit": 0}]})
    assert r.status_code == 201, r.text
    r = httpx.post(f"{base_url}/api/v1/jobs", headers=admin,
                   json={"quota": quota, "gpu": 1, "command": "sleep 600", "name": name})
    assert r.status_code == 201, r.text
    job_id = r.json()["id"]

    sign_in(page, "admin", ADMIN_PASSWORD)
    page.goto("/ui/jobs?state=queued")
    page.click(f"text=#{job_id}")
    page.wait_for_url(f"**/ui/jobs/{job_id}")
    assert page.get_by_test_id("job-reason").inner_text().startswith("Waiting:")
    page.screenshot(path="/tmp/allot-console-job.png", full_page=True)
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_test_id("cancel-job").click()
    page.wait_for_selector("text=cancelled")
    state = httpx.get(f"{base_url}/api/v1/jobs/{job_id}", headers=admin).json()
    assert state["state"] == "cancelled"
