"""Backend.AI per-user resource policies: bounds, caps at submission, concurrency, allowance, deletion rules."""

from __future__ import annotations

from inventory_helpers import API, make_user, quota

STUDENT = {"name": "student", "cpu": "2", "memory": "4Gi", "gpu": 1, "fgpu": "1", "concurrent_jobs": 2}


def setup_student(client, admin_headers):
    assert client.post(f"{API}/resource-policies", headers=admin_headers, json=STUDENT).status_code == 201
    quota(client, admin_headers, "class")
    client.put(f"{API}/quotas/class/bindings/groups/users", headers=admin_headers)
    return make_user(client, "stu", policy="student", cluster_role="user")


def test_default_policy_is_unlimited_and_listed(client, admin_headers):
    body = client.get(f"{API}/resource-policies", headers=admin_headers).json()
    default = next(p for p in body["items"] if p["name"] == "default")
    assert (default["cpu"], default["memory"], default["gpu"], default["concurrent_jobs"]) == \
        ("unlimited", "unlimited", None, None)


def test_caps_are_bounded_like_backend_ai(client, admin_headers):
    r = client.post(f"{API}/resource-policies", headers=admin_headers, json={
        "name": "greedy", "cpu": "513", "memory": "1025Gi", "gpu": 65, "fgpu": "257", "containers_per_job": 101,
        "idle_timeout_s": 15_552_001, "concurrent_jobs": 101, "folders": 51, "folder_capacity": "2Ti"})
    assert r.status_code == 422
    errors = {e["field"]: e["message"] for e in r.json()["errors"]}
    assert set(errors) == {"cpu", "memory", "gpu", "fgpu", "containers_per_job", "idle_timeout_s",
                           "concurrent_jobs", "folders", "folder_capacity"}
    assert errors["cpu"] == "must be at most 512 (or unlimited)"
    assert errors["idle_timeout_s"] == "must be at most 15552000 (or unlimited)"
    top = {"name": "top", "cpu": "512", "memory": "1024Gi", "gpu": 64, "fgpu": "256", "containers_per_job": 100,
           "idle_timeout_s": 15_552_000, "concurrent_jobs": 100, "folders": 50, "folder_capacity": "1024Gi",
           "allowed_storage_hosts": ["data-1"]}
    r = client.post(f"{API}/resource-policies", headers=admin_headers, json=top)
    assert r.status_code == 201, r.text
    assert r.json()["memory"] == "1Ti" and r.json()["allowed_storage_hosts"] == ["data-1"]


def test_the_name_is_the_key_and_cannot_change(client, admin_headers):
    client.post(f"{API}/resource-policies", headers=admin_headers, json={"name": "gardener"})
    r = client.patch(f"{API}/resource-policies/gardener", headers=admin_headers, json={"name": "florist"})
    assert r.status_code == 422
    assert r.json()["errors"] == [{"field": "name", "message": "cannot be changed: the name is the policy's key"}]
    r = client.patch(f"{API}/resource-policies/gardener", headers=admin_headers, json={"cpu": "4", "gpu": "unlimited"})
    assert r.status_code == 200 and (r.json()["cpu"], r.json()["gpu"]) == ("4", None)
    assert client.post(f"{API}/resource-policies", headers=admin_headers, json={"name": "gardener"}).status_code == 409


def test_submission_above_a_cap_is_refused_naming_the_cap(client, admin_headers):
    stu = setup_student(client, admin_headers)
    r = client.post(f"{API}/jobs", headers=stu, json={"quota": "class", "gpu": 2, "cpu": 4, "command": ["train"]})
    assert r.status_code == 422
    errors = {e["field"]: e["message"] for e in r.json()["errors"]}
    assert errors["cpu"] == ("exceeds the cap cpu (CPU cores held at once) of 2 in resource policy student: "
                             "requested 4")
    gpu_messages = [e["message"] for e in r.json()["errors"] if e["field"] == "gpu"]
    assert any("the cap gpu (GPUs (devices) held at once) of 1 in resource policy student" in m for m in gpu_messages)
    assert any("the cap fgpu (fractional GPU held at once) of 1" in m for m in gpu_messages)
    r = client.post(f"{API}/jobs", headers=stu, json={"quota": "class", "memory": "8Gi", "command": ["train"]})
    assert r.status_code == 422 and "cap memory" in r.json()["detail"] and "requested 8Gi" in r.json()["detail"]
    ok = client.post(f"{API}/jobs", headers=stu, json={"quota": "class", "gpu": "0.5", "cpu": 2, "memory": "4Gi",
                                                      "command": ["train"]})
    assert ok.status_code == 201, ok.text


