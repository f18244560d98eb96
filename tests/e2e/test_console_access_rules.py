"""Access rules in a real browser (Debian's Chromium through Playwright, against the shared `allot server`): a
workspace owner grants a colleague read on a project from the Access rules page, narrows the table with the View and
grantee filters, sees a field message for a grantee that does not exist, edits the rule to read-and-modify, sets the
workspace's default, and deletes the rule. The colleague's access follows each step through the API. Each page passes
axe-core and fits 390 px."""

from __future__ import annotations

import httpx
import pytest

from e2e.clitools import ok, unique
from e2e.test_console import api_token, base_url, browser, page, sign_in  # noqa: F401 - fixtures
from e2e.test_console_jobs_users import accessible

pytestmark = pytest.mark.e2e


def test_an_owner_grants_edits_and_removes_a_rule(page, base_url, allot, admin_config, new_user):  # noqa: F811
    page.on("dialog", lambda dialog: dialog.accept())
    owner, password, _ = new_user("ruleowner")
    colleague, colleague_password, _ = new_user("rulemate")
    for name in (owner, colleague):
        ok(allot("admin", "add-cluster-user", "local", name, "user", config_dir=admin_config))
    as_owner = api_token(base_url, owner, password)
    as_colleague = api_token(base_url, colleague, colleague_password)
    workspace = unique("rules-ws")
    api = f"{base_url}/api/v1"
    assert httpx.post(f"{api}/clusters/local/workspaces", headers=as_owner, json={"name": workspace}).status_code == 201
    r = httpx.post(f"{api}/clusters/local/workspaces/{workspace}/invitations", headers=as_owner,
                   json={"email": f"{colleague}@example.com", "role": "member"})
    assert r.status_code == 201, r.text
    token = r.json()["token"]
    assert httpx.post(f"{api}/workspace-invitations/accept", headers=as_colleague,
                      json={"token": token}).status_code in (200, 201)
    r = httpx.post(f"{api}/projects", headers=as_owner, json={"workspace": workspace, "name": "vision"})
    assert r.status_code == 201, r.text
    project = r.json()["id"]
    assert httpx.get(f"{api}/projects/{project}", headers=as_colleague).status_code == 200  # the default: modify

    sign_in(page, owner, password)
    page.goto(f"/ui/access-rules?cluster=local&workspace={workspace}")
    form = page.get_by_test_id("add-rule-form")
    form.get_by_label("Resource type").select_option("project")
    form.locator("#resource").fill("vision")
    form.get_by_label("Permission").select_option("read")
    form.locator("#grantees").fill("user:nobody-at-all")
    form.get_by_role("button", name="Add rule").click()
    page.get_by_test_id("errors-grantees").wait_for()
    accessible(page, "access-rules-field-error")
    form = page.get_by_test_id("add-rule-form")
    form.get_by_label("Resource type").select_option("project")
    form.locator("#resource").fill("vision")
    form.locator("#grantees").fill(f"user:{colleague}")
    form.get_by_role("button", name="Add rule").click()
    page.get_by_text("grants read on").wait_for()
    table = page.get_by_test_id("access-rules-table")
    assert "vision" in table.inner_text() and colleague in table.inner_text()
    accessible(page, "access-rules")
    # Once a rule covers the project, only its grantees have access (read only here).
    assert httpx.get(f"{api}/projects/{project}", headers=as_colleague).status_code == 200
    r = httpx.patch(f"{api}/projects/{project}", headers=as_colleague, json={"description": "mine now"})
    assert r.status_code == 403, r.text

    filters = page.get_by_test_id("access-rule-filters")
    filters.get_by_label("View").select_option("model")
    filters.get_by_role("button", name="Filter").click()
    assert page.get_by_test_id("access-rules-table").count() == 0 or "vision" not in page.inner_text("main")
    filters = page.get_by_test_id("access-rule-filters")
    filters.get_by_label("View").select_option("project")
    filters.get_by_label("Grantee").fill(colleague)
    filters.get_by_role("button", name="Filter").click()
    rule_link = page.get_by_test_id("access-rules-table").locator("tbody tr a").first
    rule_link.click()
    edit = page.get_by_test_id("edit-rule-form")
    edit.get_by_label("Permission").select_option("modify")
    edit.get_by_role("button", name="Save rule").click()
    page.get_by_text("saved.").wait_for()
    r = httpx.patch(f"{api}/projects/{project}", headers=as_colleague, json={"description": "ours"})
    assert r.status_code == 200, r.text

    page.goto(f"/ui/access-rules?cluster=local&workspace={workspace}")
    default = page.get_by_test_id("default-form")
    default.get_by_label("Default").select_option("none")
    default.get_by_role("button", name="Save default").click()
    page.get_by_text("now grant none").wait_for()
    page.get_by_test_id("access-rules-table").locator("button", has_text="Delete").first.click()
    page.get_by_text("its grantees lose what it granted").wait_for()
    # No rule covers the project any more and the workspace's default is none: the colleague no longer sees it.
    assert httpx.get(f"{api}/projects/{project}", headers=as_colleague).status_code in (403, 404)
