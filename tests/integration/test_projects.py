"""Projects, models and datasets through the API: the tree (sibling names, cycles, the depth bound), rename and move,
deletion refused while a project holds something and forced, versioned models and datasets with search, jobs
submitted to a project, and who may read and change them (workspace members; viewers read only)."""

from __future__ import annotations

import pytest
from inventory_helpers import API, make_user, quota, register_node
from sqlalchemy import select

from allotment.core.projects import MAX_DEPTH

WS = f"{API}/clusters/local/workspaces"


@pytest.fixture
def team(client, admin_headers):
    """Workspace vision owned by bob, carol a member, dave a viewer; eve a user of the cluster outside it."""
    people = {name: make_user(client, name, cluster_role="user") for name in ("bob", "carol", "dave", "eve")}
    assert client.post(WS, headers=people["bob"], json={"name": "vision"}).status_code == 201
    for name, role in (("carol", "member"), ("dave", "viewer")):
        r = client.put(f"{WS}/vision/members/users/{name}", headers=people["bob"], json={"role": role})
        assert r.status_code == 204, r.text
    return people


def create(client, headers, name, parent=None, workspace="vision", expect=201, **extra):
    body = {"workspace": workspace, "name": name, **extra}
    if parent is not None:
        body["parent"] = parent
    r = client.post(f"{API}/projects", headers=headers, json=body)
    assert r.status_code == expect, r.text
    return r.json()


