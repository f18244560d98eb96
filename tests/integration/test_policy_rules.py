"""Resource policy rules from Backend.AI's dialog and admin screens: a bare RAM number is GiB, and refusing to
delete a used policy names everyone following it."""

from __future__ import annotations

from inventory_helpers import API, make_user


def test_a_bare_ram_number_means_gib_and_units_stay_accepted(client, admin_headers):
    r = client.post(f"{API}/resource-policies", headers=admin_headers,
                    json={"name": "bare", "memory": 64, "folder_capacity": "100"})
    assert r.status_code == 201, r.text
    assert (r.json()["memory"], r.json()["folder_capacity"]) == ("64Gi", "100Gi")
    r = client.patch(f"{API}/resource-policies/bare", headers=admin_headers, json={"memory": "16"})
    assert r.status_code == 200 and r.json()["memory"] == "16Gi"
    r = client.patch(f"{API}/resource-policies/bare", headers=admin_headers, json={"memory": "512Mi"})
    assert r.status_code == 200 and r.json()["memory"] == "512Mi"
    r = client.patch(f"{API}/resource-policies/bare", headers=admin_headers, json={"memory": "2Ti"})
    assert r.status_code == 422
    r = client.patch(f"{API}/resource-policies/bare", headers=admin_headers, json={"memory": 1025})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "memory"
    assert r.json()["errors"][0]["message"] == "must be at most 1Ti (or unlimited)"


def test_a_bare_ram_number_caps_jobs_in_gib(client, admin_headers):
    from inventory_helpers import quota

    client.post(f"{API}/resource-policies", headers=admin_headers, json={"name": "small", "memory": "4"})
    quota(client, admin_headers, "class")
    client.put(f"{API}/quotas/class/bindings/groups/users", headers=admin_headers)
    stu = make_user(client, "stu", policy="small", cluster_role="user")
    ok = client.post(f"{API}/jobs", headers=stu, json={"quota": "class", "memory": "4Gi", "command": ["x"]})
    assert ok.status_code == 201, ok.text
    r = client.post(f"{API}/jobs", headers=stu, json={"quota": "class", "memory": "5Gi", "command": ["x"]})
    assert r.status_code == 422 and "of 4Gi in resource policy small" in r.json()["detail"]


def test_refusing_to_delete_a_used_policy_names_every_user_and_the_count(client, admin_headers):
    client.post(f"{API}/resource-policies", headers=admin_headers, json={"name": "p1"})
    names = [f"user{i:02d}" for i in range(23)]
    for name in names:
        make_user(client, name, policy="p1", active=name != "user07")
    r = client.delete(f"{API}/resource-policies/p1", headers=admin_headers)
    assert r.status_code == 409
    detail = r.json()["detail"]
    assert "is used by 23 users, 1 inactive:" in detail
    listed = detail.split(": ", 1)[1].split(";")[0].split(", ")
    assert listed == [n if n != "user07" else "user07 (inactive)" for n in names]
    # The CLI shows the field errors: they carry the same sentence, not a bare name.
    assert r.json()["errors"] == [{"field": "users", "message": detail}]


def _console(client, username: str, password: str) -> str:
    """Sign in to the console; the CSRF token of its forms."""
    import re

    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
    r = client.post("/login", data={"username": username, "password": password, "csrf_token": token},
                    follow_redirects=False)
    assert r.status_code == 303, r.text[:300]
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get("/ui/resource-policies").text).group(1)


def test_the_console_creates_changes_and_deletes_policies_like_the_dialog(client, admin_headers):
    from conftest import ADMIN_PASSWORD

    make_user(client, "zoe", policy="lab", active=False)  # before signing in: it clears the client's cookies
    token = _console(client, "admin", ADMIN_PASSWORD)
    r = client.post("/ui/resource-policies", data={"csrf_token": token, "name": "lab", "memory": "32", "gpu": "2",
                                                   "cpu": "", "fgpu": "1.5"}, follow_redirects=False)
    assert r.status_code == 303, r.text[:500]
    policy = client.get(f"{API}/resource-policies/lab", headers=admin_headers).json()
    assert (policy["memory"], policy["gpu"], policy["fgpu"], policy["cpu"]) == ("32Gi", 2, "1.5", "unlimited")
    r = client.post("/ui/resource-policies", data={"csrf_token": token, "name": "bad", "memory": "lots"})
    assert r.status_code == 422 and 'data-testid="errors-memory"' in r.text and 'value="lots"' in r.text
    assert client.get(f"{API}/resource-policies/bad", headers=admin_headers).status_code == 404
    r = client.post("/ui/resource-policies/lab", data={"csrf_token": token, "memory": "48", "gpu": "2",
                                                       "fgpu": "1.5", "description": "the lab"},
                    follow_redirects=False)
    assert r.status_code == 303
    assert client.get(f"{API}/resource-policies/lab", headers=admin_headers).json()["memory"] == "48Gi"
    r = client.post("/ui/resource-policies/lab/delete", data={"csrf_token": token})
    assert r.status_code == 409 and "is used by 1 user, 1 inactive: zoe (inactive)" in r.text
    page = client.get("/ui/resource-policies/lab").text
    assert "zoe (inactive)" in page and "Users (1)" in page
    events = client.get(f"{API}/audit", headers=admin_headers, params={"target": "lab"}).json()["items"]
    assert {e["action"] for e in events} == {"resource_policy.create", "resource_policy.update"}


def test_the_cli_reads_a_bare_ram_number_as_gib_and_names_the_users_of_a_policy(client, admin_headers, monkeypatch,
                                                                                 tmp_path):
    from typer.testing import CliRunner

    from allotment.cli import client as cli_client
    from allotment.cli.main import app as cli_app

    make_user(client, "yan", policy="default")

    def fake_http_client(base_url, headers, timeout):
        client.headers.update(headers)
        return client

    monkeypatch.setattr(cli_client.httpx, "Client", fake_http_client)
    env = {"ALLOT_URL": "http://testserver", "ALLOT_TOKEN": admin_headers["Authorization"].removeprefix("Bearer "),
           "ALLOT_CONFIG_DIR": str(tmp_path), "COLUMNS": "200"}

    def allot(*args: str):
        return CliRunner().invoke(cli_app, list(args), env=env)

    assert allot("policies", "create", "lab", "--memory", "64", "--folder-capacity", "100").exit_code == 0
    shown = allot("policies", "show", "lab", "--json")
    assert '"memory": "64Gi"' in shown.output and '"folder_capacity": "100Gi"' in shown.output
    refused = allot("policies", "delete", "default")
    assert refused.exit_code == 1
    assert "users: resource policy default is used by 2 users: admin, yan" in str(refused.exception)
