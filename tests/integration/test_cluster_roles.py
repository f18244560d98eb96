"""Cluster roles (Neu.ro): add with a role, change in one step, remove without touching the user's things; managers
manage users, only admins grant admin; DKube's aliases; grants through groups."""

from __future__ import annotations

import pytest
from access_helpers import API, add_group, add_user, user_with_key, whoami

LOCAL = f"{API}/clusters/local"


def put_role(client, headers, user, role):
    return client.put(f"{LOCAL}/users/{user}", json={"role": role}, headers=headers)


def members(client, headers) -> dict[str, tuple[str, str]]:
    r = client.get(f"{LOCAL}/users", headers=headers)
    assert r.status_code == 200, r.text
    return {m["username"]: (m["role"], m["via"]) for m in r.json()["items"]}


def test_the_bootstrap_admin_is_the_admin_of_local(client, admin_headers):
    assert members(client, admin_headers) == {"admin": ("admin", "direct")}


def test_add_change_remove_and_add_back(client, admin_headers):
    alice = user_with_key(client, "alice")
    assert whoami(client, alice)["cluster_roles"] == {}

    r = put_role(client, admin_headers, "alice", "user")
    assert r.status_code == 200 and r.json() == {"cluster": "local", "role": "user", "previous_role": None,
                                                 "username": "alice", "group": None}
    assert whoami(client, alice)["cluster_roles"] == {"local": "user"}  # the next request sees it

    r = put_role(client, admin_headers, "alice", "manager")  # promotion in one step
    assert r.json()["previous_role"] == "user" and whoami(client, alice)["cluster_roles"] == {"local": "manager"}
    assert members(client, admin_headers)["alice"] == ("manager", "direct")

    assert client.delete(f"{LOCAL}/users/alice", headers=admin_headers).status_code == 204
    assert whoami(client, alice)["cluster_roles"] == {}  # access revoked at once ...
    assert client.get(f"{LOCAL}/users", headers=alice).status_code == 403
    assert client.get(f"{API}/credentials", headers=alice).json()["total"] == 1  # ... the account and its things stay
    assert client.delete(f"{LOCAL}/users/alice", headers=admin_headers).status_code == 404

    put_role(client, admin_headers, "alice", "manager")  # adding back restores access
    assert client.get(f"{LOCAL}/users", headers=alice).status_code == 200

    actions = [e["action"] for e in client.get(f"{API}/audit?target=local/alice", headers=admin_headers).json()["items"]]
    assert actions == ["cluster_role.grant", "cluster_role.revoke", "cluster_role.change", "cluster_role.grant"]


@pytest.mark.parametrize(("given", "stored"), [("operator", "admin"), ("data-scientist", "user"), ("Data_Scientist", "user"),
                                               ("MANAGER", "manager")])
def test_dkube_aliases_and_case(client, admin_headers, given, stored):
    add_user(client, "alice")
    assert put_role(client, admin_headers, "alice", given).json()["role"] == stored


@pytest.mark.parametrize("role", ["owner", "", "root"])
def test_unknown_role_is_a_field_error(client, admin_headers, role):
    add_user(client, "alice")
    r = put_role(client, admin_headers, "alice", role)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "role"


def test_managers_manage_users_but_only_admins_grant_admin(client, admin_headers):
    add_user(client, "bob")
    add_user(client, "carol")
    mia = user_with_key(client, "mia")
    put_role(client, admin_headers, "mia", "manager")
    assert put_role(client, mia, "bob", "user").status_code == 200
    assert put_role(client, mia, "bob", "manager").status_code == 200
    assert put_role(client, mia, "bob", "data-scientist").status_code == 200
    r = put_role(client, mia, "bob", "operator")
    assert r.status_code == 403 and "only a cluster admin" in r.json()["detail"]
    assert put_role(client, mia, "mia", "admin").status_code == 403  # no self-promotion
    assert client.delete(f"{LOCAL}/users/bob", headers=mia).status_code == 204

    put_role(client, admin_headers, "carol", "admin")
    assert put_role(client, mia, "carol", "user").status_code == 403  # cannot demote an admin
    assert client.delete(f"{LOCAL}/users/carol", headers=mia).status_code == 403
    assert client.delete(f"{LOCAL}/users/admin", headers=mia).status_code == 403

    cadmin = user_with_key(client, "dave")
    put_role(client, admin_headers, "dave", "admin")
    assert put_role(client, cadmin, "bob", "admin").status_code == 200  # a cluster admin (not platform admin) may
    assert put_role(client, cadmin, "carol", "manager").status_code == 200


def test_plain_users_and_strangers_cannot_manage(client, admin_headers):
    alice = user_with_key(client, "alice")
    add_user(client, "bob")
    assert put_role(client, alice, "bob", "user").status_code == 403  # no role at all
    put_role(client, admin_headers, "alice", "user")
    assert put_role(client, alice, "bob", "user").status_code == 403
    assert client.get(f"{LOCAL}/users", headers=alice).status_code == 403
    assert client.get(f"{API}/clusters/nowhere/users", headers=admin_headers).status_code == 404
    assert client.get(f"{API}/clusters/nowhere/users").status_code == 401  # anonymous: told nothing about clusters
    assert put_role(client, admin_headers, "nobody", "user").status_code == 404


def test_group_grants_reach_members_and_removing_them_keeps_direct_roles(client, admin_headers):
    alice = user_with_key(client, "alice")
    bob = user_with_key(client, "bob")
    add_group(client, "ml-team", ["alice", "bob"])
    put_role(client, admin_headers, "bob", "manager")

    r = client.put(f"{LOCAL}/groups/ml-team", json={"role": "user"}, headers=admin_headers)
    assert r.status_code == 200 and r.json()["group"] == "ml-team"
    assert whoami(client, alice)["cluster_roles"] == {"local": "user"}
    assert whoami(client, bob)["cluster_roles"] == {"local": "manager"}  # the higher role wins
    listed = members(client, admin_headers)
    assert listed["alice"] == ("user", "group:ml-team") and listed["bob"] == ("manager", "direct")
    assert client.get(f"{LOCAL}/groups", headers=admin_headers).json()["items"] == [{"group": "ml-team",
                                                                                     "role": "user"}]
    r = client.delete(f"{LOCAL}/users/alice", headers=admin_headers)
    assert r.status_code == 404 and "group:ml-team" in r.json()["detail"]
    assert client.put(f"{LOCAL}/groups/ml-team", json={"role": "admin"}, headers=bob).status_code == 403

    assert client.delete(f"{LOCAL}/groups/ml-team", headers=admin_headers).status_code == 204
    assert whoami(client, alice)["cluster_roles"] == {}
    assert whoami(client, bob)["cluster_roles"] == {"local": "manager"}
    assert client.delete(f"{LOCAL}/groups/ml-team", headers=admin_headers).status_code == 404


def test_a_grant_to_the_builtin_users_group_reaches_everyone(client, admin_headers):
    alice = user_with_key(client, "alice")
    assert client.put(f"{LOCAL}/groups/users", json={"role": "user"}, headers=admin_headers).status_code == 200
    assert whoami(client, alice)["cluster_roles"] == {"local": "user"}
    assert members(client, admin_headers)["alice"] == ("user", "group:users")
