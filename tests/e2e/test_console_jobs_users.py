"""The jobs list and the user pages in a real browser (Debian's Chromium through Playwright, against the shared
`allot server`): filter by cluster and pool, tick jobs and cancel them together (each outcome reported), the table
refreshing by itself; the submit form's sliders stopping at the policy; a user created with a resource policy while
the password rules under the field turn met as one types. Each page passes axe-core and fits 390 px."""

from __future__ import annotations

import httpx
import pytest

from e2e.clitools import unique
from e2e.test_console import ADMIN_PASSWORD, api_token, base_url, browser, page, sign_in  # noqa: F401 - fixtures
from e2e.test_console_quality import artifacts_dir, check_page

pytestmark = pytest.mark.e2e


def accessible(page, name: str) -> None:  # noqa: F811 - page is the fixture's value
    for label, size in (("desktop", {"width": 1440, "height": 900}), ("phone", {"width": 390, "height": 844})):
        page.set_viewport_size(size)
        problems = check_page(page, name, label, artifacts_dir())
        assert not problems, "\n".join(problems)
    page.set_viewport_size({"width": 1360, "height": 900})


@pytest.fixture
def cluster(base_url):  # noqa: F811 - base_url is the fixture's value
    """A simulated cluster with two pools and three jobs pinned to them that cannot start (more GPUs than a node has,
    over two nodes' worth of a quota with no guarantee), so they stay queued until cancelled."""
    admin = api_token(base_url, "admin", ADMIN_PASSWORD)
    api, name = f"{base_url}/api/v1", unique("jl")

    def ok(r, status=200):
        assert r.status_code == status, r.text
        return r

    ok(httpx.post(f"{api}/clusters", headers=admin, json={"name": name, "backend": "simulated"}), 201)
    for node in ("a", "b"):
        ok(httpx.post(f"{api}/clusters/{name}/nodes", headers=admin, json={
            "name": f"{name}-{node}", "cpu": 64, "memory": "512Gi",
            "devices": [{"index": i, "model": "A100", "memory": "80Gi"} for i in range(2)]}))
        ok(httpx.post(f"{api}/clusters/{name}/pools", headers=admin,
                      json={"name": f"{name}-p{node}", "nodes": [f"{name}-{node}"]}), 201)
    quota = unique("jq")
    ok(httpx.post(f"{api}/clusters/{name}/quotas", headers=admin,
                  json={"name": quota, "resources": [{"resource": "gpu", "guarantee": 0, "limit": 0}]}), 201)
    jobs = {}
    for key, pool in (("one", "pa"), ("two", "pb"), ("three", "pb")):
        r = ok(httpx.post(f"{api}/jobs", headers=admin, json={
            "quota": quota, "command": ["sleep", "600"], "gpu": "1", "pool": f"{name}-{pool}", "name": key}), 201)
        jobs[key] = r.json()["id"]
    return {"name": name, "api": api, "admin": admin, "jobs": jobs}


def test_filter_tick_and_cancel_jobs_and_the_table_refreshes(page, cluster):  # noqa: F811
    one, two, three = (cluster["jobs"][k] for k in ("one", "two", "three"))
    sign_in(page, "admin", ADMIN_PASSWORD)
    page.goto("/ui/jobs")
    page.get_by_label("Cluster").fill(cluster["name"])
    page.get_by_label("Pool").fill(f"{cluster['name']}-pb")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**pool=*")
    assert page.get_by_test_id(f"job-row-{two}").is_visible() and page.get_by_test_id(f"job-row-{one}").count() == 0
    accessible(page, "jobs-filtered")
    page.get_by_label("Pool").fill("no-such-pool")
    page.get_by_role("button", name="Filter").click()
    assert "no pool" in page.get_by_test_id("errors-pool").inner_text()  # under its filter, not a 404 page
    accessible(page, "jobs-filter-error")

    page.goto(f"/ui/jobs?cluster={cluster['name']}")
    # The table refreshes by itself: a job cancelled elsewhere shows as cancelled without a reload.
    httpx.post(f"{cluster['api']}/jobs/{one}/cancel", headers=cluster["admin"]).raise_for_status()
    page.get_by_test_id(f"job-state-{one}").get_by_text("cancelled", exact=True).wait_for(timeout=15_000)
    page.get_by_test_id(f"select-{two}").check()
    page.get_by_test_id(f"select-{three}").check()
    page.get_by_test_id("cancel-selected").click()
    page.wait_for_url(f"**/ui/jobs?cluster={cluster['name']}*")
    notice = page.locator(".notice").first.inner_text()
    assert f"Job {two} cancelled." in notice and f"Job {three} cancelled." in notice
    for job in (two, three):
        state = httpx.get(f"{cluster['api']}/jobs/{job}", headers=cluster["admin"]).json()["state"]
        assert state == "cancelled"


def test_the_job_form_slider_stops_at_the_policy(page, base_url):  # noqa: F811
    admin = api_token(base_url, "admin", ADMIN_PASSWORD)
    api, policy, user = f"{base_url}/api/v1", unique("pol"), unique("u")
    assert httpx.post(f"{api}/resource-policies", headers=admin,
                      json={"name": policy, "gpu": 3, "cpu": "8", "memory": "32Gi"}).status_code == 201
    r = httpx.post(f"{api}/users", headers=admin, json={"email": f"{user}@example.com", "username": user,
                                                         "password": "Slider-pass-1!", "resource_policy": policy})
    assert r.status_code == 201, r.text
    sign_in(page, user, "Slider-pass-1!")
    page.goto("/ui/jobs/new")
    slider = page.get_by_test_id("slider-gpu")
    assert slider.get_attribute("max") == "3.0"
    slider.fill("3")
    assert page.locator("#gpu").input_value() == "3"
    page.get_by_test_id("slider-memory").fill("32")
    assert page.locator("#memory").input_value() == "32Gi"
    assert "3 left" in page.get_by_test_id("allowance-gpu").inner_text()
    accessible(page, "job-new-allowance")


def test_create_a_user_with_a_policy_and_live_password_rules(page, base_url):  # noqa: F811
    admin = api_token(base_url, "admin", ADMIN_PASSWORD)
    policy, user = unique("pol"), unique("u")
    assert httpx.post(f"{base_url}/api/v1/resource-policies", headers=admin,
                      json={"name": policy, "gpu": 2}).status_code == 201
    sign_in(page, "admin", ADMIN_PASSWORD)
    page.goto("/ui/users/new")
    page.fill("#password", "abc")
    for rule, state in (("min_length", "unmet"), ("letter", "met"), ("digit", "unmet"), ("special", "unmet")):
        assert page.get_by_test_id(f"rule-{rule}").get_attribute("data-state") == state, rule
    accessible(page, "user-new-rules")
    page.fill("#password", "abc1!xyz")
    for rule in ("min_length", "max_length", "letter", "digit", "special"):
        assert page.get_by_test_id(f"rule-{rule}").get_attribute("data-state") == "met", rule
    page.fill("#email", f"{user}@example.com")
    page.fill("#username", user)
    page.fill("#password_confirm", "abc1!xyz")
    page.select_option("#resource_policy", policy)
    page.get_by_role("button", name="Create user").click()
    page.wait_for_url("**/ui/users/*")
    assert page.get_by_test_id("user-policy").inner_text() == policy
    page.get_by_test_id("user-groups").get_by_role("link", name="users").click()
    page.wait_for_url("**/ui/groups/users")