def test_a_project_tree_with_unique_sibling_names_paths_and_counts(client, team):
    bob = team["bob"]
    top = create(client, bob, "detection", description="object detection")
    yolo = create(client, bob, "yolo", parent="detection")
    v8 = create(client, team["carol"], "v8", parent=str(yolo["id"]))
    assert (v8["path"], v8["depth"], v8["workspace"], v8["cluster"], v8["created_by"]) == (
        "detection/yolo/v8", 2, "vision", "local", "carol")
    create(client, bob, "yolo", parent="detection/yolo")  # the same name under another parent
    r = client.post(f"{API}/projects", headers=bob, json={"workspace": "vision", "name": "yolo", "parent": "detection"})
    assert r.status_code == 409 and r.json()["errors"][0]["field"] == "name"
    assert "already exists under the same parent" in r.json()["detail"]
    r = client.post(f"{API}/projects", headers=bob, json={"workspace": "vision", "name": "Detecti0n"})
    assert r.status_code == 409 and "could be taken for the project detection" in r.json()["detail"]
    r = client.post(f"{API}/projects", headers=bob, json={"workspace": "vision", "name": "a/b"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "name"
    r = client.post(f"{API}/projects", headers=bob, json={"workspace": "vision", "name": "x", "parent": "nowhere"})
    assert r.status_code == 404 and r.json()["errors"] == [
        {"field": "parent", "message": "no project 'nowhere' in workspace vision"}]
    listed = client.get(f"{API}/projects", headers=bob, params={"workspace": "vision"}).json()
    assert [(p["path"], p["depth"]) for p in listed["items"]] == [
        ("detection", 0), ("detection/yolo", 1), ("detection/yolo/v8", 2), ("detection/yolo/yolo", 2)]
    shown = client.get(f"{API}/projects/{top['id']}", headers=bob).json()
    assert shown["counts"]["subprojects"] == 1 and shown["children"] == [yolo["id"]]
    found = client.get(f"{API}/projects", headers=bob, params={"workspace": "vision", "path": "detection/yolo/v8"})
    assert [p["id"] for p in found.json()["items"]] == [v8["id"]]
    searched = client.get(f"{API}/projects", headers=bob, params={"search": "V8"}).json()["items"]
    assert [p["path"] for p in searched] == ["detection", "detection/yolo", "detection/yolo/v8"]


def test_moving_refuses_cycles_and_the_depth_bound_and_renaming_keeps_siblings_unique(client, team):
    bob = team["bob"]
    a = create(client, bob, "a")
    b = create(client, bob, "b", parent="a")
    c = create(client, bob, "c", parent="a/b")
    other = create(client, bob, "other")
    for target, message in ((c["id"], "a project cannot move under one of its own sub-projects"),
                            (a["id"], "a project cannot move under itself")):
        r = client.patch(f"{API}/projects/{a['id']}", headers=bob, json={"parent": str(target)})
        assert r.status_code == 422 and r.json()["errors"] == [{"field": "parent", "message": message}], r.text
    r = client.patch(f"{API}/projects/{b['id']}", headers=bob, json={"parent": "other"})
    assert r.status_code == 200 and r.json()["path"] == "other/b"
    assert client.get(f"{API}/projects/{c['id']}", headers=bob).json()["path"] == "other/b/c"
    r = client.patch(f"{API}/projects/{b['id']}", headers=bob, json={"parent": None, "name": "b2"})
    assert r.status_code == 200 and (r.json()["path"], r.json()["parent_id"]) == ("b2", None)
    r = client.patch(f"{API}/projects/{other['id']}", headers=bob, json={"name": "a"})
    assert r.status_code == 409 and "already exists at the top of the workspace" in r.json()["detail"]
    # A chain MAX_DEPTH deep takes no project below it, and a subtree does not move where it would pass the bound.
    parent = None
    for level in range(MAX_DEPTH):
        parent = create(client, bob, f"l{level}", parent=str(parent["id"]) if parent else None)
    r = client.post(f"{API}/projects", headers=bob, json={"workspace": "vision", "name": "deep",
                                                         "parent": str(parent["id"])})
    assert r.status_code == 422 and r.json()["errors"][0]["message"] == (
        f"projects nest at most {MAX_DEPTH} levels deep; this would make {MAX_DEPTH + 1}")
    r = client.patch(f"{API}/projects/{b['id']}", headers=bob, json={"parent": str(parent["id"] - 1)})
    assert r.status_code == 422 and "levels deep" in r.json()["errors"][0]["message"]


def test_models_and_datasets_are_versioned_searched_and_deleted(client, team):
    bob, carol = team["bob"], team["carol"]
    project = create(client, bob, "detection")
    ref = "vision/detection"
    r = client.post(f"{API}/models", headers=carol, json={
        "project": ref, "name": "yolo", "uri": "s3://models/yolo/1", "metadata": {"framework": "pytorch", "map": 0.5}})
    assert r.status_code == 201, r.text
    first = r.json()
    assert (first["version"], first["project"], first["workspace"], first["created_by"]) == (
        1, "detection", "vision", "carol")
    second = client.post(f"{API}/models", headers=bob, json={
        "project": str(project["id"]), "name": "yolo", "uri": "/data/models/yolo-2",
        "metadata": {"framework": "pytorch", "map": 0.6}}).json()
    assert second["version"] == 2
    client.post(f"{API}/models", headers=bob, json={"project": ref, "name": "detr", "uri": "gs://b/detr",
                                                    "metadata": {"framework": "jax"}})
    listed = client.get(f"{API}/models", headers=bob, params={"project": ref}).json()["items"]
    assert [(m["name"], m["version"], m["versions"]) for m in listed] == [("detr", 1, 1), ("yolo", 2, 2)]
    for search, names in (("framework=jax", ["detr"]), ("PYTORCH", ["yolo"]), ("gs://", ["detr"]), ("zzz", [])):
        found = client.get(f"{API}/models", headers=bob, params={"project": ref, "search": search}).json()["items"]
        assert [m["name"] for m in found] == names, search
    versions = client.get(f"{API}/models/{first['id']}/versions", headers=dave_or(team)).json()["items"]
    assert [(v["version"], v["uri"]) for v in versions] == [(2, "/data/models/yolo-2"), (1, "s3://models/yolo/1")]
    # Datasets: the same routes, their own names and versions.
    data = client.post(f"{API}/datasets", headers=bob, json={"project": ref, "name": "yolo",
                                                              "uri": "git@github.com:org/data.git"}).json()
    assert (data["kind"], data["version"]) == ("dataset", 1)
    for uri, message in (("data/relative", "a relative path means nothing"), ("ftp://x/y", "unknown scheme 'ftp'"),
                         ("s3:///nobucket", "names its host or bucket"), ("S3://b/k", "schemes in lower case"),
                         ("/a b", "must not contain spaces")):
        r = client.post(f"{API}/datasets", headers=bob, json={"project": ref, "name": "bad", "uri": uri})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "uri" and message in r.text, uri
    r = client.post(f"{API}/datasets", headers=bob, json={"project": ref, "name": "m", "uri": "/d",
                                                           "metadata": {"x": {"a": {"b": {"c": {"d": 1}}}}}})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "metadata"
    r = client.post(f"{API}/datasets", headers=bob, json={"project": "vision/nowhere", "name": "m", "uri": "/d"})
    assert r.status_code == 404 and r.json()["errors"][0]["field"] == "project"
    # Deleting one version, then every version of a name.
    r = client.delete(f"{API}/models/{second['id']}", headers=bob)
    assert r.status_code == 200 and r.json() == {"name": "yolo", "deleted_versions": [2]}
    assert client.get(f"{API}/models/{first['id']}", headers=bob).json()["versions"] == 1
    client.post(f"{API}/models", headers=bob, json={"project": ref, "name": "yolo", "uri": "/m/3"})
    r = client.delete(f"{API}/models/{first['id']}", headers=bob, params={"all_versions": "true"})
    assert r.json()["deleted_versions"] == [1, 3]
    assert client.get(f"{API}/models/{first['id']}", headers=bob).status_code == 404


def dave_or(team):
    return team["dave"]  # a viewer reads


def test_who_may_read_and_change_projects_models_and_datasets(client, admin_headers, team):
    bob, dave, eve = team["bob"], team["dave"], team["eve"]
    project = create(client, bob, "detection")
    model = client.post(f"{API}/models", headers=bob, json={"project": "vision/detection", "name": "m",
                                                            "uri": "/m"}).json()
    assert client.get(f"{API}/projects/{project['id']}", headers=dave).status_code == 200
    assert client.get(f"{API}/models/{model['id']}", headers=dave).status_code == 200
    for method, path, body in (("post", "/projects", {"workspace": "vision", "name": "x"}),
                               ("patch", f"/projects/{project['id']}", {"name": "y"}),
                               ("delete", f"/projects/{project['id']}", None),
                               ("post", "/models", {"project": "vision/detection", "name": "n", "uri": "/n"}),
                               ("delete", f"/models/{model['id']}", None)):
        r = client.request(method.upper(), f"{API}{path}", headers=dave, json=body)
        assert r.status_code == 403 and "viewers of a workspace read" in r.json()["detail"], (method, path)
        r = client.request(method.upper(), f"{API}{path}", headers=eve, json=body)
        assert r.status_code == 403 and "not a member of this project's workspace" in r.json()["detail"]
    assert client.get(f"{API}/projects/{project['id']}", headers=eve).status_code == 403
    assert client.get(f"{API}/projects", headers=eve).json()["items"] == []
    assert client.get(f"{API}/models", headers=eve).json()["items"] == []
    assert [m["name"] for m in client.get(f"{API}/models", headers=dave).json()["items"]] == ["m"]
    # The platform admin manages every workspace's projects.
    assert client.patch(f"{API}/projects/{project['id']}", headers=admin_headers,
                        json={"description": "by admin"}).status_code == 200
    assert client.get(f"{API}/projects/x", headers=bob).status_code == 422


@pytest.fixture
def quota_for_all(client, admin_headers, team):
    register_node(client, admin_headers, "gpu-01", "H100", 2)
    client.post(f"{API}/clusters/local/pools", headers=admin_headers, json={"name": "h100", "nodes": ["gpu-01"]})
    quota(client, admin_headers, "research", gpu="2", pool="h100")
    r = client.put(f"{API}/quotas/research/bindings/groups/users", headers=admin_headers)
    assert r.status_code == 204, r.text
    return team


def test_jobs_submitted_to_a_project_and_deleting_a_project_that_holds_things(client, admin_headers, quota_for_all):
    team = quota_for_all
    bob, carol, dave, eve = (team[n] for n in ("bob", "carol", "dave", "eve"))
    project = create(client, bob, "detection")
    child = create(client, bob, "yolo", parent="detection")
    job = {"quota": "research", "cpu": "1", "command": ["true"]}
    r = client.post(f"{API}/jobs", headers=carol, json={**job, "project": "vision/detection/yolo"})
    assert r.status_code == 201 and r.json()["project_id"] == child["id"], r.text
    for headers, status, words in ((dave, 403, "viewers of a workspace read"),
                                   (eve, 403, "not a member of this project's workspace"),
                                   (carol, 404, "no project 'nope' in workspace vision")):
        r = client.post(f"{API}/jobs", headers=headers, json={**job, "project": "vision/nope" if status == 404
                                                              else str(child["id"])})
        assert r.status_code == status and r.json()["errors"][0]["field"] == "project", r.text
        assert words in r.json()["errors"][0]["message"]
    r = client.post(f"{API}/jobs/batch", headers=carol, json={"jobs": [job, {**job, "project": str(project["id"])}]})
    assert r.status_code == 201
    listed = client.get(f"{API}/projects/{child['id']}/jobs", headers=dave).json()
    assert listed["total"] == 1 and listed["items"][0]["owner"] == "carol"
    client.post(f"{API}/datasets", headers=bob, json={"project": "vision/detection", "name": "coco", "uri": "/d"})

    r = client.delete(f"{API}/projects/{project['id']}", headers=bob)
    assert r.status_code == 409 and r.json()["detail"].startswith(
        "project detection holds 1 sub-project, 1 dataset version, 2 jobs")
    r = client.delete(f"{API}/projects/{project['id']}", headers=bob, params={"force": "true"})
    assert r.status_code == 409 and "has unfinished jobs: job" in r.json()["detail"]
    for job_id in (j["id"] for j in client.get(f"{API}/jobs", headers=carol).json()["items"]):
        client.post(f"{API}/jobs/{job_id}/cancel", headers=carol)
    r = client.delete(f"{API}/projects/{project['id']}", headers=bob, params={"force": "true"})
    assert r.status_code == 200 and r.json() == {"deleted_projects": 2, "deleted_model_versions": 0,
                                                 "deleted_dataset_versions": 1, "detached_jobs": 2}
    kept = client.get(f"{API}/jobs", headers=carol).json()["items"]
    assert len(kept) == 3 and all(j["project_id"] is None for j in kept)
    assert client.get(f"{API}/projects/{child['id']}", headers=bob).status_code == 404
    assert client.delete(f"{API}/projects/{create(client, bob, 'empty')['id']}", headers=bob).status_code == 200


def test_a_sibling_written_at_the_same_moment_is_409_not_a_server_error(client, team):
    """The unique indexes back the check before the write: a duplicate that slips past it is the same 409."""
    from inventory_helpers import sessions

    from allotment.errors import Conflict
    from allotment.projects import service
    from allotment.projects.models import Project

    create(client, team["bob"], "detection")
    with sessions(client)() as session:
        workspace_id = session.scalar(select(Project.workspace_id))
        with pytest.raises(Conflict) as caught:
            service._save(session, Project(workspace_id=workspace_id, parent_id=None, name="detection"))
        assert caught.value.errors[0].field == "name"


def test_deleting_a_workspace_takes_its_projects_and_keeps_its_jobs(client, admin_headers, quota_for_all):
    bob = quota_for_all["bob"]
    project = create(client, bob, "detection")
    create(client, bob, "yolo", parent="detection")
    client.post(f"{API}/models", headers=bob, json={"project": "vision/detection", "name": "m", "uri": "/m"})
    job = client.post(f"{API}/jobs", headers=bob, json={"quota": "research", "cpu": "1", "command": ["true"],
                                                        "project": "vision/detection"}).json()
    assert client.delete(f"{WS}/vision", headers=bob).status_code == 204
    assert client.get(f"{API}/projects/{project['id']}", headers=admin_headers).status_code == 404
    assert client.get(f"{API}/projects", headers=admin_headers).json()["items"] == []
    assert client.get(f"{API}/jobs/{job['id']}", headers=bob).json()["project_id"] is None
