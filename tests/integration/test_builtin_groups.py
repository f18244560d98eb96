"""The built-in groups as ClearML has them: `users` (everyone, service accounts included; cannot be modified),
`admins` (platform admins) and `queue-admins` (create, change and delete quotas and profiles without being cluster
admins). Built-ins cannot be renamed or deleted."""

from __future__ import annotations

from conftest import login

API = "/api/v1"
PASSWORD = "Str0ng-password!"


def person(client, headers, name: str, role: str | None = "user") -> dict[str, str]:
    r = client.post(f"{API}/users", headers=headers,
                    json={"email": f"{name}@example.com", "username": name, "password": PASSWORD})
    assert r.status_code == 201, r.text
    if role:
        r = client.put(f"{API}/clusters/local/users/{name}", headers=headers, json={"role": role})
        assert r.status_code == 200, r.text
    return login(client, name, PASSWORD)


def test_the_built_in_groups_exist_and_cannot_be_renamed_deleted_or_users_changed(client, admin_headers):
    groups = {g["name"]: g for g in client.get(f"{API}/groups", headers=admin_headers).json()["items"]}
    assert {"users", "admins", "queue-admins"} <= set(groups)
    assert all(groups[n]["builtin"] for n in ("users", "admins", "queue-admins"))
    for name in ("users", "admins", "queue-admins"):
        assert client.delete(f"{API}/groups/{name}", headers=admin_headers).status_code == 409
        assert client.delete(f"{API}/groups/{name}?force=true", headers=admin_headers).status_code == 409
    for name in ("admins", "queue-admins"):
        r = client.patch(f"{API}/groups/{name}", headers=admin_headers, json={"name": f"{name}-x"})
        assert r.status_code == 409, r.text
    person(client, admin_headers, "carol")
    assert client.put(f"{API}/groups/users/members/carol", headers=admin_headers).status_code == 409
    r = client.patch(f"{API}/groups/users", headers=admin_headers, json={"description": "x"})
    assert r.status_code == 409
    # `users` holds everyone, service accounts included.
    assert client.post(f"{API}/service-accounts", headers=admin_headers, json={"name": "robot"}).status_code == 201
    members = [m["username"] for m in client.get(f"{API}/groups/users", headers=admin_headers).json()["members"]]
    assert "carol" in members and "robot" in members


def test_queue_admins_manage_quotas_and_profiles_without_being_cluster_admins(client, admin_headers):
    qa = person(client, admin_headers, "qa")
    plain = person(client, admin_headers, "plain")
    quota = {"name": "Team", "resources": [{"resource": "gpu", "guarantee": 2}]}
    assert client.post(f"{API}/clusters/local/quotas", headers=qa, json=quota).status_code == 403
    assert client.put(f"{API}/groups/queue-admins/members/qa", headers=admin_headers).status_code in (200, 201, 204)

    r = client.post(f"{API}/clusters/local/quotas", headers=qa, json=quota)
    assert r.status_code == 201, r.text
    r = client.patch(f"{API}/quotas/Team", headers=qa, json={"name": "Research"})
    assert r.status_code == 200 and r.json()["name"] == "Research", r.text
    r = client.post(f"{API}/clusters/local/profiles", headers=qa, json={"name": "small", "gpu": 1})
    assert r.status_code == 201, r.text
    r = client.patch(f"{API}/clusters/local/profiles/small", headers=qa, json={"name": "tiny"})
    assert r.status_code == 200, r.text
    assert client.delete(f"{API}/clusters/local/profiles/tiny", headers=qa).status_code == 204
    # Granting access to a quota stays with the cluster's admins.
    assert client.put(f"{API}/quotas/Research/bindings/users/plain", headers=qa).status_code == 403
    assert client.delete(f"{API}/quotas/Research", headers=plain).status_code == 403
    assert client.delete(f"{API}/quotas/Research", headers=qa).status_code == 204
