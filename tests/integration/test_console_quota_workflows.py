"""The console's quota workflows over HTTP: per-pool bars with every pool a quota's subtree holds, the warning when
guarantees exceed the pools, create / edit / delete with each error under its field, and the Scale dialog."""

from __future__ import annotations

import re

from inventory_helpers import API, hold_devices
from sched_helpers import Harness
from test_web_console import ADMIN_PASSWORD, csrf, make_user, sign_in


def cluster_with_pools(client, admin_headers) -> Harness:
    h = Harness(client, admin_headers, cluster="sim")
    h.node("a1", gpus=8, model="A100")
    h.node("h1", gpus=8, model="H100")
    h.pool("a100", ["a1"])
    h.pool("h100", ["h1"])
    return h


def quota_row(page: str, name: str) -> str:
    match = re.search(rf'<tr data-testid="quota-{name}">(.*?)</tr>', page, re.DOTALL)
    assert match, f"no row for {name}"
    return match.group(1)


def test_a_quota_shows_every_pool_its_subtree_holds(client, admin_headers):
    h = cluster_with_pools(client, admin_headers)
    h.quota("org", [{"resource": "gpu", "guarantee": 16}])
    h.quota("team", [{"resource": "gpu", "pool": "a100", "guarantee": 4, "limit": 8},
                     {"resource": "gpu", "pool": "h100", "guarantee": 0}], parent="org")
    job = h.submit("team", gpu=8, pool="h100")
    hold_devices(client, job, [f"h1:{i}" for i in range(8)], "h100")
    sign_in(client, "admin", ADMIN_PASSWORD)
    page = client.get("/ui/quotas").text
    org = quota_row(page, "org")
    # org has one all-pools entry, yet the page shows the 8 GPUs it holds in h100 through its child.
    assert 'data-testid="bar-org-h100-gpu"' in org and "in use <strong>8</strong>" in org
    assert "counts against its all-pools entry" in org
    team = quota_row(page, "team")
    assert 'data-testid="bar-team-a100-gpu"' in team and "guarantee 4 · limit 8" in team
    h100 = re.search(r'data-testid="bar-team-h100-gpu">(.*?)</div>', team, re.DOTALL).group(1)
    assert "in use <strong>8</strong>" in h100 and "borrowing" in h100 and 'high="' not in h100


def test_a_warning_when_guarantees_exceed_what_the_pools_hold(client, admin_headers):
    h = cluster_with_pools(client, admin_headers)
    h.quota("big", [{"resource": "gpu", "pool": "h100", "guarantee": 12}])
    sign_in(client, "admin", ADMIN_PASSWORD)
    page = client.get("/ui/quotas").text
    warning = re.search(r'data-testid="capacity-warning">(.*?)</div>', page, re.DOTALL)
    assert warning and "12" in warning.group(1) and "8" in warning.group(1)
    client.patch(f"{API}/quotas/big", headers=admin_headers,
                 json={"resources": [{"resource": "gpu", "pool": "h100", "guarantee": 8}]})
    assert 'data-testid="capacity-warning"' not in client.get("/ui/quotas").text


def test_create_edit_and_delete_a_quota_with_errors_under_their_fields(client, admin_headers):
    h = cluster_with_pools(client, admin_headers)
    h.quota("org", [{"resource": "gpu", "guarantee": 8}])
    sign_in(client, "admin", ADMIN_PASSWORD)
    token = csrf(client, "/ui/quotas")
    # The second entry row is the one with the mistake: its message sits under its own limit, not the first row's.
    bad = {"csrf_token": token, "name": "team", "parent": "org", "weight": "1",
           "resources.0.pool": "a100", "resources.0.resource": "gpu", "resources.0.guarantee": "", "resources.0.limit": "",
           "resources.1.pool": "h100", "resources.1.resource": "gpu", "resources.1.guarantee": "2",
           "resources.1.limit": "lots"}
    r = client.post("/ui/clusters/sim/quotas", data=bad)
    assert r.status_code == 422 and 'data-testid="errors-resources.1.limit"' in r.text
    assert "errors-resources.0.limit" not in r.text and 'value="lots"' in r.text
    assert 'data-testid="error-page"' not in r.text
    r = client.post("/ui/clusters/sim/quotas", data=bad | {"resources.1.guarantee": "12", "resources.1.limit": ""})
    assert r.status_code == 422 and "org" in r.text and 'data-testid="errors-resources"' in r.text  # beyond parent
    r = client.post("/ui/clusters/sim/quotas", data=bad | {"resources.1.limit": "4"}, follow_redirects=False)
    assert r.status_code == 303, r.text
    team = h.get("/quotas/team")
    assert team["parent"] == "org"
    assert [(x["pool"], x["guarantee"], x["limit"]) for x in team["resources"]] == [("h100", "2", "4")]
    # Edit: the name box empties -> refused under the name; then a new limit and a removed entry.
    edit = client.get("/ui/quotas/team").text
    assert 'name="resources.0.guarantee" type="text" value="2"' in edit
    form = {"csrf_token": token, "name": "", "parent": "org", "weight": "1", "min_runtime_s": "0",
            "reclaim": "never", "within_quota_preemption": "never",
            "resources.0.pool": "h100", "resources.0.resource": "gpu", "resources.0.guarantee": "2",
            "resources.0.limit": "6", "resources.1.pool": "a100", "resources.1.resource": "gpu",
            "resources.1.guarantee": "1", "resources.1.limit": ""}
    r = client.post("/ui/quotas/team", data=form)
    assert r.status_code == 422 and 'data-testid="errors-name"' in r.text
    r = client.post("/ui/quotas/team", data=form | {"name": "team"}, follow_redirects=False)
    assert r.status_code == 303, r.text
    entries = {(x["pool"], x["guarantee"], x["limit"]) for x in h.get("/quotas/team")["resources"]}
    assert entries == {("h100", "2", "6"), ("a100", "1", "unlimited")}
    # Its pool list and allowed priority classes: unknown names under their fields, then kept and cleared.
    r = client.post("/ui/quotas/team", data=form | {"name": "team", "pools": "h100, nowhere",
                                                     "allowed_priority_classes": "sometime"})
    assert r.status_code == 422 and 'data-testid="errors-allowed_priority_classes"' in r.text
    r = client.post("/ui/quotas/team", data=form | {"name": "team", "pools": "h100, nowhere"})
    assert r.status_code == 422 and 'data-testid="errors-pools"' in r.text and "nowhere" in r.text
    r = client.post("/ui/quotas/team", data=form | {"name": "team", "pools": "h100"}, follow_redirects=False)
    assert r.status_code == 303 and h.get("/quotas/team")["pools"] == ["h100"]
    assert 'name="pools" type="text" value="h100"' in client.get("/ui/quotas/team").text
    r = client.post("/ui/quotas/team", data=form | {"name": "team", "resources.0.guarantee": "",
                                                     "resources.0.limit": ""}, follow_redirects=False)
    assert r.status_code == 303
    assert [x["pool"] for x in h.get("/quotas/team")["resources"]] == ["a100"]
    # Delete: refused for a parent, in the service's words on the quota's page; then allowed.
    r = client.post("/ui/quotas/org/delete", data={"csrf_token": token})
    assert r.status_code == 409 and 'data-testid="refusal"' in r.text and "child quotas (team)" in r.text
    assert client.post("/ui/quotas/team/delete", data={"csrf_token": token}, follow_redirects=False).status_code == 303
    assert client.get(f"{API}/quotas/team", headers=admin_headers).status_code == 404
    events = h.get("/audit?target_type=quota")["items"]
    assert {"quota.create", "quota.update", "quota.delete"} <= {e["action"] for e in events}


