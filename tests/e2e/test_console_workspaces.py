"""Workspaces in a real browser (Playwright, Debian's Chromium) against the shared real server: a user creates a
workspace and invites someone by e-mail; the invitation shows as pending with its date; the invitee sees the notice
on their dashboard, accepts, becomes a member and leaves."""

from __future__ import annotations

import os

import pytest

from e2e.clitools import ok, unique

playwright_api = pytest.importorskip("playwright.sync_api")

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TIMEOUT_MS = 15_000


@pytest.fixture
def browser(server):
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: run scripts/ensure-chromium.sh (scripts/test.sh does)")
    with playwright_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield lambda: _page(launched, server.url)
        launched.close()


def _page(browser, url: str):
    context = browser.new_context(base_url=url, viewport={"width": 1360, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())  # the confirmations of leave and remove
    return page


def sign_in(page, username: str, password: str) -> None:
    page.goto("/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url("**/ui/")


def test_invite_accept_and_leave_a_workspace(browser, allot, admin_config, new_user):
    expect = playwright_api.expect
    owner, owner_password, _ = new_user("wsowner")
    invitee, invitee_password, _ = new_user("wsguest")
    for name in (owner, invitee):
        ok(allot("admin", "add-cluster-user", "local", name, "user", config_dir=admin_config))
    workspace = unique("vision")

    page = browser()
    sign_in(page, owner, owner_password)
    page.goto("/ui/workspaces")
    form = page.get_by_test_id("create-workspace-form")
    form.locator("#name").fill(workspace)
    form.locator("button[type=submit]").click()
    page.wait_for_url(f"**/ui/workspaces/local/{workspace}")
    invite = page.get_by_test_id("invite-form")
    invite.locator("#email").fill(f"{invitee}@example.com")
    invite.locator("#invite-role").select_option("viewer")
    invite.locator("button[type=submit]").click()
    expect(page.get_by_test_id("invitation-link")).to_contain_text("/ui/workspace-invitations/accept?token=")
    page.goto(f"/ui/workspaces/local/{workspace}")
    pending = page.get_by_test_id(f"pending-{invitee}@example.com")
    expect(pending).to_contain_text("invited")
    expect(pending).to_contain_text("pending since")

    guest = browser()
    sign_in(guest, invitee, invitee_password)
    guest.get_by_test_id("workspace-invitations-notice").get_by_role("link").click()
    guest.wait_for_url("**/ui/workspaces")
    guest.get_by_test_id(f"accept-{workspace}").click()
    guest.wait_for_url(f"**/ui/workspaces/local/{workspace}")
    expect(guest.locator(".notice")).to_contain_text(f"You joined workspace {workspace} as viewer.")
    expect(guest.get_by_test_id("members-table")).to_contain_text(invitee)

    guest.get_by_test_id("leave-workspace").click()
    guest.wait_for_url("**/ui/workspaces")
    expect(guest.locator(".notice")).to_contain_text(f"You left workspace {workspace}.")
    expect(guest.get_by_test_id("workspaces-table")).not_to_contain_text(workspace)
