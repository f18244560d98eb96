"""Access rules (ClearML) through the API: create, edit, delete, list with filters; who may grant; the workspace's
default; and the rules acting on projects, their sub-projects and contents (inheritance), jobs one by one, models,
datasets and quotas, for users and service accounts alike."""

from __future__ import annotations

import pytest

from conftest import login

API = "/api/v1"
PASSWORD = "Str0ng-password!"
WS = f"{API}/clusters/local/workspaces"


def person(client, headers, name: str) -> dict[str, str]:
    r = client.post(f"{API}/users", headers=headers,
                    json={"email": f"{name}@example.com", "username": name, "password": PASSWORD})
    assert r.status_code == 201, r.text
    assert client.put(f"{API}/clusters/local/users/{name}", headers=headers, json={"role": "user"}).status_code == 200
    return login(client, name, PASSWORD)


def project(client, headers, name: str, parent: str | None = None) -> int:
    r = client.post(f"{API}/projects", headers=headers,
                    json={"workspace": "team", "name": name, **({"parent": parent} if parent else {})})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def rule(client, headers, resource_type: str, level: str, grantees, resource=None, workspace="team"):
    body = {"resource_type": resource_type, "level": level,
            "grantees": [{"kind": k, "name": n} for k, n in grantees]}
    if resource is not None:
        body["resource"] = resource
    if workspace is not None:
        body["workspace"] = workspace
    return client.post(f"{API}/access-rules", headers=headers, json=body)


@pytest.fixture
def team(client, admin_headers):
    """bob owns workspace `team` with members carol and dave; projects vision > detection > yolo, and nlp."""
    people = {name: person(client, admin_headers, name) for name in ("bob", "carol", "dave", "erin")}
    assert client.post(WS, headers=people["bob"], json={"name": "team"}).status_code == 201
    for name in ("carol", "dave"):
        assert client.put(f"{WS}/team/members/users/{name}", headers=people["bob"]).status_code in (200, 201, 204)
    assert client.post(f"{API}/groups", headers=admin_headers, json={"name": "vision-team"}).status_code == 201
    assert client.put(f"{API}/groups/vision-team/members/carol", headers=admin_headers).status_code in (200, 201, 204)
    ids = {"vision": project(client, people["bob"], "vision")}
    ids["detection"] = project(client, people["bob"], "detection", "vision")
    ids["yolo"] = project(client, people["bob"], "yolo", "vision/detection")
    ids["nlp"] = project(client, people["bob"], "nlp")
    return people, ids


