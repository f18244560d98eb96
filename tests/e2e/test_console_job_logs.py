"""The job page's live tail in a real browser (Playwright, Debian's Chromium) against the shared real server: output
appears while the job runs, without a reload, escaped, and the tail stops when the job ends."""

from __future__ import annotations

import json
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
def page(server):
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: run scripts/ensure-chromium.sh (scripts/test.sh does)")
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(base_url=server.url, viewport={"width": 1360, "height": 900})
        context.set_default_timeout(TIMEOUT_MS)
        yield context.new_page()
        context.close()
        browser.close()


def test_the_job_page_tails_the_output_live(page, allot, admin_config, new_user):
    quota = unique("tailq")
    username, password, config = new_user("tailer")
    ok(allot("quotas", "create", quota, "--cpu", "0.5", "--cpu-limit", "1", config_dir=admin_config))
    ok(allot("quotas", "bind", quota, "--user", username, config_dir=admin_config))
    ok(allot("admin", "add-cluster-user", "local", username, "user", config_dir=admin_config))
    script = "echo '<b>first</b>'; sleep 4; echo second"
    out = ok(allot("jobs", "submit", "--quota", quota, "--cpu", "0.1", "--json", "--", "sh", "-c", script,
                   config_dir=config))
    job_id = json.loads(out.stdout)["id"]

    page.goto("/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url("**/ui/")
    page.goto(f"/ui/jobs/{job_id}")
    page.evaluate("window.stillTheSamePage = true")
    log = page.get_by_test_id("job-log")
    expect = playwright_api.expect
    expect(log).to_contain_text("<b>first</b>", timeout=30_000)  # shown as text, not as markup
    assert log.locator("b").count() == 0
    assert "second" not in log.inner_text()  # it came while the job was running
    expect(log).to_contain_text("second", timeout=30_000)
    expect(page.get_by_test_id("job-log-note")).to_have_text("The job ended (succeeded).", timeout=15_000)
    assert log.inner_text().strip() == "<b>first</b>\nsecond"
    assert page.get_by_test_id("job-state").inner_text() == "succeeded"
    assert page.evaluate("window.stillTheSamePage") is True  # no reload: htmx brought it
    assert page.locator("#job-log-poll").count() == 0  # and it stopped polling
    page.screenshot(path="/tmp/allot-console-job-log.png", full_page=True)
