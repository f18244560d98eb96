"""The console's projects pages over HTTP: the tree, a project created in a workspace and a sub-project under it,
models and datasets registered in versions (field messages for a bad URI and bad metadata), renaming and moving,
deleting refused while the project holds something and forced, and a viewer who sees but cannot change."""

from __future__ import annotations

import re

from integration.test_web_console import csrf, make_user, sign_in

WS = "/api/v1/clusters/local/workspaces"


def post(client, page: str, action: str, **data):
    return client.post(action, data={**data, "csrf_token": csrf(client, page)}, follow_redirects=False)


def test_the_project_pages(client, admin_headers):
    for name in ("bob", "dave"):
        make_user(client, admin_headers, name)
        client.put(f"/api/v1/clusters/local/users/{name}", headers=admin_headers, json={"role": "user"})
    assert sign_in(client, "bob", "Passw0rd!x").status_code == 303
    assert client.post(WS, data=None, json={"name": "vision"},
                       headers={"x-csrf-token": csrf(client, "/ui/projects")}).status_code == 201
    assert client.put(f"{WS}/vision/members/users/dave", json={"role": "viewer"},
                      headers={"x-csrf-token": csrf(client, "/ui/projects")}).status_code == 204
    home = client.get("/ui/projects").text
    assert 'href="/ui/projects"' in home and "No projects yet" in home
    workspace_id = re.search(r'<option value="(\d+)"[^>]*>local/vision</option>', home).group(1)
    r = post(client, "/ui/projects", "/ui/projects", workspace=workspace_id, name="detection",
             description="object detection")
    assert r.status_code == 303
    page = r.headers["location"]
    r = post(client, "/ui/projects", "/ui/projects", workspace=workspace_id, name="detection")
    assert r.status_code == 409 and 'data-testid="errors-name"' in r.text
    r = post(client, page, f"{page}/subprojects", name="yolo")
    assert r.status_code == 303
    child = r.headers["location"]
    tree = client.get("/ui/projects").text
    assert 'data-testid="project-row-detection"' in tree and 'data-testid="project-row-detection/yolo"' in tree

    r = post(client, child, f"{child}/models", name="yolov8", uri="s3://models/yolov8",
             metadata='{"framework": "pytorch"}')
    assert r.status_code == 303
    r = post(client, child, f"{child}/models", name="yolov8", uri="/data/yolov8-2")
    assert r.status_code == 303
    shown = client.get(child).text
    assert 'data-testid="model-yolov8"' in shown and "of 2" in shown and "/data/yolov8-2" in shown
    r = post(client, child, f"{child}/datasets", name="coco", uri="relative/coco")
    assert r.status_code == 422 and 'data-testid="errors-dataset-uri"' in r.text
    r = post(client, child, f"{child}/datasets", name="coco", uri="/d", metadata="[1, 2]")
    assert r.status_code == 422 and 'data-testid="errors-dataset-metadata"' in r.text
    assert post(client, child, f"{child}/datasets", name="coco", uri="gs://b/coco").status_code == 303

    parent_id = page.rsplit("/", 1)[1]
    r = post(client, child, f"{child}/edit", name="yolo", description="", parent=child.rsplit("/", 1)[1])
    assert r.status_code == 422 and 'data-testid="errors-edit-parent"' in r.text
    r = post(client, child, f"{child}/edit", name="yolo-v8", description="detectors", parent="")
    assert r.status_code == 303
    assert "path yolo-v8" in client.get(child).text
    r = post(client, child, f"{child}/edit", name="yolo-v8", description="detectors", parent=parent_id)
    assert r.status_code == 303 and "path detection/yolo-v8" in client.get(child).text

    client.cookies.clear()
    assert sign_in(client, "dave", "Passw0rd!x").status_code == 303
    viewer = client.get(child).text
    assert 'data-testid="model-yolov8"' in viewer and 'data-testid="register-model-form"' not in viewer
    assert post(client, child, f"{child}/models", name="x", uri="/x").status_code == 403

    client.cookies.clear()
    assert sign_in(client, "bob", "Passw0rd!x").status_code == 303
    r = post(client, page, f"{page}/delete")
    assert r.status_code == 409 and "holds 1 sub-project" in r.text
    entry = re.search(r'/models/(\d+)/delete', client.get(child).text).group(1)
    r = post(client, child, f"{child}/models/{entry}/delete")
    assert r.status_code == 303
    r = post(client, page, f"{page}/delete", force="on")
    assert r.status_code == 303 and r.headers["location"] == "/ui/projects"
    assert client.get(child).status_code == 404
