"""SCIM provisioning mapped onto allotment: tokens, users (name rules, deprovisioning that never deletes), groups
(forced deletion removes only what the group granted), filtering, paging, sorting and attribute selection, audit."""

from __future__ import annotations

import pytest
from inventory_helpers import API, hold_devices, make_user, quota, register_node
from scim_helpers import provisioning_token, scim_http

from allotment.db import transaction
from allotment.federation.scim import clients

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
pytestmark = pytest.mark.parametrize("backend", ["sqlite"])


@pytest.fixture
def scim(client):
    return scim_http(client.app, provisioning_token(client.app))


def new_user(scim, username: str, **extra) -> dict:
    body = {"schemas": [USER_SCHEMA], "userName": username, "active": True,
            "emails": [{"value": f"{username}@example.com", "type": "work", "primary": True}], **extra}
    r = scim.post("Users", json=body)
    assert r.status_code == 201, r.text
    return r.json()


def patch(scim, path: str, *operations: dict):
    return scim.patch(path, json={"schemas": [PATCH_SCHEMA], "Operations": list(operations)})


def test_tokens_authenticate_and_a_revoked_token_is_refused(client, admin_headers):
    app = client.app
    anonymous = scim_http(app, None)
    r = anonymous.get("Users")
    assert r.status_code == 401 and r.json()["schemas"] == [ERROR_SCHEMA]
    assert "Bearer" in r.headers["www-authenticate"]
    # An API token is not a provisioning client's token.
    api_token = admin_headers["Authorization"].removeprefix("Bearer ")
    assert scim_http(app, api_token).get("Users").status_code == 401
    assert scim_http(app, "scim_not-a-token").get("Users").status_code == 401
    # The service provider configuration needs no token (RFC 7643 §5).
    assert anonymous.get("ServiceProviderConfig").json()["patch"]["supported"] is True

    token = provisioning_token(app, "entra")
    assert scim_http(app, token).get("Users").status_code == 200
    state = app.state.allot
    with transaction(state.sessions) as session:
        from scim_helpers import admin_principal

        client_row = clients.find_client(session, "entra")
        stored = clients.client_out(session, client_row)["tokens"][0]
        assert token not in str(stored) and token.startswith(stored["hint"])  # only a hint is shown again
        clients.revoke_token(session, admin_principal(session), client_row,
                             clients.find_token(session, client_row, stored["id"]), None)
    r = scim_http(app, token).get("Users")
    assert r.status_code == 401 and r.json()["status"] == "401"


def test_a_user_is_created_under_allotments_rules_and_audited_as_the_client(client, admin_headers, scim):
    created = new_user(scim, "alice", name={"formatted": "Alice Liddell", "givenName": "Alice"}, externalId="00u1")
    assert created["externalId"] == "00u1" and created["name"] == {"formatted": "Alice Liddell"}
    user = client.get(f"{API}/users/alice", headers=admin_headers).json()
    assert (user["email"], user["full_name"], user["is_active"]) == ("alice@example.com", "Alice Liddell", True)
    assert str(user["id"]) == created["id"]

    # Okta's and Entra ID's default: the given and family names only; allotment keeps them joined as the full name.
    carol = new_user(scim, "carol", name={"givenName": "Carol", "familyName": "Kay"})
    assert carol["name"] == {"formatted": "Carol Kay"}
    r = patch(scim, f"Users/{carol['id']}", {"op": "replace", "path": "name", "value": {"givenName": "Caro"}})
    assert r.status_code in (200, 204), r.text
    assert client.get(f"{API}/users/carol", headers=admin_headers).json()["full_name"] == "Caro"

    r = scim.post("Users", json={"schemas": [USER_SCHEMA], "userName": "bob@corp", "active": True,
                                 "emails": [{"value": "bob@example.com"}]})
    assert r.status_code == 400 and r.json()["scimType"] == "invalidValue" and "'@'" in r.json()["detail"]
    r = scim.post("Users", json={"schemas": [USER_SCHEMA], "userName": "ALICE", "active": True,
                                 "emails": [{"value": "other@example.com"}]})
    assert r.status_code == 409 and r.json()["scimType"] == "uniqueness"
    r = scim.post("Users", json={"schemas": [USER_SCHEMA], "userName": "a1ice", "active": True,
                                 "emails": [{"value": "a1ice@example.com"}]})
    assert r.status_code == 409 and "looks different" in r.json()["detail"]

    events = client.get(f"{API}/audit?action=user.create", headers=admin_headers).json()["items"]
    assert sorted((e["actor"], e["target"], e["source"]) for e in events) == [("okta", "alice", "scim"),
                                                                            ("okta", "carol", "scim")]


