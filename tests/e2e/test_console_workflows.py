"""The console's editing workflows in a real browser (Debian's Chromium through Playwright, against the shared
`allot server`): the quota tree (create with an error under its field, the Scale dialog), the resource configuration
(reorder, draft Save with its difference, Provision), profiles, priority classes, and pools and nodes (create a pool,
filter nodes, a node's devices loaded on demand). Each form showing its errors passes axe-core too."""

from __future__ import annotations

import httpx
import pytest
import yaml

from e2e.clitools import unique
from e2e.test_console import ADMIN_PASSWORD, api_token, base_url, browser, page, sign_in  # noqa: F401 - fixtures
from e2e.test_console_quality import artifacts_dir, check_page


def accessible(page, name: str) -> None:  # noqa: F811 - page is the fixture's value
    """axe-core finds nothing at WCAG 2.1 A and AA on the page as it is now (a form showing its errors) and the page
    does not scroll sideways; the screenshot is kept with the other console artifacts."""
    problems = check_page(page, name, "desktop", artifacts_dir())
    assert not problems, "\n".join(problems)

pytestmark = pytest.mark.e2e


@pytest.fixture
def sim(base_url):  # noqa: F811 - base_url is the fixture's value
    """A simulated cluster of its own: two A100 nodes and one H100 node, pools a100 and h100, quota org (12 GPUs)
    with children a and b (6 each), and two profiles linked to a100."""
    admin = api_token(base_url, "admin", ADMIN_PASSWORD)
    name = unique("wf")
    api = f"{base_url}/api/v1"

    def ok(r, status=200):
        assert r.status_code == status, r.text
        return r

    ok(httpx.post(f"{api}/clusters", headers=admin, json={"name": name, "backend": "simulated"}), 201)
    for node, model in (("a1", "A100"), ("a2", "A100"), ("h1", "H100")):
        ok(httpx.post(f"{api}/clusters/{name}/nodes", headers=admin, json={
            "name": f"{name}-{node}", "cpu": 64, "memory": "512Gi",
            "devices": [{"index": i, "model": model, "memory": "80Gi"} for i in range(8)]}))
    ok(httpx.post(f"{api}/clusters/{name}/pools", headers=admin,
                  json={"name": f"{name}-a100", "nodes": [f"{name}-a1", f"{name}-a2"]}), 201)
    org, a, b = unique("org"), unique("qa"), unique("qb")
    ok(httpx.post(f"{api}/clusters/{name}/quotas", headers=admin,
                  json={"name": org, "resources": [{"resource": "gpu", "guarantee": 12}]}), 201)
    for child in (a, b):
        ok(httpx.post(f"{api}/clusters/{name}/quotas", headers=admin,
                      json={"name": child, "parent": org, "resources": [{"resource": "gpu", "guarantee": 6}]}), 201)
    for profile in ("small", "large"):
        ok(httpx.post(f"{api}/clusters/{name}/profiles", headers=admin,
                      json={"name": profile, "gpu": 1, "pools": [{"pool": f"{name}-a100"}]}), 201)
    return {"name": name, "org": org, "a": a, "b": b, "admin": admin, "api": api}


def guarantee(sim: dict, quota: str) -> str:
    return httpx.get(f"{sim['api']}/quotas/{quota}", headers=sim["admin"]).json()["resources"][0]["guarantee"]


def test_quota_create_with_a_field_error_and_scale_siblings_together(page, sim):  # noqa: F811
    sign_in(page, "admin", ADMIN_PASSWORD)
    page.goto("/ui/quotas")
    new = page.get_by_test_id(f"new-quota-{sim['name']}")
    new.locator("summary").click()
    name = unique("team")
    new.locator("#name").fill(name)
    new.locator("#parent").select_option(sim["org"])
    new.locator("#resources-1-guarantee").fill("0")
    new.locator("#resources-1-limit").fill("lots")
    new.locator("button[type=submit]").click()
    errors = page.get_by_test_id("errors-resources.1.limit")
    assert errors.inner_text().startswith("Limit of entry 2:")
    assert page.locator(f"[data-testid=new-quota-{sim['name']}] #name").input_value() == name  # input kept
    accessible(page, "quota-form-errors")
    page.locator(f"[data-testid=new-quota-{sim['name']}] #resources-1-limit").fill("2")
    page.locator(f"[data-testid=new-quota-{sim['name']}] button[type=submit]").click()
    page.wait_for_url("**/ui/quotas")
    assert page.get_by_test_id(f"quota-{name}").is_visible()

    scale = page.get_by_test_id(f"scale-{sim['name']}-{sim['org']}")
    scale.locator("summary").click()
    scale.get_by_label(f"{sim['a']} guarantee").fill("9")  # alone it breaks the parent's 12
    scale.locator("button[type=submit]").click()
    assert "12" in page.get_by_test_id("errors-changes.0.guarantee").inner_text()  # beside a's guarantee
    accessible(page, "quota-scale-errors")
    assert guarantee(sim, sim["a"]) == "6"
    scale = page.get_by_test_id(f"scale-{sim['name']}-{sim['org']}")
    scale.get_by_label(f"{sim['b']} guarantee").fill("2")
    scale.get_by_label(f"{sim['a']} guarantee").fill("9")
    scale.locator("button[type=submit]").click()
    page.wait_for_url("**/ui/quotas")
    assert (guarantee(sim, sim["a"]), guarantee(sim, sim["b"])) == ("9", "2")


