"""The console's Simulate action: from the cluster page, replay the last days against the draft and compare it with
the live configuration; progress while it runs, then the comparison with its chart data; managers only."""

from __future__ import annotations

import json
import re
import time

from sched_helpers import Harness
from test_web_console import ADMIN_PASSWORD, csrf, make_user, sign_in

DATA = re.compile(r'<script type="application/json" id="simulation-data">(.*?)</script>', re.DOTALL)


def cluster_with_history(client, admin_headers) -> Harness:
    h = Harness(client, admin_headers)
    h.node("n1", gpus=2)
    h.pool("gpus", ["n1"])
    h.quota("vision", [{"resource": "gpu", "pool": "gpus", "guarantee": 1}])
    ids = [h.submit("vision", runtime_s=60, gpu=1) for _ in range(3)]
    for _ in range(5):
        h.settle(2, advance=40)
    assert h.states(ids) == ["succeeded"] * 3
    draft = h.get("/clusters/sim/resource-config/draft")
    draft["quotas"][[q["name"] for q in draft["quotas"]].index("vision")]["resources"][0]["limit"] = "1"
    h.put("/clusters/sim/resource-config/draft", {k: draft[k] for k in ("quotas", "profiles", "pool_profile_order")})
    return h


def test_simulate_the_draft_against_the_live_configuration(client, admin_headers):
    cluster_with_history(client, admin_headers)
    sign_in(client, "admin", ADMIN_PASSWORD)
    page = client.get("/ui/clusters/sim")
    assert 'href="/ui/clusters/sim/simulate"' in page.text
    token = csrf(client, "/ui/clusters/sim/simulate")
    r = client.post("/ui/clusters/sim/simulate", data={"csrf_token": token, "days": "1", "config": "draft",
                                                       "against": "current"}, follow_redirects=False)
    assert r.status_code == 303, r.text
    page_url = r.headers["location"]
    run_id = page_url.rsplit("=", 1)[1]
    deadline = time.monotonic() + 60
    while True:
        fragment = client.get(f"/ui/clusters/sim/simulate/runs/{run_id}")
        assert fragment.status_code == 200
        if 'data-testid="simulation-running"' not in fragment.text or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    page = client.get(page_url)
    assert 'data-testid="simulation-result"' in page.text, page.text
    assert 'data-testid="simulation-differences"' in page.text
    data = json.loads(DATA.search(page.text).group(1))
    chart = data["chart"]
    vision = chart["quotas"].index("vision")
    # the draft's limit of 1 GPU makes the three jobs queue more than on the live configuration's 2 GPUs
    assert chart["queue"]["config"][vision] > chart["queue"]["against"][vision]
    assert len(chart["utilisation"]["gpus"]["config"]) == 48
    assert data["labels"] == {"config": "draft", "against": "current"}


def test_bad_form_values_are_named(client, admin_headers):
    cluster_with_history(client, admin_headers)
    sign_in(client, "admin", ADMIN_PASSWORD)
    token = csrf(client, "/ui/clusters/sim/simulate")
    r = client.post("/ui/clusters/sim/simulate", data={"csrf_token": token, "days": "0", "config": "tomorrow",
                                                       "against": "current"}, follow_redirects=False)
    assert r.status_code == 422
    assert 'data-testid="errors-days"' in r.text and "from 1 to 366" in r.text
    assert 'data-testid="errors-config"' in r.text


def test_cluster_users_cannot_simulate(client, admin_headers):
    cluster_with_history(client, admin_headers)
    make_user(client, admin_headers, "uma")
    r = client.put("/api/v1/clusters/sim/users/uma", headers=admin_headers, json={"role": "user"})
    assert r.status_code == 200, r.text
    sign_in(client, "uma", "Passw0rd!x")
    assert 'href="/ui/clusters/sim/simulate"' not in client.get("/ui/clusters/sim").text
    assert client.get("/ui/clusters/sim/simulate").status_code == 403