def test_filtering_paging_sorting_and_attribute_selection(scim):
    for name in ("carol", "carl", "dave", "erin", "frank"):
        new_user(scim, name)

    def names(**params) -> list[str]:
        r = scim.get("Users", params=params)
        assert r.status_code == 200, r.text
        return [u["userName"] for u in r.json().get("Resources", [])]

    assert names(filter='userName eq "dave"') == ["dave"]
    assert sorted(names(filter='userName sw "car"')) == ["carl", "carol"]
    assert names(filter='emails.value co "rin@"') == ["erin"]
    assert sorted(names(filter='userName eq "dave" or userName eq "erin"')) == ["dave", "erin"]
    assert names(filter='userName sw "car" and userName co "o"') == ["carol"]
    assert names(filter='userName sw "car"', sortBy="userName", sortOrder="descending") == ["carol", "carl"]
    page = scim.get("Users", params={"filter": 'userName ne "admin"', "sortBy": "userName", "startIndex": 2,
                                     "count": 2}).json()
    assert page["totalResults"] == 5 and page["startIndex"] == 2
    assert [u["userName"] for u in page["Resources"]] == ["carol", "dave"]
    only = scim.get("Users", params={"filter": 'userName eq "dave"', "attributes": "userName"}).json()["Resources"][0]
    assert "emails" not in only and only["userName"] == "dave"
    without = scim.get("Users", params={"filter": 'userName eq "dave"', "excludedAttributes": "emails"}).json()
    assert "emails" not in without["Resources"][0] and without["Resources"][0]["active"] is True
    r = scim.get("Users", params={"filter": 'userName eq'})
    assert r.status_code == 400 and r.json()["scimType"] == "invalidFilter"


def test_deprovisioning_deactivates_stops_jobs_and_never_deletes(client, admin_headers, scim):
    register_node(client, admin_headers, "gpu-01", "H100", 4)
    quota(client, admin_headers, "Dev", gpu="4")
    alice = make_user(client, "alice", cluster_role="user")
    assert client.put(f"{API}/quotas/Dev/bindings/users/alice", headers=admin_headers).status_code == 204
    job = client.post(f"{API}/jobs", headers=alice, json={"quota": "Dev", "gpu": 1, "command": ["train"]}).json()
    hold_devices(client, job["id"], ["gpu-01:0"], "default")
    assert client.post(f"{API}/credentials", headers=alice).status_code == 201
    user_id = client.get(f"{API}/users/alice", headers=admin_headers).json()["id"]

    # active: false: deactivated with the existing rules, its running job stopped (an IdP expects that).
    r = patch(scim, f"Users/{user_id}", {"op": "replace", "path": "active", "value": False})
    assert r.status_code in (200, 204), r.text
    assert scim.get(f"Users/{user_id}").json()["active"] is False
    assert client.get(f"{API}/users/alice", headers=admin_headers).json()["is_active"] is False
    assert client.get(f"{API}/jobs/{job['id']}", headers=admin_headers).json()["reason_code"] == "cancel_requested"
    assert client.get(f"{API}/auth/whoami", headers=alice).status_code == 401  # sessions and credentials ended
    event = client.get(f"{API}/audit?action=user.deactivate", headers=admin_headers).json()["items"][0]
    assert event["actor"] == "okta" and event["changes"]["after"]["stop_jobs"] is True
    assert event["changes"]["after"]["credentials_revoked"] == 1

    # Reactivated, then DELETEd: gone from SCIM, kept (inactive, with its jobs) in allotment.
    assert patch(scim, f"Users/{user_id}", {"op": "replace", "value": {"active": True}}).status_code in (200, 204)
    assert scim.get(f"Users/{user_id}").json()["active"] is True
    assert scim.delete(f"Users/{user_id}").status_code == 204
    assert scim.get(f"Users/{user_id}").status_code == 404
    assert scim.get("Users", params={"filter": 'userName eq "alice"'}).json()["totalResults"] == 0
    kept = client.get(f"{API}/users/alice", headers=admin_headers).json()
    assert kept["is_active"] is False
    assert client.get(f"{API}/jobs/{job['id']}", headers=admin_headers).status_code == 200
    removal = client.get(f"{API}/audit?action=user.scim_remove", headers=admin_headers).json()["items"][0]
    assert removal["actor"] == "okta" and removal["target"] == "alice"
    # The name stays taken: a provider re-creating the person gets a conflict, not a second account.
    r = scim.post("Users", json={"schemas": [USER_SCHEMA], "userName": "alice", "active": True,
                                 "emails": [{"value": "alice2@example.com"}]})
    assert r.status_code == 409


