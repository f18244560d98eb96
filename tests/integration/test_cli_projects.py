"""`allot projects|models|datasets ...` and `allot jobs submit --project` against the app in process: the project
tree built, shown, renamed, moved and deleted, models and datasets registered in versions, searched, shown and
deleted, each through the real API."""

from __future__ import annotations

import json

import pytest
from cli_inprocess import cli_runner
from inventory_helpers import API, make_user, quota, register_node

WS = f"{API}/clusters/local/workspaces"


@pytest.fixture
def allot_as(client, admin_headers, monkeypatch, tmp_path):
    return cli_runner(client, monkeypatch, tmp_path)


def test_the_projects_workflow_from_the_cli(client, admin_headers, allot_as):
    bob_headers = make_user(client, "bob", cluster_role="user")
    bob = allot_as(bob_headers)
    assert client.post(WS, headers=bob_headers, json={"name": "vision"}).status_code == 201
    code, out = bob("projects", "create", "vision/detection", "--description", "object detection")
    assert code == 0 and "project vision/detection created (id" in out, out
    assert bob("projects", "create", "vision/detection/yolo")[0] == 0
    assert bob("projects", "create", "vision/segmentation")[0] == 0
    code, out = bob("projects", "create", "vision/nowhere/x")
    assert code == 1 and "parent: no project 'nowhere' in workspace vision" in out
    code, out = bob("projects", "list", "--workspace", "vision")
    lines = [line for line in out.splitlines() if "vision" in line]
    assert [line.split("│")[3].strip() for line in lines] == ["detection", "yolo", "segmentation"], out
    assert "  yolo" in out  # sub-projects indented under their parent

    code, out = bob("models", "register", "vision/detection/yolo", "yolov8", "s3://models/yolov8/1",
                    "--meta", "framework=pytorch", "--meta", "map=0.61")
    assert code == 0 and "model yolov8 version 1 registered in project vision/detection/yolo" in out, out
    code, out = bob("models", "register", "vision/detection/yolo", "yolov8", "/data/models/yolov8-2",
                    "--metadata-json", '{"framework": "pytorch", "map": 0.66}', "--description", "retrained")
    assert code == 0 and "version 2" in out
    code, out = bob("models", "list", "vision/detection/yolo", "--json")
    assert [(m["name"], m["version"], m["versions"], m["metadata"]["map"]) for m in json.loads(out)] == [
        ("yolov8", 2, 2, 0.66)]
    code, out = bob("models", "list", "--search", "map=0.66", "--json")
    assert [m["name"] for m in json.loads(out)] == ["yolov8"]
    code, out = bob("models", "list", "vision/detection", "--recursive", "--search", "pytorch")
    assert code == 0 and "yolov8" in out and "vision/detection/yolo" in out
    code, out = bob("models", "versions", "vision/detection/yolo", "yolov8")
    assert code == 0 and out.index("/data/models/yolov8-2") < out.index("s3://models/yolov8/1")
    code, out = bob("models", "show", "vision/detection/yolo", "yolov8", "--version", "1")
    assert code == 0 and "s3://models/yolov8/1" in out and '"map": 0.61' in out
    code, out = bob("models", "show", "vision/detection/yolo", "yolov8", "--version", "7")
    assert code == 1 and "model yolov8 has no version 7" in out
    code, out = bob("datasets", "register", "vision/detection", "coco", "relative/path")
    assert code == 1 and "uri:" in out and "relative path" in out
    assert bob("datasets", "register", "vision/detection", "coco", "gs://data/coco")[0] == 0
    code, out = bob("projects", "show", "vision/detection")
    assert code == 0 and "coco@1" in out and "sub-projects  1" in out, out

    code, out = bob("projects", "move", "vision/detection/yolo", "vision/segmentation")
    assert code == 0 and "moved to vision/segmentation/yolo" in out
    code, out = bob("projects", "move", "vision/segmentation", "vision/segmentation/yolo")
    assert code == 1 and "cannot move under one of its own sub-projects" in out
    code, out = bob("projects", "rename", "vision/segmentation/yolo", "yolo-v8")
    assert code == 0 and "renamed to vision/segmentation/yolo-v8" in out
    code, out = bob("projects", "move", "vision/segmentation/yolo-v8", "--top")
    assert code == 0 and "moved to vision/yolo-v8" in out

    code, out = bob("models", "delete", "vision/yolo-v8", "yolov8", "--version", "1")
    assert code == 0 and "model yolov8: deleted version 1" in out
    code, out = bob("projects", "delete", "vision/detection")
    assert code == 1 and "holds 1 dataset version" in out
    code, out = bob("projects", "delete", "vision/detection", "--force")
    assert code == 1 and "pass --yes" in out
    code, out = bob("projects", "delete", "vision/detection", "--force", "--yes")
    assert code == 0 and "project vision/detection deleted with 1 dataset versions" in out
    code, out = bob("models", "delete", "vision/yolo-v8", "yolov8", "--all-versions")
    assert code == 0 and "deleted version 2" in out
    assert bob("projects", "delete", "vision/yolo-v8")[0] == 0
    code, out = bob("projects", "show", "vision/yolo-v8")
    assert code == 1 and "no project 'yolo-v8' in workspace vision" in out


def test_jobs_submit_takes_a_project(client, admin_headers, allot_as):
    register_node(client, admin_headers, "gpu-01", "H100", 1)
    client.post(f"{API}/clusters/local/pools", headers=admin_headers, json={"name": "h100", "nodes": ["gpu-01"]})
    quota(client, admin_headers, "research", gpu="1", pool="h100")
    assert client.put(f"{API}/quotas/research/bindings/groups/users", headers=admin_headers).status_code == 204
    bob_headers = make_user(client, "bob", cluster_role="user")
    carol = allot_as(make_user(client, "carol", cluster_role="user"))
    bob = allot_as(bob_headers)
    assert client.post(WS, headers=bob_headers, json={"name": "vision"}).status_code == 201
    assert bob("projects", "create", "vision/detection")[0] == 0
    code, out = bob("jobs", "submit", "--quota", "research", "--project", "vision/detection", "--json", "--", "true")
    assert code == 0 and json.loads(out)["project_id"] is not None, out
    code, out = carol("jobs", "submit", "--quota", "research", "--project", "vision/detection", "--", "true")
    assert code == 1 and "project: you may not add jobs to project" in out and "not a member" in out
    code, out = bob("projects", "list", "--json")
    assert [p["counts"]["jobs"] for p in json.loads(out)] == [1]
    code, out = bob("projects", "jobs", "vision/detection")
    assert code == 0 and "bob" in out and "research" in out and "queued" in out, out
