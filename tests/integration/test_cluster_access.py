"""Cluster membership gates submission (Neu.ro): removing a user from a cluster revokes their access to it, however
their quota binding was granted (directly, through a group or a workspace); their things stay, and adding them back
restores access. Their jobs waiting on that cluster are cancelled and audited; running ones keep running."""

from __future__ import annotations

import pytest
from inventory_helpers import API, hold_devices, make_user, quota, register_node

LOCAL = f"{API}/clusters/local"
SA_HEADER = "X-Allot-On-Behalf-Of"


def job(quota_name: str = "Dev") -> dict:
    return {"quota": quota_name, "gpu": 1, "command": ["train"]}


def add_to_cluster(client, admin_headers, user: str, role: str = "user") -> None:
    r = client.put(f"{LOCAL}/users/{user}", json={"role": role}, headers=admin_headers)
    assert r.status_code == 200, r.text


@pytest.fixture
def dev(client, admin_headers):
    """Quota Dev on local bound to dev1 directly, to group team (dev2) and to workspace ws (dev3)."""
    register_node(client, admin_headers, "gpu-01", "H100", 4)
    quota(client, admin_headers, "Dev", gpu="4")
    users = {"dev1": make_user(client, "dev1"), "dev2": make_user(client, "dev2", groups=("team",)),
             "dev3": make_user(client, "dev3")}
    r = client.post(f"{LOCAL}/workspaces", headers=admin_headers, json={"name": "ws", "users": ["dev3"]})
    assert r.status_code == 201, r.text
    for path in ("users/dev1", "groups/team", "workspaces/ws"):
        assert client.put(f"{API}/quotas/Dev/bindings/{path}", headers=admin_headers).status_code == 204
    return users


def test_workspace_group_or_direct_binding_is_not_enough_without_cluster_access(client, admin_headers, dev):
    for name, headers in dev.items():
        r = client.post(f"{API}/jobs", headers=headers, json=job())
        assert r.status_code == 403, (name, r.text)
        assert r.json()["errors"] == [{"field": "quota", "message": "you may not submit to quota Dev: you have no "
                                       "access to cluster local (a manager of cluster local can add you to it)"}]
        add_to_cluster(client, admin_headers, name)
        assert client.post(f"{API}/jobs", headers=headers, json=job()).status_code == 201, name


def test_removal_revokes_access_keeps_entities_and_adding_back_restores_it(client, admin_headers, dev):
    for name in dev:
        add_to_cluster(client, admin_headers, name)
    running = client.post(f"{API}/jobs", headers=dev["dev1"], json=job()).json()["id"]
    hold_devices(client, running, ["gpu-01:0"], "default")
    waiting = client.post(f"{API}/jobs", headers=dev["dev1"], json=job()).json()["id"]
    others = [client.post(f"{API}/jobs", headers=dev[n], json=job()).json()["id"] for n in ("dev2", "dev3")]

    for name in dev:  # direct, group and workspace bindings alike
        assert client.delete(f"{LOCAL}/users/{name}", headers=admin_headers).status_code == 204
        r = client.post(f"{API}/jobs", headers=dev[name], json=job())
        assert r.status_code == 403 and "no access to cluster local" in r.json()["detail"], (name, r.text)
        r = client.post(f"{API}/jobs/batch", headers=dev[name], json={"jobs": [job(), job()]})
        assert r.status_code == 403 and {e["field"] for e in r.json()["errors"]} == {"jobs.0.quota", "jobs.1.quota"}

    # Entities stay: the running job runs on, the bindings are kept, the user sees their jobs.
    shown = client.get(f"{API}/jobs/{running}", headers=dev["dev1"]).json()
    assert shown["state"] == "running"
    bound = {(b["kind"], b["name"]) for b in client.get(f"{API}/quotas/Dev/bindings", headers=admin_headers).json()}
    assert bound == {("user", "dev1"), ("group", "team"), ("workspace", "ws")}
    # Waiting jobs are cancelled, each audited with the reason.
    for job_id in [waiting, *others]:
        shown = client.get(f"{API}/jobs/{job_id}", headers=admin_headers).json()
        assert shown["state"] == "cancelled" and "no longer has access to cluster local" in shown["reason"], shown
    events = client.get(f"{API}/audit?action=job.cancel", headers=admin_headers).json()["items"]
    assert sorted(e["target"] for e in events) == sorted(f"job {i}" for i in [waiting, *others])

    add_to_cluster(client, admin_headers, "dev1")  # adding back restores access
    assert client.post(f"{API}/jobs", headers=dev["dev1"], json=job()).status_code == 201


