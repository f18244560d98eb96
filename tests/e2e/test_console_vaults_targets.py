"""Issue 17's console workflows in a real browser (Playwright, Debian's Chromium) against the shared real server:
a user writes a configuration vault (refused with the parser's line and column, then saved), enables it with its
toggle and sees the effective configuration, imports a file; an admin registers a storage target and tests its
connection; a user extends the hide-list and sees a job's hidden variable masked on the job page."""

from __future__ import annotations

import json
import os
import time

import pytest

from e2e.clitools import ok, unique

playwright_api = pytest.importorskip("playwright.sync_api")

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TIMEOUT_MS = 15_000
ADMIN_PASSWORD = "Adm1n-password!"


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
    return context.new_page()


def sign_in(page, username: str, password: str) -> None:
    page.goto("/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url("**/ui/")


def test_write_enable_and_import_a_vault(browser, new_user, tmp_path):
    expect = playwright_api.expect
    username, password, _ = new_user("vaulter")
    name = unique("sdk")
    page = browser()
    sign_in(page, username, password)
    page.get_by_role("link", name="Configuration vaults").click()
    page.fill("#name", name)
    page.select_option("#format", "hocon")
    page.fill("#vault-content", "sdk {\n  region = [eu\n}")
    page.click("form[action='/ui/vaults'] button[type=submit]")
    expect(page.get_by_test_id("errors-content")).to_contain_text("line 3, column 1")
    page.fill("#vault-content", "sdk {\n  region = eu\n}")
    page.click("form[action='/ui/vaults'] button[type=submit]")
    page.wait_for_url(f"**/ui/vaults/{name}")
    page.goto("/ui/vaults")
    toggle = page.get_by_test_id(f"toggle-{name}")
    expect(toggle).to_have_attribute("aria-checked", "false")
    toggle.click()
    expect(page.get_by_test_id(f"toggle-{name}")).to_have_attribute("aria-checked", "true")
    expect(page.get_by_test_id("effective-table")).to_contain_text("sdk.region")
    expect(page.get_by_test_id("effective-table")).to_contain_text(name)
    # The editor: a machine key is refused, naming it.
    page.get_by_role("link", name=name).click()
    page.fill("#vault-content", "agent.worker_name = w1")
    page.get_by_test_id("vault-editor").locator("button[type=submit]").click()
    expect(page.get_by_test_id("errors-content")).to_contain_text("agent.worker_name is machine-specific")
    # Import from a file: a disabled vault named after it.
    upload = tmp_path / f"{unique('team')}.yaml"
    upload.write_text("sdk:\n  bucket: shared\n")
    page.goto("/ui/vaults")
    page.set_input_files("#file", str(upload))
    page.click("form[action='/ui/vaults/import'] button[type=submit]")
    page.wait_for_url(f"**/ui/vaults/{upload.stem}")
    expect(page.locator("#vault-content")).to_have_value("sdk:\n  bucket: shared\n")


def test_register_and_test_a_storage_target(browser, tmp_path):
    expect = playwright_api.expect
    page = browser()
    sign_in(page, "admin", ADMIN_PASSWORD)
    name = unique("shared")
    page.goto("/ui/storage-targets")
    form = page.get_by_test_id("target-form")
    form.locator("#name").fill(name)
    form.locator("#kind").select_option("s3")
    form.locator("#access_key").fill("AK")
    form.locator("button[type=submit]").click()
    expect(page.get_by_test_id("errors-bucket")).to_contain_text("required")
    expect(page.get_by_test_id("errors-secret_key")).to_contain_text("required")
    form = page.get_by_test_id("target-form")
    form.locator("#kind").select_option("folder")
    form.locator("#access_key").fill("")
    form.locator("#path").fill(str(tmp_path))
    form.locator("button[type=submit]").click()
    page.wait_for_url(f"**/ui/storage-targets/{name}")
    page.get_by_test_id("test-connection").click()
    expect(page.get_by_test_id("last-test")).to_contain_text("Worked at")
    page.fill("#path", str(tmp_path / "missing"))
    page.click(f"form[action='/ui/storage-targets/{name}'] button[type=submit]")
    page.get_by_test_id("test-connection").click()
    expect(page.get_by_test_id("last-test")).to_contain_text("is not a directory")


def test_a_hidden_variable_shows_masked_on_the_job_page(browser, allot, admin_config, new_user):
    expect = playwright_api.expect
    quota = unique("hideq")
    username, password, config = new_user("hider")
    ok(allot("quotas", "create", quota, "--cpu", "0.5", "--cpu-limit", "1", config_dir=admin_config))
    ok(allot("quotas", "bind", quota, "--user", username, config_dir=admin_config))
    ok(allot("admin", "add-cluster-user", "local", username, "user", config_dir=admin_config))
    page = browser()
    sign_in(page, username, password)
    page.get_by_role("link", name="Hide-list").click()
    page.fill("#own", "WANDB_API_KEY")
    page.click("form[action='/ui/hide-list/mine'] button[type=submit]")
    expect(page.get_by_test_id("effective-names")).to_contain_text("WANDB_API_KEY")
    out = ok(allot("jobs", "submit", "--quota", quota, "--cpu", "0.1", "--json", "--env", "WANDB_API_KEY=wb-s3cret",
                   "--", "sh", "-c", "echo key=$WANDB_API_KEY", config_dir=config))
    job_id = json.loads(out.stdout)["id"]
    page.goto(f"/ui/jobs/{job_id}")
    expect(page.get_by_test_id("job-log")).to_contain_text("key=********", timeout=30_000)
    expect(page.get_by_test_id("job-environment")).to_contain_text("WANDB_API_KEY=********")
    time.sleep(0.5)
    assert "wb-s3cret" not in page.content()
