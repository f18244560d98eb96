"""The console's resource configuration page over HTTP: pool and profile cards with their orders (reorderable), the
draft editor (Save, Provision, Reset, the difference against what is provisioned, the stale draft), the switch."""

from __future__ import annotations

import html

import yaml
from inventory_helpers import API, hold_devices
from sched_helpers import Harness
from test_web_console import ADMIN_PASSWORD, csrf, make_user, sign_in

PAGE = "/ui/clusters/sim/configuration"


def configured(client, admin_headers) -> Harness:
    h = Harness(client, admin_headers, cluster="sim")
    h.node("a1", gpus=8, model="A100")
    h.node("h1", gpus=8, model="H100")
    h.pool("a100", ["a1"])
    h.pool("h100", ["h1"])
    h.quota("team", [{"resource": "gpu", "guarantee": 4}])
    h.quota("lab", [{"resource": "gpu", "guarantee": 4}])
    h.post("/clusters/sim/profiles", {"name": "small", "gpu": 1, "pools": [{"pool": "a100"}]}, 201)
    h.post("/clusters/sim/profiles", {"name": "big", "gpu": 8, "pools": [{"pool": "h100"}, {"pool": "a100"}]}, 201)
    return h


def test_pool_and_profile_cards_with_orders_that_move(client, admin_headers):
    h = configured(client, admin_headers)
    job = h.submit("team", gpu=2, pool="a100")
    hold_devices(client, job, ["a1:0", "a1:1"], "a100")
    sign_in(client, "admin", ADMIN_PASSWORD)
    page = client.get(PAGE).text
    a100 = page.split('data-testid="pool-card-a100"')[1].split("</article>")[0]
    assert "2 <span" in a100 and "of 8 GPUs in use" in a100
    assert a100.index("small") < a100.index("big")
    big = page.split('data-testid="profile-card-big"')[1].split("</section>")[0]
    assert "8 GPU" in big and "h100 (big on h100) → a100" in big and "0 queued" in big
    token = csrf(client, PAGE)
    r = client.post("/ui/clusters/sim/configuration/pools/a100/order",
                    data={"csrf_token": token, "profile": "big", "move": "up"}, follow_redirects=False)
    assert r.status_code == 303
    order = h.get("/clusters/sim/resource-config")["provisioned"]["pool_profile_order"]["a100"]
    assert order == ["big", "small"]
    events = h.get("/audit?action=pool.profile_order")["items"]
    assert events and events[0]["target"] == "sim/a100"


def test_draft_save_shows_the_difference_then_provision_applies_it(client, admin_headers):
    h = configured(client, admin_headers)
    sign_in(client, "admin", ADMIN_PASSWORD)
    page = client.get(PAGE).text
    assert 'data-testid="provision"' in page and "disabled" in page.split('data-testid="provision"')[1][:20]
    document = h.get("/clusters/sim/resource-config/draft")
    document = {k: document[k] for k in ("quotas", "profiles", "pool_profile_order")}
    document["quotas"][0]["resources"][0]["guarantee"] = "6"  # lab: 4 -> 6
    token = csrf(client, PAGE)
    r = client.post("/ui/clusters/sim/configuration/draft", data={"csrf_token": token, "draft": yaml.safe_dump(document)},
                    follow_redirects=False)
    assert r.status_code == 303, r.text
    page = client.get(PAGE).text
    diff = page.split('data-testid="draft-diff"')[1].split("</pre>")[0]
    assert "<del>-" in diff and "guarantee: &#39;4&#39;" in diff and "<ins>+" in diff and "&#39;6&#39;" in diff
    assert h.get("/quotas/lab")["resources"][0]["guarantee"] == "4"  # nothing live yet
    assert 'data-testid="simulate-draft"' in page  # replay the draft before provisioning it
    r = client.post("/ui/clusters/sim/configuration/provision", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303, r.text
    assert h.get("/quotas/lab")["resources"][0]["guarantee"] == "6"
    assert 'data-testid="draft-diff"' not in client.get(PAGE).text


def test_editor_errors_are_listed_under_it_and_the_input_is_kept(client, admin_headers):
    h = configured(client, admin_headers)
    sign_in(client, "admin", ADMIN_PASSWORD)
    token = csrf(client, PAGE)
    r = client.post("/ui/clusters/sim/configuration/draft", data={"csrf_token": token, "draft": "quotas: [\n  - name"})
    assert r.status_code == 422 and 'data-testid="draft-errors"' in r.text and "line " in r.text
    assert 'data-testid="error-page"' not in r.text
    r = client.post("/ui/clusters/sim/configuration/draft",
                    data={"csrf_token": token, "draft": "quotas:\n  - name: lab\n    weight: heavy\n"})
    assert r.status_code == 422 and "<code>quotas.0.weight</code>" in r.text and "weight: heavy" in r.text
    # Valid as a document but not as a tree: saved, then provisioning lists the tree's finding under the editor.
    document = {"quotas": [{"name": "lab", "resources": [{"resource": "gpu", "guarantee": 4}]},
                           {"name": "kid", "parent": "lab", "resources": [{"resource": "gpu", "guarantee": 9}]}]}
    r = client.post("/ui/clusters/sim/configuration/draft", data={"csrf_token": token, "draft": yaml.safe_dump(document)},
                    follow_redirects=False)
    assert r.status_code == 303
    r = client.post("/ui/clusters/sim/configuration/provision", data={"csrf_token": token})
    assert r.status_code == 422 and 'data-testid="draft-errors"' in r.text and "kid" in r.text
    assert client.get(f"{API}/quotas/kid", headers=admin_headers).status_code == 404
    # Reset drops the draft.
    r = client.post("/ui/clusters/sim/configuration/reset", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303 and not h.get("/clusters/sim/resource-config")["has_draft"]


def test_a_stale_draft_is_announced_and_its_provisioning_refused_beside_the_buttons(client, admin_headers):
    configured(client, admin_headers)
    sign_in(client, "admin", ADMIN_PASSWORD)
    token = csrf(client, PAGE)
    draft = client.get(PAGE).text.split('name="draft"')[1].split(">", 1)[1].split("</textarea>")[0]
    assert "quotas:" in draft
    r = client.post("/ui/clusters/sim/configuration/draft", data={"csrf_token": token, "draft": html.unescape(draft)},
                    follow_redirects=False)
    assert r.status_code == 303
    client.patch(f"{API}/quotas/team", headers=admin_headers, json={"weight": 2})
    assert 'data-testid="stale"' in client.get(PAGE).text
    r = client.post("/ui/clusters/sim/configuration/provision", data={"csrf_token": token})
    assert r.status_code == 409 and 'data-testid="refusal"' in r.text and 'data-testid="error-page"' not in r.text


def test_the_switch_and_who_may_use_the_page(client, admin_headers):
    h = configured(client, admin_headers)
    sign_in(client, "admin", ADMIN_PASSWORD)
    token = csrf(client, PAGE)
    r = client.post("/ui/clusters/sim/configuration/enabled", data={"csrf_token": token, "enabled": "false"},
                    follow_redirects=False)
    assert r.status_code == 303
    assert h.get("/clusters/sim/resource-config")["resource_management_enabled"] is False
    assert "Enable resource management" in client.get(PAGE).text
    make_user(client, admin_headers, "carol")
    client.cookies.clear()
    sign_in(client, "carol", "Passw0rd!x")
    assert client.get(PAGE).status_code == 403
    token = csrf(client, "/ui/quotas")
    r = client.post("/ui/clusters/sim/configuration/enabled", data={"csrf_token": token, "enabled": "true"})
    assert r.status_code == 403