def test_access_through_a_group_grant_counts_and_platform_admins_keep_access(client, admin_headers, dev):
    r = client.put(f"{LOCAL}/groups/team", json={"role": "user"}, headers=admin_headers)
    assert r.status_code == 200, r.text
    assert client.post(f"{API}/jobs", headers=dev["dev2"], json=job()).status_code == 201
    # Removing the group's grant revokes its members' access as removing them one by one would.
    assert client.delete(f"{LOCAL}/groups/team", headers=admin_headers).status_code == 204
    assert client.post(f"{API}/jobs", headers=dev["dev2"], json=job()).status_code == 403
    # A second platform admin with no role on local still submits.
    root2 = make_user(client, "root2", groups=("admins",))
    assert client.post(f"{API}/jobs", headers=root2, json=job()).status_code == 201


def test_a_cluster_admin_may_submit_to_any_quota_of_their_cluster_but_a_bound_user_of_another_may_not(
        client, admin_headers, dev):
    ops = make_user(client, "ops", cluster_role="admin")
    assert client.post(f"{API}/jobs", headers=ops, json=job()).status_code == 201
    r = client.post(f"{API}/clusters", json={"name": "cml", "backend": "simulated"}, headers=admin_headers)
    assert r.status_code == 201, r.text
    quota(client, admin_headers, "CmlDev", gpu="1", cluster="cml")
    assert client.put(f"{API}/quotas/CmlDev/bindings/users/dev1", headers=admin_headers).status_code == 204
    add_to_cluster(client, admin_headers, "dev1")  # a member of local only
    r = client.post(f"{API}/jobs", headers=dev["dev1"], json=job("CmlDev"))
    assert r.status_code == 403 and "no access to cluster cml" in r.json()["detail"]
    assert client.post(f"{API}/jobs", headers=ops, json=job("CmlDev")).status_code == 403


def test_service_accounts_are_judged_as_themselves_or_as_the_user_they_act_for(client, admin_headers, dev):
    r = client.post(f"{API}/service-accounts", json={"name": "ci-bot", "allow_impersonation": True},
                    headers=admin_headers)
    assert r.status_code == 201, r.text
    created = r.json()["credential"] if "credential" in r.json() else r.json()
    bot = {"Authorization": f"Bearer {created['access_key']}:{created['secret_key']}"}
    assert client.put(f"{API}/quotas/Dev/bindings/users/ci-bot", headers=admin_headers).status_code == 204
    assert client.post(f"{API}/jobs", headers=bot, json=job()).status_code == 403  # bound, not a member
    add_to_cluster(client, admin_headers, "ci-bot")
    assert client.post(f"{API}/jobs", headers=bot, json=job()).status_code == 201
    # On behalf of dev1, the bot has dev1's access: none until dev1 is a member of the cluster.
    on_behalf = {**bot, SA_HEADER: "dev1"}
    r = client.post(f"{API}/jobs", headers=on_behalf, json=job())
    assert r.status_code == 403 and "no access to cluster local" in r.json()["detail"]
    add_to_cluster(client, admin_headers, "dev1")
    assert client.post(f"{API}/jobs", headers=on_behalf, json=job()).status_code == 201


def test_quota_lists_offer_only_what_the_user_may_submit_to(client, admin_headers, dev):
    listed = {q["name"]: q["can_submit"] for q in client.get(f"{API}/quotas", headers=dev["dev1"]).json()["items"]}
    assert listed.get("Dev") is False
    add_to_cluster(client, admin_headers, "dev1")
    listed = {q["name"]: q["can_submit"] for q in client.get(f"{API}/quotas", headers=dev["dev1"]).json()["items"]}
    assert listed["Dev"] is True



def test_leaving_the_group_that_gave_access_revokes_it_like_a_removal(client, admin_headers, dev):
    assert client.put(f"{LOCAL}/groups/team", json={"role": "user"}, headers=admin_headers).status_code == 200
    waiting = client.post(f"{API}/jobs", headers=dev["dev2"], json=job()).json()["id"]
    assert client.delete(f"{API}/groups/team/members/dev2", headers=admin_headers).status_code == 204
    r = client.post(f"{API}/jobs", headers=dev["dev2"], json=job())
    assert r.status_code == 403 and "no access to cluster local" in r.json()["detail"]
    shown = client.get(f"{API}/jobs/{waiting}", headers=admin_headers).json()
    assert shown["state"] == "cancelled" and "dev2 no longer has access to cluster local" in shown["reason"]