def test_rules_are_created_listed_filtered_edited_and_deleted(client, admin_headers, team):
    people, ids = team
    bob, carol = people["bob"], people["carol"]
    r = rule(client, bob, "project", "modify", [("group", "vision-team")], resource="vision")
    assert r.status_code == 201, r.text
    made = r.json()
    assert (made["workspace"], made["cluster"], made["resource"], made["resource_id"], made["level"]) == \
        ("team", "local", "project vision", ids["vision"], "modify")
    assert made["grantees"] == [{"kind": "group", "name": "vision-team"}]
    r = rule(client, bob, "model", "read", [("user", "dave"), ("group", "users")])
    assert r.status_code == 201 and r.json()["resource"] == "every model of the workspace"
    second = r.json()["id"]

    # Listing: every rule of the workspace, the View filter (resource type), one resource, one grantee.
    listed = client.get(f"{API}/access-rules", headers=carol, params={"workspace": "team"}).json()
    assert listed["total"] == 2
    only = client.get(f"{API}/access-rules", headers=bob, params={"resource_type": "model"}).json()["items"]
    assert [i["id"] for i in only] == [second]
    one = client.get(f"{API}/access-rules", headers=bob,
                     params={"workspace": "team", "resource_type": "project", "resource": "vision"}).json()["items"]
    assert [i["id"] for i in one] == [made["id"]]
    by_grantee = client.get(f"{API}/access-rules", headers=bob, params={"grantee": "dave"}).json()["items"]
    assert [i["id"] for i in by_grantee] == [second]
    by_group = client.get(f"{API}/access-rules", headers=bob, params={"grantee": "group:vision-team"}).json()
    assert [i["id"] for i in by_group["items"]] == [made["id"]]
    # erin is no member of the workspace: she sees none of its rules, and not one of them by id.
    assert client.get(f"{API}/access-rules", headers=people["erin"]).json()["total"] == 0
    assert client.get(f"{API}/access-rules/{second}", headers=people["erin"]).status_code == 404

    # Editing replaces the grantees and may change the level.
    r = client.patch(f"{API}/access-rules/{second}", headers=bob,
                     json={"level": "modify", "grantees": [{"kind": "user", "name": "dave"}]})
    assert r.status_code == 200, r.text
    assert (r.json()["level"], r.json()["grantees"]) == ("modify", [{"kind": "user", "name": "dave"}])
    assert client.delete(f"{API}/access-rules/{second}", headers=bob).status_code == 204
    assert client.get(f"{API}/access-rules/{second}", headers=bob).status_code == 404
    events = client.get(f"{API}/audit", params={"action": "access_rule.delete"}, headers=admin_headers).json()
    assert events["items"][0]["changes"]["before"]["grantees"] == ["user:dave"]


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"resource_type": "queue", "level": "read", "grantees": [{"kind": "user", "name": "dave"}]}, 422,
         "resource_type"),
        ({"resource_type": "project", "level": "write", "grantees": [{"kind": "user", "name": "dave"}]}, 422, "level"),
        ({"resource_type": "project", "level": "read", "grantees": []}, 422, "grantees"),
        ({"resource_type": "project", "level": "read", "grantees": [{"kind": "robot", "name": "dave"}]}, 422,
         "grantees.0.kind"),
        ({"resource_type": "project", "level": "read", "grantees": [{"kind": "user", "name": "nobody"}]}, 404,
         "grantees.0.name"),
        ({"resource_type": "project", "resource": "nowhere", "level": "read",
          "grantees": [{"kind": "user", "name": "dave"}]}, 404, "resource"),
        ({"resource_type": "job", "resource": "abc", "level": "read",
          "grantees": [{"kind": "user", "name": "dave"}]}, 422, "resource"),
        ({"resource_type": "folder", "level": "read", "grantees": [{"kind": "user", "name": "dave"}]}, 422,
         "resource_type"),
    ],
)
def test_bad_rules_name_the_field(client, admin_headers, team, body, status, field):
    people, _ = team
    r = client.post(f"{API}/access-rules", headers=people["bob"], json={"workspace": "team", **body})
    assert r.status_code == status, r.text
    assert field in [e["field"] for e in r.json()["errors"]], r.text


def test_who_may_grant(client, admin_headers, team):
    people, _ = team
    grant = [("user", "dave")]
    assert rule(client, people["carol"], "project", "read", grant).status_code == 403  # a member
    assert rule(client, people["erin"], "project", "read", grant).status_code == 403  # not a member
    assert rule(client, people["bob"], "project", "read", grant, workspace=None).status_code == 403  # platform rule
    assert rule(client, admin_headers, "project", "read", grant, workspace=None).status_code == 201
    assert rule(client, admin_headers, "quota", "read", grant, workspace=None).status_code == 201
    r = rule(client, people["bob"], "project", "read", grant)
    assert r.status_code == 201
    again = rule(client, people["bob"], "project", "read", [("user", "carol")])
    assert again.status_code == 409 and "edit its grantees" in again.json()["detail"]
    # A member of the workspace reads its rules but does not change them.
    assert client.patch(f"{API}/access-rules/{r.json()['id']}", headers=people["carol"],
                        json={"level": "modify"}).status_code == 403
    assert client.delete(f"{API}/access-rules/{r.json()['id']}", headers=people["carol"]).status_code == 403


