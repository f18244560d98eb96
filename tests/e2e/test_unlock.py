"""Unlocking a password lock before its time: `allot admin unlock-user` and the console's Unlock button, against the
session's real server (tests/e2e/conftest.py). The lock is written straight into the server's database: how failed
sign-ins lock an account is tested in tests/integration, and failing here would spend the shared server's per-source
allowance of failed sign-ins."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import create_engine, update

from allotment.identity.models import User
from e2e.clitools import allot, ok, unique

pytestmark = pytest.mark.e2e

PASSWORD = "Us3r-password!"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def lock(server, username: str) -> None:
    engine = create_engine(f"sqlite:///{server.data_dir / 'allotment.db'}")
    with engine.begin() as conn:
        conn.execute(update(User).where(User.username_key == username.lower())
                     .values(locked_until=datetime.now(UTC) + timedelta(minutes=20)))
    engine.dispose()


def can_sign_in(server, username: str) -> bool:
    r = httpx.post(f"{server.url}/api/v1/auth/login", json={"username": username, "password": PASSWORD})
    return r.status_code == 200


def add_locked_user(server, admin_config) -> str:
    name = unique("locked")
    ok(allot("admin", "add-user", f"{name}@example.com", name, "--password-stdin", input=PASSWORD + "\n",
             config_dir=admin_config))
    lock(server, name)
    assert not can_sign_in(server, name)
    return name


def test_unlock_user_from_the_cli(server, admin_config):
    name = add_locked_user(server, admin_config)
    r = ok(allot("admin", "unlock-user", name, config_dir=admin_config))
    assert f"Unlocked {name}" in r.stdout
    assert can_sign_in(server, name)  # (the audit entry is checked in tests/integration/test_login_abuse.py)


def test_unlock_needs_a_platform_admin(server, admin_config, new_user):
    name = add_locked_user(server, admin_config)
    _, _, user_config = new_user()
    r = allot("admin", "unlock-user", name, config_dir=user_config)
    assert r.returncode != 0 and "platform admin" in (r.stdout + r.stderr)


def test_the_console_unlock_button(server, admin_config):
    playwright_api = pytest.importorskip("playwright.sync_api")
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: run scripts/ensure-chromium.sh (scripts/test.sh does)")
    name = add_locked_user(server, admin_config)
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(base_url=server.url).new_page()
            page.set_default_timeout(15_000)
            page.goto("/login")
            page.fill("#username", server.admin_username)
            page.fill("#password", server.admin_password)
            page.click("form[action='/login'] button[type=submit]")
            page.wait_for_url("**/ui/")
            page.goto(f"/ui/users/{name}")
            assert page.get_by_test_id("locked-until").inner_text() != "—"
            page.get_by_test_id("unlock").click()
            page.wait_for_function("() => !document.querySelector('[data-testid=unlock]')")
            assert f"{name} is unlocked" in page.content()
            assert page.get_by_test_id("locked-until").inner_text() == "—"
        finally:
            browser.close()
    assert can_sign_in(server, name)
