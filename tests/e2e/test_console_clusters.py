"""The console's cluster pages in a real browser (Debian's Chromium through Playwright, against the shared `allot
server`): add a Slurm cluster, its fields swapped in by htmx; its token write-only; change and remove it."""

from __future__ import annotations

import httpx
import pytest

from e2e.clitools import unique
from e2e.test_console import ADMIN_PASSWORD, api_token, base_url, browser, page, sign_in  # noqa: F401 - fixtures

pytestmark = pytest.mark.e2e

TOKEN = "eyJhbGciOiJIUzI1NiJ9.YnJvd3Nlci10b2tlbg.c2lnbmF0dXJlLWJyb3dzZXI"


def cluster_api(base_url: str, name: str) -> httpx.Response:  # noqa: F811 - base_url is the fixture's value
    return httpx.get(f"{base_url}/api/v1/clusters/{name}", headers=api_token(base_url, "admin", ADMIN_PASSWORD))


def test_admin_adds_changes_and_removes_a_slurm_cluster(page, base_url):  # noqa: F811
    name = unique("hpc")
    sign_in(page, "admin", ADMIN_PASSWORD)
    page.goto("/ui/clusters")
    page.get_by_test_id("add-cluster").click()
    page.wait_for_url("**/ui/clusters/new")
    page.fill("#name", name)
    page.select_option("#backend", "slurm")
    page.wait_for_selector("#rest_url")  # htmx swapped in the Slurm fields
    assert page.get_by_test_id("secret-note-token").inner_text() == "not set"
    page.fill("#rest_url", "http://127.0.0.1:9")
    page.fill("#rest_user", "allot")
    page.fill("#token", TOKEN)
    page.fill("#log_dir", "jobs")  # not absolute: refused, with the message under the field
    page.click("[data-testid=cluster-form] button[type=submit]")
    assert "absolute" in page.get_by_test_id("errors-log_dir").inner_text()
    assert page.input_value("#token") == ""  # a secret is never sent back, not even into its own field
    page.fill("#token", TOKEN)
    page.fill("#log_dir", "/srv/slurm/jobs")
    page.fill("#partitions", "a100=gpu-a100")
    page.click("[data-testid=cluster-form] button[type=submit]")
    page.wait_for_url("**/ui/clusters")
    assert name in page.get_by_test_id(f"cluster-{name}").inner_text()
    assert TOKEN not in page.content()

    page.get_by_test_id(f"settings-{name}").click()
    assert page.get_by_test_id("secret-note-token").inner_text() == "set — leave empty to keep"
    assert page.input_value("#token") == "" and page.input_value("#rest_url") == "http://127.0.0.1:9"
    assert TOKEN not in page.content()
    page.fill("#description", "rack seven")
    page.click("[data-testid=cluster-form] button[type=submit]")
    page.wait_for_url("**/ui/clusters*")
    shown = cluster_api(base_url, name).json()
    assert shown["description"] == "rack seven" and shown["engine"]["token"] == {"set": True}

    page.goto(f"/ui/clusters/{name}/settings")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_test_id("remove-cluster").click()
    page.wait_for_url("**/ui/clusters")
    assert cluster_api(base_url, name).status_code == 404