def test_the_last_platform_admin_cannot_be_deprovisioned(scim):
    admin = scim.get("Users", params={"filter": 'userName eq "admin"'}).json()["Resources"][0]
    r = scim.delete(f"Users/{admin['id']}")
    assert r.status_code == 409 and "last active platform admin" in r.json()["detail"]
    assert scim.get(f"Users/{admin['id']}").json()["active"] is True


def test_groups_membership_and_deletion_remove_only_what_the_group_granted(client, admin_headers, scim):
    alice, bob = new_user(scim, "alice"), new_user(scim, "bob")
    r = scim.post("Groups", json={"schemas": [GROUP_SCHEMA], "displayName": "ml-team",
                                  "members": [{"value": alice["id"]}, {"value": bob["id"]}]})
    assert r.status_code == 201, r.text
    group = r.json()
    detail = client.get(f"{API}/groups/ml-team", headers=admin_headers).json()
    assert sorted(m["username"] for m in detail["members"]) == ["alice", "bob"]
    assert scim.get(f"Users/{alice['id']}").json()["groups"][0]["display"] == "ml-team"

    r = patch(scim, f"Groups/{group['id']}", {"op": "remove", "path": f'members[value eq "{bob["id"]}"]'})
    assert r.status_code in (200, 204), r.text
    assert [m["value"] for m in scim.get(f"Groups/{group['id']}").json()["members"]] == [alice["id"]]
    events = client.get(f"{API}/audit?action=group.remove_member", headers=admin_headers).json()["items"]
    assert events[0]["actor"] == "okta"

    # The group grants a role on `local`; alice also holds one directly, which stays.
    assert client.put(f"{API}/clusters/local/groups/ml-team", json={"role": "manager"},
                      headers=admin_headers).status_code == 200
    assert client.put(f"{API}/clusters/local/users/alice", json={"role": "user"},
                      headers=admin_headers).status_code == 200
    assert scim.delete(f"Groups/{group['id']}").status_code == 204
    assert client.get(f"{API}/groups/ml-team", headers=admin_headers).status_code == 404
    members = client.get(f"{API}/clusters/local/users", headers=admin_headers).json()["items"]
    assert [(m["username"], m["role"]) for m in members if m["username"] in ("alice", "bob")] == [("alice", "user")]
    assert client.get(f"{API}/users/alice", headers=admin_headers).json()["is_active"] is True


def test_built_in_groups_are_not_scim_resources(client, admin_headers, scim):
    listed = [g["displayName"] for g in scim.get("Groups").json().get("Resources", [])]
    assert "admins" not in listed and "users" not in listed
    admins_id = next(g["id"] for g in client.get(f"{API}/groups", headers=admin_headers).json()["items"]
                     if g["name"] == "admins")
    assert scim.get(f"Groups/{admins_id}").status_code == 404
    bob = new_user(scim, "bob")
    r = patch(scim, f"Groups/{admins_id}", {"op": "add", "path": "members", "value": [{"value": bob["id"]}]})
    assert r.status_code == 404
    assert scim.delete(f"Groups/{admins_id}").status_code == 404
    assert client.get(f"{API}/users/bob", headers=admin_headers).json().get("is_platform_admin") is not True
    r = scim.post("Groups", json={"schemas": [GROUP_SCHEMA], "displayName": "admins"})
    assert r.status_code == 409 and r.json()["scimType"] == "uniqueness"


def test_a_refused_request_changes_nothing(client, admin_headers, scim):
    alice = new_user(scim, "alice")
    r = scim.post("Groups", json={"schemas": [GROUP_SCHEMA], "displayName": "half-made",
                                  "members": [{"value": alice["id"]}, {"value": "999999"}]})
    assert r.status_code == 404 and r.json()["schemas"] == [ERROR_SCHEMA]
    assert client.get(f"{API}/groups/half-made", headers=admin_headers).status_code == 404