def test_the_workspace_default_is_set_by_its_owners(client, admin_headers, team):
    people, _ = team
    url = f"{WS}/team/access-default"
    assert client.get(url, headers=people["carol"]).json()["default"] == "modify"
    assert client.put(url, headers=people["carol"], json={"default": "none"}).status_code == 403
    r = client.put(url, headers=people["bob"], json={"default": "maybe"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "default"
    assert client.put(url, headers=people["bob"], json={"default": "read"}).json()["default"] == "read"
    assert client.get(url, headers=people["dave"]).json()["default"] == "read"


def visible_projects(client, headers) -> set[str]:
    r = client.get(f"{API}/projects", headers=headers, params={"workspace": "team"})
    assert r.status_code == 200, r.text
    return {p["path"] for p in r.json()["items"]}


def test_a_project_rule_covers_its_sub_projects_and_only_its_grantees_keep_access(client, admin_headers, team):
    people, ids = team
    bob, carol, dave = people["bob"], people["carol"], people["dave"]
    everything = {"vision", "vision/detection", "vision/detection/yolo", "nlp"}
    assert visible_projects(client, dave) == everything  # no rule: the workspace's default, read and modify
    made = rule(client, bob, "project", "modify", [("group", "vision-team")], resource="vision").json()
    assert visible_projects(client, carol) == everything
    assert visible_projects(client, dave) == {"nlp"}
    for name in ("vision", "detection", "yolo"):
        r = client.get(f"{API}/projects/{ids[name]}", headers=dave)
        assert r.status_code == 403 and "no access rule grants it" in r.json()["detail"], r.text
    assert client.patch(f"{API}/projects/{ids['yolo']}", headers=carol, json={"description": "mine"}).status_code == 200
    # A sub-project cannot be made, nor a project moved, under a project one may not modify.
    r = client.post(f"{API}/projects", headers=dave, json={"workspace": "team", "name": "x", "parent": "vision"})
    assert r.status_code == 403
    assert client.patch(f"{API}/projects/{ids['nlp']}", headers=dave, json={"parent": "vision"}).status_code == 403
    # The owner of the workspace is a member like the others: the rule binds bob too; its cluster's admins not.
    assert client.get(f"{API}/projects/{ids['yolo']}", headers=bob).status_code == 403
    assert client.get(f"{API}/projects/{ids['yolo']}", headers=admin_headers).status_code == 200

    # Read-only on the sub-project for dave: he reads it and what is under it, and modifies nothing there.
    rule(client, bob, "project", "read", [("user", "dave")], resource="vision/detection")
    assert visible_projects(client, dave) == {"vision/detection", "vision/detection/yolo", "nlp"}
    r = client.patch(f"{API}/projects/{ids['yolo']}", headers=dave, json={"description": "his"})
    assert r.status_code == 403 and "read-only" in r.json()["detail"]

    # Deleting the project rule removes only what it granted: dave keeps the read he was given on detection.
    assert client.delete(f"{API}/access-rules/{made['id']}", headers=bob).status_code == 204
    assert visible_projects(client, carol) == {"vision", "nlp"}
    assert visible_projects(client, dave) == everything


def test_the_default_and_the_role_decide_where_no_rule_covers(client, admin_headers, team):
    people, ids = team
    bob, carol, dave = people["bob"], people["carol"], people["dave"]
    assert client.patch(f"{WS}/team/members/users/dave", headers=bob, json={"role": "viewer"}).status_code == 204
    r = client.patch(f"{API}/projects/{ids['nlp']}", headers=dave, json={"description": "x"})
    assert r.status_code == 403 and "viewers" in r.json()["detail"]  # the role caps the default
    rule(client, bob, "project", "modify", [("user", "dave")], resource="nlp")
    assert client.patch(f"{API}/projects/{ids['nlp']}", headers=dave, json={"description": "x"}).status_code == 200

    assert client.put(f"{WS}/team/access-default", headers=bob, json={"default": "none"}).status_code == 200
    assert visible_projects(client, carol) == set()
    assert visible_projects(client, dave) == {"nlp"}
    assert client.put(f"{WS}/team/access-default", headers=bob, json={"default": "read"}).status_code == 200
    assert client.patch(f"{API}/projects/{ids['vision']}", headers=carol, json={"description": "x"}).status_code == 403
    assert client.get(f"{API}/projects/{ids['vision']}", headers=carol).status_code == 200


def test_rules_apply_to_service_accounts_as_to_users(client, admin_headers, team):
    from access_helpers import key_headers

    people, ids = team
    bob = people["bob"]
    r = client.post(f"{API}/service-accounts", headers=admin_headers, json={"name": "robot"})
    assert r.status_code == 201, r.text
    r = client.post(f"{API}/service-accounts/robot/credentials", headers=admin_headers, json={})
    assert r.status_code == 201, r.text
    robot = key_headers(r.json())
    assert client.put(f"{WS}/team/members/service-accounts/robot", headers=bob).status_code in (200, 201, 204)
    assert visible_projects(client, robot) == {"vision", "vision/detection", "vision/detection/yolo", "nlp"}
    rule(client, bob, "project", "read", [("service_account", "robot")], resource="nlp")
    assert client.get(f"{API}/projects/{ids['nlp']}", headers=robot).status_code == 200
    assert client.patch(f"{API}/projects/{ids['nlp']}", headers=robot, json={"description": "x"}).status_code == 403
    assert client.get(f"{API}/projects/{ids['nlp']}", headers=people["dave"]).status_code == 403


def test_a_rule_on_one_job_covers_that_job_and_not_its_siblings(client, admin_headers, team):
    from inventory_helpers import register_node

    people, ids = team
    bob, carol, dave = people["bob"], people["carol"], people["dave"]
    register_node(client, admin_headers, "gpu-01", "H100", 2)
    r = client.post(f"{API}/clusters/local/quotas", headers=admin_headers, json={"name": "research"})
    assert r.status_code == 201, r.text
    assert client.put(f"{API}/quotas/research/bindings/groups/users", headers=admin_headers).status_code == 204
    job = {"quota": "research", "cpu": "1", "command": ["sleep", "60"], "project": "team/nlp"}
    first, second = (client.post(f"{API}/jobs", headers=bob, json=job).json()["id"] for _ in range(2))

    # No rule: members of the workspace read the project's jobs; only the owner (and managers) cancel them.
    assert client.get(f"{API}/jobs/{first}", headers=carol).status_code == 200
    listed = client.get(f"{API}/projects/{ids['nlp']}/jobs", headers=dave).json()["items"]
    assert {j["id"] for j in listed} == {first, second}
    # A rule on the first job: its grantee alone (besides its owner) reads it, and may cancel it; the sibling is
    # not covered.
    assert rule(client, bob, "job", "modify", [("user", "carol")], resource=str(first)).status_code == 201
    assert client.get(f"{API}/jobs/{first}", headers=dave).status_code == 404
    assert client.get(f"{API}/jobs/{second}", headers=dave).status_code == 200
    listed = client.get(f"{API}/projects/{ids['nlp']}/jobs", headers=dave).json()["items"]
    assert {j["id"] for j in listed} == {second}
    assert client.post(f"{API}/jobs/{second}/cancel", headers=dave).status_code == 200  # default: read and modify
    r = client.post(f"{API}/jobs/{first}/cancel", headers=carol)
    assert r.status_code == 200 and r.json()["state"] == "cancelled", r.text
    assert client.get(f"{API}/jobs/{first}", headers=bob).status_code == 200  # its owner keeps it

    # Read-only: the grantee reads the job but may not cancel it.
    third = client.post(f"{API}/jobs", headers=bob, json=job).json()["id"]
    assert rule(client, bob, "job", "read", [("user", "dave")], resource=str(third)).status_code == 201
    assert client.get(f"{API}/jobs/{third}", headers=dave).status_code == 200
    # Reading a job includes its output (ClearML's console log) and its environment, hidden values masked.
    assert client.get(f"{API}/jobs/{third}/logs", headers=dave).status_code == 200
    assert client.get(f"{API}/jobs/{third}", headers=dave).json()["environment"] is not None
    assert client.get(f"{API}/jobs/{first}/logs", headers=dave).status_code == 404
    r = client.post(f"{API}/jobs/{third}/cancel", headers=dave)
    assert r.status_code == 403 and "read-only" in r.json()["detail"], r.text


def test_rules_on_a_quota_decide_who_sees_it_and_submits_to_it(client, admin_headers, team):
    from inventory_helpers import register_node

    people, _ = team
    carol, dave, erin = people["carol"], people["dave"], people["erin"]
    register_node(client, admin_headers, "gpu-01", "H100", 2)
    for name in ("research", "open"):
        assert client.post(f"{API}/clusters/local/quotas", headers=admin_headers, json={"name": name}).status_code \
            == 201
        assert client.put(f"{API}/quotas/{name}/bindings/groups/users", headers=admin_headers).status_code == 204
    job = {"cpu": "1", "command": ["true"]}
    assert client.post(f"{API}/jobs", headers=dave, json={**job, "quota": "research"}).status_code == 201

    r = rule(client, admin_headers, "quota", "read", [("user", "carol")], resource="research", workspace=None)
    assert r.status_code == 201 and r.json()["workspace"] is None, r.text
    assert rule(client, admin_headers, "quota", "modify", [("user", "erin")], resource="research",
                workspace=None).status_code == 201
    r = client.post(f"{API}/jobs", headers=carol, json={**job, "quota": "research"})
    assert r.status_code == 403 and "read-only" in r.json()["detail"], r.text
    r = client.post(f"{API}/jobs", headers=dave, json={**job, "quota": "research"})
    assert r.status_code == 403 and "no access" in r.json()["detail"], r.text
    assert client.post(f"{API}/jobs", headers=erin, json={**job, "quota": "research"}).status_code == 201
    assert client.post(f"{API}/jobs", headers=dave, json={**job, "quota": "open"}).status_code == 201  # no rule
    assert client.get(f"{API}/quotas/research", headers=carol).status_code == 200
    assert client.get(f"{API}/quotas/research", headers=dave).status_code == 403
    assert {q["name"] for q in client.get(f"{API}/quotas", headers=dave).json()["items"]} == {"open"}
    assert client.get(f"{API}/quotas/research", headers=admin_headers).status_code == 200


def test_deleting_a_quota_deletes_its_rules(client, admin_headers, team):
    assert client.post(f"{API}/clusters/local/quotas", headers=admin_headers, json={"name": "gone"}).status_code == 201
    made = rule(client, admin_headers, "quota", "read", [("user", "carol")], resource="gone", workspace=None).json()
    assert client.delete(f"{API}/quotas/gone", headers=admin_headers).status_code == 204
    assert client.get(f"{API}/access-rules/{made['id']}", headers=admin_headers).status_code == 404


def test_rules_on_models_and_datasets(client, admin_headers, team):
    people, ids = team
    bob, carol, dave = people["bob"], people["carol"], people["dave"]
    made = {}
    for kind, name in (("models", "resnet"), ("models", "bert"), ("datasets", "imagenet")):
        r = client.post(f"{API}/{kind}", headers=bob, json={"project": str(ids["nlp"]), "name": name,
                                                              "uri": f"s3://bucket/{name}"})
        assert r.status_code == 201, r.text
        made[name] = r.json()["id"]
    # One model's rule covers that model only; a type rule covers every dataset of the workspace.
    assert rule(client, bob, "model", "read", [("user", "carol")], resource=str(made["resnet"])).status_code == 201
    assert rule(client, bob, "dataset", "read", [("group", "vision-team")]).status_code == 201
    assert client.get(f"{API}/models/{made['resnet']}", headers=dave).status_code == 403
    assert client.get(f"{API}/models/{made['bert']}", headers=dave).status_code == 200
    assert {m["name"] for m in client.get(f"{API}/models", headers=dave).json()["items"]} == {"bert"}
    assert client.get(f"{API}/models/{made['resnet']}", headers=carol).status_code == 200
    r = client.delete(f"{API}/models/{made['resnet']}", headers=carol)
    assert r.status_code == 403 and "read-only" in r.json()["detail"]
    assert client.get(f"{API}/datasets", headers=dave).json()["items"] == []
    assert [d["name"] for d in client.get(f"{API}/datasets", headers=carol).json()["items"]] == ["imagenet"]


def test_deleting_a_project_or_an_entry_deletes_their_rules(client, admin_headers, team):
    people, ids = team
    bob = people["bob"]
    model = client.post(f"{API}/models", headers=bob, json={"project": str(ids["nlp"]), "name": "bert",
                                                            "uri": "s3://b/bert"}).json()["id"]
    on_model = rule(client, bob, "model", "read", [("user", "carol")], resource=str(model)).json()["id"]
    on_yolo = rule(client, bob, "project", "read", [("user", "carol")], resource="vision/detection/yolo").json()["id"]
    # Platform admins are not bound by the rules (bob, who is no grantee, now is).
    assert client.delete(f"{API}/models/{model}", headers=admin_headers).status_code == 200
    r = client.delete(f"{API}/projects/{ids['vision']}", headers=admin_headers, params={"force": "true"})
    assert r.status_code == 200, r.text
    for rule_id in (on_model, on_yolo):
        assert client.get(f"{API}/access-rules/{rule_id}", headers=admin_headers).status_code == 404


def test_deleting_a_group_named_by_rules_is_refused_unless_forced_and_removes_only_its_grant(client, admin_headers,
                                                                                              team):
    people, ids = team
    bob, carol, dave = people["bob"], people["carol"], people["dave"]
    assert client.delete(f"{API}/groups/vision-team/members/carol", headers=admin_headers).status_code == 204
    made = rule(client, bob, "project", "read", [("group", "vision-team"), ("user", "dave")], resource="nlp").json()
    r = client.delete(f"{API}/groups/vision-team", headers=admin_headers)
    assert r.status_code == 409 and f"access rules (rule {made['id']}" in r.json()["detail"], r.text
    assert client.delete(f"{API}/groups/vision-team?force=true", headers=admin_headers).status_code == 204
    left = client.get(f"{API}/access-rules/{made['id']}", headers=bob).json()
    assert left["grantees"] == [{"kind": "user", "name": "dave"}]
    assert client.get(f"{API}/projects/{ids['nlp']}", headers=dave).status_code == 200
    assert client.get(f"{API}/projects/{ids['nlp']}", headers=carol).status_code == 403
