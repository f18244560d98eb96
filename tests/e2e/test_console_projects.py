"""Projects in a real browser (Debian's Chromium through Playwright, against the shared `allot server`): a member
creates a project in their workspace from the tree page, a sub-project under it, registers a model twice (two
versions, metadata shown) and a dataset, sees a field message for a relative path, moves and renames the sub-project,
is refused deleting the non-empty parent (what it holds is named) and deletes it with force. Each page passes
axe-core and fits 390 px."""

from __future__ import annotations

import httpx
import pytest

from e2e.clitools import ok, unique
from e2e.test_console import api_token, base_url, browser, page, sign_in  # noqa: F401 - fixtures
from e2e.test_console_jobs_users import accessible

pytestmark = pytest.mark.e2e


def test_a_project_tree_with_models_and_datasets(page, base_url, allot, admin_config, new_user):  # noqa: F811
    page.on("dialog", lambda dialog: dialog.accept())  # the confirmations of deletes
    member, password, _ = new_user("projuser")
    ok(allot("admin", "add-cluster-user", "local", member, "user", config_dir=admin_config))
    workspace = unique("proj-ws")
    r = httpx.post(f"{base_url}/api/v1/clusters/local/workspaces", headers=api_token(base_url, member, password),
                   json={"name": workspace})
    assert r.status_code == 201, r.text

    sign_in(page, member, password)
    page.goto("/ui/projects")
    form = page.get_by_test_id("create-project-form")
    form.get_by_label("Workspace").select_option(label=f"local/{workspace}")
    form.get_by_label("Name").fill("detection")
    form.get_by_label("Description").fill("object detection")
    form.get_by_role("button", name="Create project").click()
    page.wait_for_url("**/ui/projects/*")
    assert "Project detection created." in page.locator(".notice").first.inner_text()
    parent_url = page.url

    sub = page.get_by_test_id("create-subproject-form")
    sub.get_by_label("Name").fill("yolo")
    sub.get_by_role("button", name="Create sub-project").click()
    page.wait_for_url(lambda url: url != parent_url)
    assert "path detection/yolo" in page.locator(".page-head").inner_text()

    model = page.get_by_test_id("register-model-form")
    model.get_by_label("Name").fill("yolov8")
    model.get_by_label("Where it lives").fill("s3://models/yolov8/1")
    model.get_by_label("Metadata").fill('{"framework": "pytorch", "map": 0.61}')
    model.get_by_role("button", name="Register model").click()
    page.get_by_text("Model yolov8 version 1 registered.").wait_for()
    model = page.get_by_test_id("register-model-form")
    model.get_by_label("Name").fill("yolov8")
    model.get_by_label("Where it lives").fill("/data/models/yolov8-2")
    model.get_by_role("button", name="Register model").click()
    page.get_by_text("Model yolov8 version 2 registered.").wait_for()
    row = page.get_by_test_id("model-yolov8")
    assert "of 2" in row.inner_text() and "/data/models/yolov8-2" in row.inner_text()

    data = page.get_by_test_id("register-dataset-form")
    data.get_by_label("Name").fill("coco")
    data.get_by_label("Where it lives").fill("coco/train")
    data.get_by_role("button", name="Register dataset").click()
    assert "relative path" in page.get_by_test_id("errors-dataset-uri").inner_text()
    accessible(page, "project-field-error")
    data = page.get_by_test_id("register-dataset-form")
    data.get_by_label("Where it lives").fill("gs://datasets/coco")
    data.get_by_role("button", name="Register dataset").click()
    page.get_by_text("Dataset coco version 1 registered.").wait_for()
    accessible(page, "project-detail")

    edit = page.get_by_test_id("edit-project-form")
    edit.get_by_label("Name").fill("yolo-v8")
    edit.get_by_label("Parent").select_option(label=f"(top of {workspace})")
    edit.get_by_role("button", name="Save").click()
    page.get_by_text("Project yolo-v8 saved.").wait_for()

    page.goto("/ui/projects")
    tree = page.get_by_test_id(f"projects-local/{workspace}")
    assert tree.get_by_test_id("project-row-detection").is_visible()
    assert tree.get_by_test_id("project-row-yolo-v8").is_visible()
    accessible(page, "projects-tree")

    page.goto(parent_url)
    edit = page.get_by_test_id("edit-project-form")
    edit.get_by_label("Parent").select_option(label="yolo-v8")
    edit.get_by_role("button", name="Save").click()
    page.get_by_text("Project yolo-v8/detection saved.").wait_for()
    page.get_by_test_id("delete-project").click()  # it holds nothing now: it goes at once
    page.wait_for_url("**/ui/projects")

    page.get_by_role("link", name="yolo-v8").click()
    page.get_by_test_id("delete-project").click()
    page.get_by_test_id("errors-project").get_by_text("holds 2 model versions").wait_for()
    page.locator("#delete-force").check()
    page.get_by_test_id("delete-project").click()
    page.wait_for_url("**/ui/projects")
    assert page.get_by_test_id(f"projects-local/{workspace}").count() == 0
