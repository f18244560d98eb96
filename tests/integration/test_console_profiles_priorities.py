"""The console's profile and priority class pages over HTTP: create, change, relink and delete, each error under
its field (a taken name included), refusals beside what was refused, and who may change what."""

from __future__ import annotations

from inventory_helpers import API
from sched_helpers import Harness
from test_web_console import ADMIN_PASSWORD, csrf, make_user, sign_in

PROFILES = "/ui/clusters/sim/profiles"


def cluster(client, admin_headers) -> Harness:
    h = Harness(client, admin_headers, cluster="sim")
    h.node("a1", gpus=8, model="A100")
    h.node("h1", gpus=8, model="H100")
    h.pool("a100", ["a1"])
    h.pool("h100", ["h1"])
    h.quota("team", [{"resource": "gpu", "guarantee": 8}])
    return h


def test_create_a_profile_with_its_pools_in_order_and_errors_by_field(client, admin_headers):
    h = cluster(client, admin_headers)
    sign_in(client, "admin", ADMIN_PASSWORD)
    token = csrf(client, PROFILES)
    form = {"csrf_token": token, "name": "big", "gpu": "8", "cpu": "32", "memory": "256Gi",
            "pools.0.pool": "", "pools.1.pool": "h100", "pools.2.pool": "a100", "pools.2.name": "overflow"}
    r = client.post(PROFILES, data=form | {"gpu": "eight", "pools.2.pool": "h100"})
    assert r.status_code == 422 and 'data-testid="error-page"' not in r.text
    assert 'data-testid="errors-gpu"' in r.text and 'value="eight"' in r.text
    r = client.post(PROFILES, data=form | {"pools.2.pool": "h100"})
    assert r.status_code == 422 and 'data-testid="errors-pools.2.pool"' in r.text and "linked twice" in r.text
    r = client.post(PROFILES, data=form, follow_redirects=False)
    assert r.status_code == 303, r.text
    out = h.get("/clusters/sim/profiles/big")
    assert out["gpu"] == "8" and [(p["pool"], p["name"]) for p in out["pools"]] == [("h100", "big on h100"),
                                                                                      ("a100", "overflow")]
    r = client.post(PROFILES, data=form)  # the name is taken: said under the name
    assert r.status_code == 409 and 'data-testid="errors-name"' in r.text and "already exists" in r.text
    page = client.get(PROFILES).text
    assert 'data-testid="profile-big"' in page and "h100 → a100" in page


def test_edit_relink_and_delete_a_profile(client, admin_headers):
    h = cluster(client, admin_headers)
    h.post("/clusters/sim/profiles", {"name": "small", "gpu": 1, "pools": [{"pool": "a100"}]}, 201)
    sign_in(client, "admin", ADMIN_PASSWORD)
    page = client.get(f"{PROFILES}/small").text
    assert 'name="pools.0.pool"' in page and '<option value="a100" selected>' in page
    token = csrf(client, PROFILES)
    form = {"csrf_token": token, "name": "single", "gpu": "1", "cpu": "", "memory": "", "unordered": "on",
            "pools.0.pool": "h100", "pools.1.pool": "a100"}
    r = client.post(f"{PROFILES}/small", data=form | {"memory": "lots"})
    assert r.status_code == 422 and 'data-testid="errors-memory"' in r.text
    assert h.get("/clusters/sim/profiles/small")["unordered"] is False  # nothing of the refused change is kept
    r = client.post(f"{PROFILES}/small", data=form, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].endswith("/profiles/single")
    out = h.get("/clusters/sim/profiles/single")
    assert out["unordered"] is True and [p["pool"] for p in out["pools"]] == ["h100", "a100"]
    job = h.submit("team", profile="single")
    r = client.post(f"{PROFILES}/single/delete", data={"csrf_token": token})
    assert r.status_code == 409 and 'data-testid="refusal"' in r.text and "1 queued or running" in r.text
    h.cancel(job)
    r = client.post(f"{PROFILES}/single/delete", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303
    assert client.get(f"{API}/clusters/sim/profiles/single", headers=admin_headers).status_code == 404


def test_priority_classes_create_change_and_delete(client, admin_headers):
    h = cluster(client, admin_headers)
    sign_in(client, "admin", ADMIN_PASSWORD)
    token = csrf(client, "/ui/priority-classes")
    r = client.post("/ui/priority-classes", data={"csrf_token": token, "name": "urgent", "value": "high"})
    assert r.status_code == 422 and 'data-testid="errors-value"' in r.text and 'value="high"' in r.text
    r = client.post("/ui/priority-classes", data={"csrf_token": token, "name": "urgent", "value": "900",
                                                  "description": "deadlines"}, follow_redirects=False)
    assert r.status_code == 303
    r = client.post("/ui/priority-classes", data={"csrf_token": token, "name": "urgent", "value": "1"})
    assert r.status_code == 409 and 'data-testid="errors-name"' in r.text
    r = client.post("/ui/priority-classes/urgent", data={"csrf_token": token, "value": "950", "is_default": "on"},
                    follow_redirects=False)
    assert r.status_code == 303
    classes = {c["name"]: c for c in h.get("/priority-classes")["items"]}
    assert classes["urgent"]["value"] == 950 and classes["urgent"]["is_default"]
    assert sum(c["is_default"] for c in classes.values()) == 1
    r = client.post("/ui/priority-classes/urgent", data={"csrf_token": token, "value": "x"})
    assert r.status_code == 422 and '<details open data-testid="edit-urgent">' in r.text
    job = h.submit("team", gpu=1, priority_class="urgent")
    r = client.post("/ui/priority-classes/urgent/delete", data={"csrf_token": token})
    assert r.status_code == 409 and 'data-testid="refusal"' in r.text
    h.cancel(job)
    assert client.post("/ui/priority-classes/urgent/delete", data={"csrf_token": token},
                       follow_redirects=False).status_code == 303


def test_readers_see_the_pages_without_forms(client, admin_headers):
    cluster(client, admin_headers)
    make_user(client, admin_headers, "carol")
    client.cookies.clear()
    sign_in(client, "carol", "Passw0rd!x")
    page = client.get("/ui/priority-classes")
    assert page.status_code == 200 and "New priority class" not in page.text
    token = csrf(client, "/ui/priority-classes")
    assert client.post("/ui/priority-classes", data={"csrf_token": token, "name": "x", "value": "1"}).status_code == 403
    assert client.get(PROFILES).status_code == 403  # no role on the cluster
    assert client.post(PROFILES, data={"csrf_token": token, "name": "x"}).status_code == 403