def test_concurrency_cap_counts_queued_and_running_jobs(client, admin_headers):
    stu = setup_student(client, admin_headers)
    job = {"quota": "class", "gpu": "0.5", "command": ["train"]}
    first = client.post(f"{API}/jobs", headers=stu, json=job).json()
    assert client.post(f"{API}/jobs", headers=stu, json=job).status_code == 201
    r = client.post(f"{API}/jobs", headers=stu, json=job)
    assert r.status_code == 409
    assert "the cap concurrent_jobs of resource policy student allows 2" in r.json()["detail"]
    batch = client.post(f"{API}/jobs/batch", headers=stu, json={"jobs": [job]})
    assert batch.status_code == 409
    client.post(f"{API}/jobs/{first['id']}/cancel", headers=stu)
    assert client.post(f"{API}/jobs", headers=stu, json=job).status_code == 201


def test_allowance_reports_what_remains(client, admin_headers):
    stu = setup_student(client, admin_headers)
    client.post(f"{API}/jobs", headers=stu, json={"quota": "class", "gpu": "0.5", "command": ["train"]})
    body = client.get(f"{API}/users/stu/allowance", headers=stu).json()
    assert body["policy"] == "student"
    assert body["caps"]["concurrent_jobs"] == {"limit": 2, "in_use": 1, "remaining": 1,
                                               "description": "concurrent jobs"}
    assert body["caps"]["cpu"]["remaining"] == "2" and body["caps"]["memory"]["limit"] == "4Gi"
    assert body["caps"]["folders"]["limit"] == "unlimited"
    other = make_user(client, "other")
    assert client.get(f"{API}/users/stu/allowance", headers=other).status_code == 403
    assert client.get(f"{API}/users/stu/allowance", headers=admin_headers).status_code == 200


def test_deleting_a_policy_in_use_is_refused_listing_users_inactive_included(client, admin_headers):
    client.post(f"{API}/resource-policies", headers=admin_headers, json={"name": "student"})
    make_user(client, "zed", policy="student", active=False)
    make_user(client, "amy", policy="student")
    r = client.delete(f"{API}/resource-policies/student", headers=admin_headers)
    assert r.status_code == 409
    assert "used by 2 users, 1 inactive: amy, zed (inactive)" in r.json()["detail"]
    assert client.delete(f"{API}/resource-policies/default", headers=admin_headers).status_code == 409
    client.post(f"{API}/resource-policies", headers=admin_headers, json={"name": "unused"})
    assert client.delete(f"{API}/resource-policies/unused", headers=admin_headers).status_code == 204


def test_only_platform_admins_change_policies_and_priority_classes(client, admin_headers):
    op = make_user(client, "op", cluster_role="admin")
    assert client.post(f"{API}/resource-policies", headers=op, json={"name": "x"}).status_code == 403
    assert client.get(f"{API}/resource-policies", headers=op).status_code == 200
    assert client.post(f"{API}/priority-classes", headers=op, json={"name": "x", "value": 1}).status_code == 403


def test_priority_classes_are_seeded_and_manageable(client, admin_headers):
    body = client.get(f"{API}/priority-classes", headers=admin_headers).json()
    assert [(c["name"], c["value"]) for c in body["items"]] == [("inference", 300), ("training", 200),
                                                                 ("interactive", 100)]
    r = client.post(f"{API}/priority-classes", headers=admin_headers,
                    json={"name": "batch", "value": 50, "is_default": True})
    assert r.status_code == 201
    defaults = [c["name"] for c in client.get(f"{API}/priority-classes", headers=admin_headers).json()["items"]
                if c["is_default"]]
    assert defaults == ["batch"]
    quota(client, admin_headers, "q")
    job = client.post(f"{API}/jobs", headers=admin_headers, json={"quota": "q", "cpu": 1, "command": ["x"]}).json()
    assert (job["priority_class"], job["priority"]) == ("batch", 50)
    r = client.delete(f"{API}/priority-classes/batch", headers=admin_headers)
    assert r.status_code == 409
    assert client.delete(f"{API}/priority-classes/interactive", headers=admin_headers).status_code == 204


def test_parallel_submissions_never_exceed_the_concurrency_cap(client, admin_headers):
    """The count and the insert must not interleave between two submissions of one user."""
    from concurrent.futures import ThreadPoolExecutor

    stu = setup_student(client, admin_headers)
    job = {"quota": "class", "gpu": "0.5", "command": ["train"]}
    with ThreadPoolExecutor(max_workers=6) as pool:
        codes = list(pool.map(lambda _: client.post(f"{API}/jobs", headers=stu, json=job).status_code, range(6)))
    assert sorted(codes) == [201, 201, 409, 409, 409, 409], codes
    active = client.get(f"{API}/jobs", headers=stu, params={"state": "queued,admitted,running"}).json()["total"]
    assert active == 2
