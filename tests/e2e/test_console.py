"""The web console in a real browser: Playwright drives Debian's Chromium against a real `allot server` process.

Chromium comes from scripts/ensure-chromium.sh (never `playwright install`); the console's htmx and CSS from npm.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

playwright_api = pytest.importorskip("playwright.sync_api")

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ADMIN_PASSWORD = "Adm1n-password!"
TIMEOUT_MS = 15_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[str]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: run scripts/ensure-chromium.sh (scripts/test.sh does)")
    data = tmp_path_factory.mktemp("console")
    port = _free_port()
    env = dict(os.environ, ALLOT_DATA_DIR=str(data), ALLOT_BIND=f"127.0.0.1:{port}", ALLOT_SECRET_KEY="e2e-secret",
               ALLOT_BOOTSTRAP_ADMIN_EMAIL="admin@example.com", ALLOT_BOOTSTRAP_ADMIN_USERNAME="admin",
               ALLOT_BOOTSTRAP_ADMIN_PASSWORD=ADMIN_PASSWORD, ALLOT_LOG_LEVEL="warning")
    env.pop("ALLOT_DATABASE_URL", None)
    allot = Path(sys.executable).with_name("allot")
    url = f"http://127.0.0.1:{port}"
    with open(data / "server.log", "w") as log:
        proc = subprocess.Popen([str(allot), "server"], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=data)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"server did not start:\n{(data / 'server.log').read_text()}")
                time.sleep(0.2)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture(scope="module")
def browser(server):
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(base_url=server, viewport={"width": 1360, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    pg = context.new_page()
    yield pg
    context.close()


def api_token(server: str, username: str, password: str) -> dict[str, str]:
    r = httpx.post(f"{server}/api/v1/auth/login", json={"username": username, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def sign_in(page, username: str, password: str) -> None:
    page.goto("/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("form[action='/login'] button[type=submit]")


def test_sign_in_shows_the_dashboard_and_sign_out_ends_the_session(page):
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
    assert page.get_by_test_id("tile-users").inner_text() == "1"
    assert page.get_by_test_id("tile-clusters").inner_text() == "1"
    page.screenshot(path="/tmp/allot-console-dashboard.png", full_page=True)

    page.click("text=Sign out")
    page.wait_for_url("**/login")
    assert "signed out" in page.content()
    page.goto("/ui/")
    assert "/login" in page.url


def test_create_user_shows_field_errors_then_creates_and_deactivates(page, server):
    sign_in(page, "admin", ADMIN_PASSWORD)
    page.wait_for_url("**/ui/")
    page.goto("/ui/users")
    page.get_by_test_id("create-user").click()

    page.fill("#email", "not-an-email")
    page.fill("#username", "ada")
    page.fill("#password", "short")
    page.fill("#password_confirm", "short")
    page.click("form[data-testid=new-user-form] button[type=submit]")
    password_errors = page.get_by_test_id("errors-password").inner_text()
    assert "must be at least 8 characters long" in password_errors
    assert "must contain at least one digit" in password_errors
    assert "must contain at least one special character" in password_errors
    assert "not a valid e-mail address" in page.get_by_test_id("errors-email").inner_text()
    assert page.input_value("#username") == "ada"  # what was typed is kept
    page.screenshot(path="/tmp/allot-console-user-errors.png", full_page=True)

    page.fill("#email", "ada@example.com")
    page.fill("#password", "Lovelace-1815")
    page.fill("#password_confirm", "Lovelace-1815")
    page.click("form[data-testid=new-user-form] button[type=submit]")
    page.wait_for_url(re.compile(r"/ui/users/\d+$"))
    assert "User ada created." in page.content()
    assert page.get_by_test_id("user-status").inner_text() == "active"

    page.goto("/ui/users?search=ada")
    row = page.locator("tr[data-username=ada]")
    page.once("dialog", lambda dialog: dialog.accept())  # the "are you sure" confirmation
    row.get_by_test_id("deactivate-ada").click()
    page.locator("tr[data-username=ada] .badge.off").wait_for()  # htmx swapped the row in place
    assert "ada is deactivated" in page.get_by_test_id("row-notice").inner_text()
    assert row.get_by_test_id("activate-ada").is_visible()
    page.screenshot(path="/tmp/allot-console-users.png", full_page=True)

    page.goto("/ui/users?status=inactive")
    assert page.locator("tr[data-username=ada]").count() == 1
    r = httpx.post(f"{server}/api/v1/auth/login", json={"username": "ada", "password": "Lovelace-1815"})
    assert r.status_code == 401  # an inactive user cannot sign in


def test_credential_secret_is_shown_once_and_works_until_revoked(page, server):
    sign_in(page, "admin", ADMIN_PASSWORD)
    page.wait_for_url("**/ui/")
    page.goto("/ui/credentials")
    page.fill("#label", "laptop")
    page.get_by_test_id("create-credential").click()
    access_key = page.get_by_test_id("new-access-key").inner_text().strip()
    secret = page.get_by_test_id("new-secret-key").inner_text().strip()
    assert access_key and secret
    page.screenshot(path="/tmp/allot-console-credentials.png", full_page=True)

    whoami = httpx.get(f"{server}/api/v1/auth/whoami", headers={"Authorization": f"Bearer {access_key}:{secret}"})
    assert whoami.status_code == 200 and whoami.json()["username"] == "admin"

    page.goto("/ui/credentials")  # shown once: a later visit lists the key but never the secret
    assert page.get_by_test_id("secret-once").count() == 0
    assert secret not in page.content()
    assert page.locator(f"tr[data-access-key='{access_key}']").count() == 1

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_test_id(f"revoke-{access_key}").click()
    page.locator(f"tr[data-access-key='{access_key}'] .badge.bad").wait_for()
    whoami = httpx.get(f"{server}/api/v1/auth/whoami", headers={"Authorization": f"Bearer {access_key}:{secret}"})
    assert whoami.status_code == 401


def test_non_admin_gets_403_on_admin_pages(page, server):
    admin = api_token(server, "admin", ADMIN_PASSWORD)
    r = httpx.post(f"{server}/api/v1/users", headers=admin,
                   json={"email": "grace@example.com", "username": "grace", "password": "Hopper-1906!"})
    assert r.status_code == 201, r.text

    sign_in(page, "grace", "Hopper-1906!")
    page.wait_for_url("**/ui/")
    assert page.locator("aside >> text=Users").count() == 0  # the sidebar hides what the policy denies
    response = page.goto("/ui/users")
    assert response.status == 403
    assert "Access denied" in page.get_by_test_id("error-page").inner_text()
    assert "Traceback" not in page.content()
    page.screenshot(path="/tmp/allot-console-403.png", full_page=True)
