"""Resource policy rules from Backend.AI's dialog and admin screens: a bare RAM number is GiB, and refusing to
delete a used policy names everyone following it."""

from __future__ import annotations

import re

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


UNLIMITED = {f"{cap}_unlimited": "on" for cap in ("cpu", "memory", "gpu", "fgpu", "containers_per_job",
                                                  "idle_timeout_s", "concurrent_jobs", "folders", "folder_capacity")}


def _dialog(**caps) -> dict:
    """The dialog as posted: every cap Unlimited except those given a value."""
    return {**{k: v for k, v in UNLIMITED.items() if k.removesuffix("_unlimited") not in caps}, **caps}


def test_the_console_creates_changes_and_deletes_policies_like_the_dialog(client, admin_headers):
    from conftest import ADMIN_PASSWORD

    make_user(client, "zoe", policy="lab", active=False)  # before signing in: it clears the client's cookies
    token = _console(client, "admin", ADMIN_PASSWORD)
    r = client.post("/ui/resource-policies", data={"csrf_token": token, "name": "lab",
                                                   **_dialog(memory="32", gpu="2", fgpu="1.5")},
                    follow_redirects=False)
    assert r.status_code == 303, r.text[:500]
    policy = client.get(f"{API}/resource-policies/lab", headers=admin_headers).json()
    assert (policy["memory"], policy["gpu"], policy["fgpu"], policy["cpu"]) == ("32Gi", 2, "1.5", "unlimited")
    r = client.post("/ui/resource-policies", data={"csrf_token": token, "name": "bad", **_dialog(memory="lots")})
    assert r.status_code == 422 and 'data-testid="errors-memory"' in r.text and 'value="lots"' in r.text
    assert client.get(f"{API}/resource-policies/bad", headers=admin_headers).status_code == 404
    r = client.post("/ui/resource-policies/lab", data={"csrf_token": token, "description": "the lab",
                                                       **_dialog(memory="48", gpu="2", fgpu="1.5")},
                    follow_redirects=False)
    assert r.status_code == 303
    assert client.get(f"{API}/resource-policies/lab", headers=admin_headers).json()["memory"] == "48Gi"
    r = client.post("/ui/resource-policies/lab/delete", data={"csrf_token": token})
    assert r.status_code == 409 and "is used by 1 user, 1 inactive: zoe (inactive)" in r.text
    page = client.get("/ui/resource-policies/lab").text
    assert "zoe (inactive)" in page and "Users (1)" in page
    events = client.get(f"{API}/audit", headers=admin_headers, params={"target": "lab"}).json()["items"]
    assert {e["action"] for e in events} == {"resource_policy.create", "resource_policy.update"}


def test_the_dialog_shows_each_caps_maximum_and_unlimited_box_and_checks_them(client, admin_headers):
    """Backend.AI's dialog: each cap with its maximum and an Unlimited checkbox. Unticked, a cap needs a value up to
    its maximum; ticked, it is unlimited; both at once is refused. Every refusal under its field, nothing saved."""
    from conftest import ADMIN_PASSWORD

    token = _console(client, "admin", ADMIN_PASSWORD)
    page = client.get("/ui/resource-policies").text
    assert 'data-testid="cap-cpu"' in page and "Maximum 512 cores" in page and "Maximum 1024 GiB" in page
    assert re.search(r'name="gpu"\s+type="number" min="0" max="64"', page) and "Maximum 256 GPUs" in page
    assert 'data-testid="unlimited-gpu" checked' in page  # a new policy starts unlimited
    r = client.post("/ui/resource-policies", data={"csrf_token": token, "name": "over",
                                                   **_dialog(cpu="600", gpu="65", memory="2048")})
    assert r.status_code == 422
    for field, words in (("cpu", "at most 512"), ("gpu", "at most 64"), ("memory", "at most 1Ti")):
        errors = r.text.split(f'data-testid="errors-{field}">')[1].split("</small>")[0]
        assert words in errors, (field, errors)
    unticked = {k: v for k, v in _dialog(gpu="2").items() if k != "concurrent_jobs_unlimited"}
    r = client.post("/ui/resource-policies", data={"csrf_token": token, "name": "half", **unticked,
                                                   "cpu": "4"})
    assert r.status_code == 422
    assert "give a value up to 100, or tick Unlimited" in r.text.split('data-testid="errors-concurrent_jobs">')[1]
    assert "give a value or tick Unlimited, not both" in r.text.split('data-testid="errors-cpu">')[1]
    assert 'data-testid="unlimited-concurrent_jobs" checked' not in r.text  # what was sent is shown again
    for name in ("over", "half"):
        assert client.get(f"{API}/resource-policies/{name}", headers=admin_headers).status_code == 404
    r = client.post("/ui/resource-policies", data={"csrf_token": token, "name": "edge",
                                                   **_dialog(cpu="512", gpu="64", concurrent_jobs="100")},
                    follow_redirects=False)
    assert r.status_code == 303  # the maximum itself is allowed
    page = client.get("/ui/resource-policies/edge").text
    assert 'value="64"' in page and 'data-testid="unlimited-gpu" checked' not in page
    assert 'data-testid="unlimited-memory" checked' in page
    r = client.post("/ui/resource-policies/edge", data={"csrf_token": token, **_dialog(gpu="64")},
                    follow_redirects=False)  # ticking Unlimited lifts a cap
    assert r.status_code == 303
    policy = client.get(f"{API}/resource-policies/edge", headers=admin_headers).json()
    assert policy["cpu"] == "unlimited" and policy["concurrent_jobs"] is None and policy["gpu"] == 64


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