def test_resource_configuration_reorder_draft_and_provision(page, sim):  # noqa: F811
    sign_in(page, "admin", ADMIN_PASSWORD)
    page.goto(f"/ui/clusters/{sim['name']}/configuration")
    order = page.get_by_test_id(f"pool-order-{sim['name']}-a100")
    assert order.inner_text().index("small") < order.inner_text().index("large")
    page.get_by_label(f"Run large earlier in {sim['name']}-a100").click()
    page.wait_for_url("**/configuration")
    order = page.get_by_test_id(f"pool-order-{sim['name']}-a100").inner_text()
    assert order.index("large") < order.index("small")

    document = yaml.safe_load(page.locator("#draft-text").input_value())
    for quota in document["quotas"]:
        if quota["name"] == sim["org"]:
            quota["description"] = "edited in the browser"
    page.locator("#draft-text").fill(yaml.safe_dump(document, sort_keys=False))
    page.get_by_test_id("save").click()
    page.wait_for_url("**/configuration")
    assert "edited in the browser" in page.get_by_test_id("draft-diff").inner_text()
    accessible(page, "draft-with-difference")
    page.get_by_test_id("provision").click()
    page.wait_for_url("**/configuration")
    quota = httpx.get(f"{sim['api']}/quotas/{sim['org']}", headers=sim["admin"]).json()
    assert quota["description"] == "edited in the browser"


def test_profiles_and_priority_classes_pages(page, sim):  # noqa: F811
    sign_in(page, "admin", ADMIN_PASSWORD)
    page.goto(f"/ui/clusters/{sim['name']}/profiles")
    page.locator("#name").fill("bad name/")
    page.locator("#gpu").fill("2")
    page.locator("#pools-0-pool").select_option(f"{sim['name']}-a100")
    page.locator("[data-testid=profile-form] button[type=submit]").click()
    assert page.get_by_test_id("errors-name").is_visible()
    accessible(page, "profile-form-errors")
    page.locator("#name").fill("pair")
    page.locator("[data-testid=profile-form] button[type=submit]").click()
    page.wait_for_url(f"**/ui/clusters/{sim['name']}/profiles")
    assert page.get_by_test_id("profile-pair").is_visible()

    page.goto("/ui/priority-classes")
    name = unique("pc")[:30]
    page.locator("[data-testid=class-form] #name").fill(name)
    page.locator("[data-testid=class-form] #value").fill("high")
    page.locator("[data-testid=class-form] button[type=submit]").click()
    assert page.get_by_test_id("errors-value").is_visible()
    accessible(page, "priority-class-errors")
    page.locator("[data-testid=class-form] #value").fill("700")
    page.locator("[data-testid=class-form] button[type=submit]").click()
    page.wait_for_url("**/ui/priority-classes")
    assert "700" in page.get_by_test_id(f"class-{name}").inner_text()


def test_pools_and_nodes(page, sim):  # noqa: F811
    name = sim["name"]
    sign_in(page, "admin", ADMIN_PASSWORD)
    page.goto(f"/ui/clusters/{name}")
    assert "0 of 8 allocated" in page.get_by_test_id(f"allocated-{name}-h1").inner_text()
    page.locator("#node-pool").select_option(f"{name}-a100")
    page.locator("[data-testid=node-filters] button[type=submit]").click()
    page.wait_for_url("**pool=*")
    assert page.get_by_test_id(f"node-{name}-h1").count() == 0
    row = page.get_by_test_id(f"node-{name}-a1")
    row.locator("summary").click()  # the devices load on demand
    assert f"{name}-a1:7" in page.get_by_test_id(f"devices-{name}-a1").inner_text()
    accessible(page, "nodes-with-devices")

    page.get_by_test_id("manage-pools").click()
    page.wait_for_url(f"**/ui/clusters/{name}/pools")
    form = page.get_by_test_id("pool-form")
    form.locator("#name").fill(f"{name}-h100")
    form.locator("#nodes").fill(f"{name}-h1, {name}-nowhere")
    form.locator("button[type=submit]").click()
    assert "nowhere" in page.get_by_test_id("errors-nodes").inner_text()
    accessible(page, "pool-form-errors")
    page.get_by_test_id("pool-form").locator("#nodes").fill(f"{name}-h1")
    page.get_by_test_id("pool-form").locator("button[type=submit]").click()
    page.wait_for_url(f"**/ui/clusters/{name}/pools")
    assert "8 GPUs" in page.get_by_test_id(f"pool-{name}-h100").inner_text()
