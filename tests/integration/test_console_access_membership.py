"""The console's side of deactivation with running jobs and of deleting a group that still grants something: the
same refusals as the API, and the confirmed variants (stop the jobs, force)."""

from __future__ import annotations

import re

from inventory_helpers import API, hold_devices, make_user, quota, register_node

ADMIN_PASSWORD = "Adm1n-password!"
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def console(client):
    token = TOKEN.search(client.get("/login").text).group(1)
    r = client.post("/login", data={"username": "admin", "password": ADMIN_PASSWORD, "csrf_token": token,
                                    "next": "/ui/"}, follow_redirects=False)
    assert r.status_code == 303
    return TOKEN.search(client.get("/ui/users").text).group(1)


def test_deactivating_from_the_console_lists_running_jobs_and_can_stop_them(client, admin_headers):
    register_node(client, admin_headers, "gpu-01", "H100", 2)
    quota(client, admin_headers, "Dev", gpu="2")
    alice = make_user(client, "alice", cluster_role="user")
    client.put(f"{API}/quotas/Dev/bindings/users/alice", headers=admin_headers)
    job = client.post(f"{API}/jobs", headers=alice, json={"quota": "Dev", "gpu": 1, "command": ["x"],
                                                          "name": "bert"}).json()["id"]
    hold_devices(client, job, ["gpu-01:0"], "default")
    user_id = client.get(f"{API}/users/alice", headers=admin_headers).json()["id"]
    token = console(client)

    page = client.get(f"/ui/users/{user_id}").text
    assert f"job {job} (bert, running on local)" in page and 'data-testid="deactivate-stop-jobs"' in page
    r = client.post(f"/ui/users/{user_id}/deactivate", headers={"X-CSRF-Token": token}, follow_redirects=False)
    assert r.status_code == 409 and "text/html" in r.headers["content-type"]
    assert f"job {job} (bert, running on local)" in r.text
    assert client.get(f"{API}/users/alice", headers=admin_headers).json()["is_active"] is True

    r = client.post(f"/ui/users/{user_id}/deactivate", data={"stop_jobs": "true"},
                    headers={"X-CSRF-Token": token}, follow_redirects=False)
    assert r.status_code == 303
    assert client.get(f"{API}/users/alice", headers=admin_headers).json()["is_active"] is False
    assert client.get(f"{API}/jobs/{job}", headers=admin_headers).json()["reason_code"] == "cancel_requested"


def test_deleting_a_group_from_the_console_needs_force_when_it_grants_something(client, admin_headers):
    make_user(client, "bob", groups=("team",))
    group_id = next(g["id"] for g in client.get(f"{API}/groups", headers=admin_headers).json()["items"]
                    if g["name"] == "team")
    token = console(client)
    page = client.get(f"/ui/groups/{group_id}").text
    assert 'data-testid="group-holds"' in page and "bob" in page and 'data-testid="delete-group-force"' in page
    r = client.post(f"/ui/groups/{group_id}/delete", headers={"X-CSRF-Token": token}, follow_redirects=False)
    assert r.status_code == 409 and "members (bob)" in r.text
    r = client.post(f"/ui/groups/{group_id}/delete", data={"force": "true"}, headers={"X-CSRF-Token": token},
                    follow_redirects=False)
    assert r.status_code == 303
    assert client.get(f"{API}/groups/team", headers=admin_headers).status_code == 404