def test_scale_changes_siblings_together_or_not_at_all(client, admin_headers):
    h = cluster_with_pools(client, admin_headers)
    h.quota("org", [{"resource": "gpu", "guarantee": 12}])
    h.quota("a", [{"resource": "gpu", "guarantee": 6}], parent="org")
    h.quota("b", [{"resource": "gpu", "guarantee": 6}], parent="org")
    sign_in(client, "admin", ADMIN_PASSWORD)
    page = client.get("/ui/quotas").text
    assert 'data-testid="scale-sim-org"' in page
    token = csrf(client, "/ui/quotas")
    base = {"csrf_token": token, "group": "org"}
    for i, name in enumerate(("a", "b")):
        base |= {f"changes.{i}.quota": name, f"changes.{i}.pool": "*", f"changes.{i}.resource": "gpu",
                 f"changes.{i}.was_guarantee": "6", f"changes.{i}.was_limit": "unlimited",
                 f"changes.{i}.guarantee": "6", f"changes.{i}.limit": "unlimited"}
    # a grows alone past the parent: refused as a whole, nothing changes, the form stays open with the input.
    r = client.post("/ui/clusters/sim/quotas/scale", data=base | {"changes.0.guarantee": "8"})
    assert r.status_code == 422 and 'data-testid="error-page"' not in r.text
    assert re.search(r'<details open data-testid="scale-sim-org">', r.text)
    assert 'value="8"' in r.text
    # The siblings' sum against the parent is said under the guarantee that changed, not as a page error.
    beside = re.search(r'data-testid="errors-changes.0.guarantee">(.*?)</small>', r.text, re.DOTALL)
    assert beside and "children of quota org guarantee 14" in beside.group(1) and "12" in beside.group(1)
    assert 'data-testid="errors-changes.1.guarantee"' not in r.text
    assert h.get("/quotas/a")["resources"][0]["guarantee"] == "6"
    # A bad amount is shown under that sibling's guarantee.
    r = client.post("/ui/clusters/sim/quotas/scale", data=base | {"changes.1.guarantee": "-1"})
    assert r.status_code == 422 and 'data-testid="errors-changes.1.guarantee"' in r.text
    # a grows while b shrinks: accepted together, audited as one scale.
    r = client.post("/ui/clusters/sim/quotas/scale", data=base | {"changes.0.guarantee": "8",
                                                                  "changes.1.guarantee": "4"},
                    follow_redirects=False)
    assert r.status_code == 303, r.text
    assert [h.get(f"/quotas/{n}")["resources"][0]["guarantee"] for n in ("a", "b")] == ["8", "4"]


def test_only_cluster_admins_see_and_use_the_forms(client, admin_headers):
    h = cluster_with_pools(client, admin_headers)
    h.quota("org", [{"resource": "gpu", "guarantee": 4}])
    make_user(client, admin_headers, "carol")
    client.cookies.clear()
    sign_in(client, "carol", "Passw0rd!x")
    page = client.get("/ui/quotas").text
    assert "New quota" not in page and "/ui/quotas/org" not in page
    token = csrf(client, "/ui/quotas")
    assert client.post("/ui/clusters/sim/quotas", data={"csrf_token": token, "name": "x"}).status_code == 403
    assert client.get("/ui/quotas/org").status_code == 403
    assert client.post("/ui/quotas/org/delete", data={"csrf_token": token}).status_code == 403
