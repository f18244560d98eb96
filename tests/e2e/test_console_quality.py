"""The console's quality bars in a real browser: every page passes axe-core (WCAG 2.1 A and AA) and fits a phone's width,
walked as an admin, as an ordinary user (every page they reach) and as a signed-out visitor (the sign-in pages).

The pages are discovered from the console's router, so a new page is walked without editing this file; a page whose
path needs a value this walk does not know fails the test until it is added to `path_values`. axe-core comes from
npm (package.json's devDependencies) and is injected into each page. Screenshots of every page at both widths are
kept under $ALLOT_TEST_ARTIFACTS (default var/test-artifacts/console), printed at the end.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import httpx
import pytest

from e2e.clitools import unique
from e2e.test_console import ADMIN_PASSWORD, CHROMIUM, CHROMIUM_ARGS, TIMEOUT_MS, api_token, sign_in

playwright_api = pytest.importorskip("playwright.sync_api")

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
AXE = REPO / "node_modules" / "axe-core" / "axe.min.js"
WIDTHS = {"desktop": {"width": 1440, "height": 900}, "phone": {"width": 390, "height": 844}}
# Routes that answer htmx requests with a fragment of another page, not a page of their own.
FRAGMENTS = {"/ui/jobs/{job_id}/log", "/ui/clusters/new/engine"}
# "/" and "/ui" redirect to "/ui/"; /login redirects a signed-in visitor (it is walked signed out below); the
# single sign-on endpoints under /login/ answer identity providers and redirect.
REDIRECTS = {"/", "/ui", "/login"}
NOT_PAGES = ("/login/",)
WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


def console_get_paths() -> list[str]:
    """Every GET path of the console router, in declaration order."""
    from allotment.web.routes import router

    def walk(rt):
        for route in rt.routes:
            if hasattr(route, "original_router"):
                yield from walk(route.original_router)
            elif "GET" in (getattr(route, "methods", None) or ()):
                yield route.path

    return list(dict.fromkeys(walk(router)))


def artifacts_dir() -> Path:
    root = Path(os.environ.get("ALLOT_TEST_ARTIFACTS") or REPO / "var" / "test-artifacts")
    path = root / "console"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def seeded(server) -> dict:
    """One of everything a page's path can name: a queued job on its own quota, a group, a resource policy."""
    url = server.url
    admin = api_token(url, "admin", ADMIN_PASSWORD)
    quota = unique("qa")
    r = httpx.post(f"{url}/api/v1/clusters/local/quotas", headers=admin,
                   json={"name": quota, "resources": [{"resource": "gpu", "guarantee": 0, "limit": 0}]})
    assert r.status_code == 201, r.text
    r = httpx.post(f"{url}/api/v1/jobs", headers=admin,
                   json={"quota": quota, "gpu": 1, "cpu": 0.5, "memory": "2GiB", "command": "sleep 600",
                         "name": unique("walk")})
    assert r.status_code == 201, r.text
    job_id = str(r.json()["id"])
    group = unique("walkers")
    r = httpx.post(f"{url}/api/v1/groups", headers=admin, json={"name": group})
    assert r.status_code == 201, r.text
    policies = httpx.get(f"{url}/api/v1/resource-policies", headers=admin).json()["items"]
    robot = unique("robot")
    r = httpx.post(f"{url}/api/v1/service-accounts", headers=admin, json={"name": robot})
    assert r.status_code == 201, r.text
    workspace = unique("walk-ws")
    r = httpx.post(f"{url}/api/v1/clusters/local/workspaces", headers=admin, json={"name": workspace})
    assert r.status_code == 201, r.text
    r = httpx.post(f"{url}/api/v1/projects", headers=admin, json={"workspace": workspace, "name": unique("walk-p")})
    assert r.status_code == 201, r.text
    made_rule = httpx.post(f"{url}/api/v1/access-rules", headers=admin, json={
        "workspace": workspace, "resource_type": "model", "level": "read",
        "grantees": [{"kind": "group", "name": group}]})
    assert made_rule.status_code == 201, made_rule.text
    vault = unique("walk-vault")
    r = httpx.post(f"{url}/api/v1/vaults", headers=admin, json={"name": vault, "content": "sdk.region = eu"})
    assert r.status_code == 201, r.text
    target = unique("walk-target")
    r = httpx.post(f"{url}/api/v1/storage/targets", headers=admin, json={"name": target, "kind": "folder",
                                                                            "path": "/srv"})
    assert r.status_code == 201, r.text
    values = {"job_id": job_id, "quota": quota, "cluster": "local", "user": "admin", "group": group,
              "/ui/vaults/{name}": {"name": vault}, "/ui/storage-targets/{name}": {"name": target},
              "name": policies[0]["name"], "/ui/service-accounts/{name}": {"name": robot}, "workspace": workspace,
              "rule": str(made_rule.json()["id"]), "project_id": str(r.json()["id"])}
    nodes = httpx.get(f"{url}/api/v1/clusters/local/nodes", headers=admin).json()["items"]
    if nodes:
        values["node"] = nodes[0]["name"]
    profiles = httpx.get(f"{url}/api/v1/clusters/local/profiles", headers=admin).json()["items"]
    if profiles:
        values["profile"] = profiles[0]["name"]
    return values


@pytest.fixture(scope="module")
def browser(server):
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: run scripts/ensure-chromium.sh (scripts/test.sh does)")
    if not AXE.is_file():
        pytest.fail(f"{AXE} is missing: run `npm ci` (make install does)")
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def check_page(page, path: str, label: str, shots: Path, name: str | None = None) -> list[str]:
    """Problems on the page now open: axe violations, sideways scrolling; saves a full-page screenshot."""
    problems = []
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", WCAG)
    for violation in result["violations"]:
        targets = "; ".join(" ".join(node["target"]) for node in violation["nodes"][:8])
        problems.append(f"{path} [{label}] {violation['id']} ({violation['impact']}): {violation['help']} -> {targets}")
    overflow = page.evaluate("[document.scrollingElement.scrollWidth, window.innerWidth]")
    if overflow[0] > overflow[1]:
        wide = page.evaluate("""() => [...document.querySelectorAll('body *')]
            .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1 && !(e.parentElement && e.parentElement.closest('.card')))
            .slice(0, 3).map(e => e.tagName.toLowerCase() + (e.className ? '.' + e.className : ''))""")
        problems.append(f"{path} [{label}] scrolls sideways: {overflow[0]} px wide in {overflow[1]} ({wide})")
    name = re.sub(r"[^a-z0-9]+", "-", (name or path).lower()).strip("-") or "root"
    page.screenshot(path=str(shots / f"{name}-{label}.png"), full_page=True)
    return problems


def walk(page, label: str, shots: Path, values: dict, role: str) -> tuple[list[str], list[str], list[str]]:
    """Open every console page the router declares, with `values` for its path parameters, and check each one that
    answers 200 at its own address. A page the role may not see (403, 404 for what it may not know of) is checked
    once, as the refusal page it is; a signed-out visitor sent to the sign-in page is not checked again.
    Returns (walked, not walked for want of a value, problems)."""
    walked, unknown, problems, refusal_checked = [], [], [], False
    for template in console_get_paths():
        if template in FRAGMENTS or template in REDIRECTS or template.startswith(NOT_PAGES) \
                or template.endswith("/download"):  # a file to save, not a page
            continue
        merged = {**values, **values.get(template, {})}
        if any(n not in merged for n in re.findall(r"{(\w+)}", template)):
            unknown.append(template)  # reported below; add a value to the seeding fixture to walk it
            continue
        path = template.format(**merged)
        response = page.goto(path)
        status = response.status if response is not None else None
        if role == "visitor" and "/login" in page.url:
            continue  # signed out: sent to sign in (the sign-in page is walked on its own)
        if role != "admin" and status in (403, 404):
            if not refusal_checked:
                problems += check_page(page, path, label, shots, name=f"{role}-refused")
                refusal_checked = True
            continue
        if status != 200:
            problems.append(f"{path} [{role}, {label}] answered {status}")
            continue
        problems += check_page(page, path, label, shots, name=f"{role}-{template}" if role != "admin" else template)
        walked.append(path)
    return walked, unknown, problems


def report(label: str, role: str, shots: Path, unknown: list[str]) -> None:
    print(f"\nconsole screenshots ({role}, {label}): {shots}")
    if unknown:
        print(f"not walked as {role} (no value for their path parameters): {', '.join(unknown)}")


@pytest.mark.parametrize("label", list(WIDTHS))
def test_every_page_is_accessible_and_fits_the_width(browser, server, seeded, label):
    shots = artifacts_dir()
    context = browser.new_context(base_url=server.url, viewport=WIDTHS[label])
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    try:
        sign_in(page, "admin", ADMIN_PASSWORD)
        walked, unknown, problems = walk(page, label, shots, seeded, "admin")
        page.goto("/ui/nowhere")  # the error page is a page too
        problems += check_page(page, "/ui/nowhere", label, shots)
    finally:
        context.close()
    report(label, "admin", shots, unknown)
    assert len(walked) >= 20, walked
    assert not problems, "\n".join(problems)


@pytest.fixture(scope="module")
def ordinary_user(server, seeded) -> dict:
    """A user with no role but their own: a quota they may submit to, a queued job of theirs, a group they are in."""
    url = server.url
    admin = api_token(url, "admin", ADMIN_PASSWORD)
    name, password = unique("walker"), "Walker-pass-1!"
    r = httpx.post(f"{url}/api/v1/users", headers=admin,
                   json={"email": f"{name}@example.com", "username": name, "password": password})
    assert r.status_code == 201, r.text
    r = httpx.put(f"{url}/api/v1/clusters/local/users/{name}", headers=admin, json={"role": "user"})
    assert r.status_code == 200, r.text
    r = httpx.put(f"{url}/api/v1/quotas/{seeded['quota']}/bindings/users/{name}", headers=admin)
    assert r.status_code == 204, r.text
    r = httpx.put(f"{url}/api/v1/groups/{seeded['group']}/members/{name}", headers=admin)
    assert r.status_code == 204, r.text
    workspace = unique("walk-ws")
    r = httpx.post(f"{url}/api/v1/clusters/local/workspaces", headers=admin, json={"name": workspace, "users": [name]})
    assert r.status_code == 201, r.text
    mine = api_token(url, name, password)
    r = httpx.post(f"{url}/api/v1/jobs", headers=mine,
                   json={"quota": seeded["quota"], "gpu": 1, "cpu": 0.5, "memory": "1GiB", "command": "sleep 600",
                         "name": unique("mine")})
    assert r.status_code == 201, r.text
    return {"username": name, "password": password,
            "values": {**seeded, "job_id": str(r.json()["id"]), "user": name, "workspace": workspace}}


@pytest.mark.parametrize("label", list(WIDTHS))
def test_every_page_an_ordinary_user_reaches_is_accessible_and_fits(browser, server, ordinary_user, label):
    shots = artifacts_dir()
    context = browser.new_context(base_url=server.url, viewport=WIDTHS[label])
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    try:
        sign_in(page, ordinary_user["username"], ordinary_user["password"])
        walked, unknown, problems = walk(page, label, shots, ordinary_user["values"], "user")
    finally:
        context.close()
    report(label, "user", shots, unknown)
    for own in ("/ui/", "/ui/jobs", "/ui/jobs/new", f"/ui/jobs/{ordinary_user['values']['job_id']}", "/ui/account",
                "/ui/credentials", "/ui/usage"):
        assert own in walked, (own, walked)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("label", list(WIDTHS))
def test_the_signed_out_pages_are_accessible_and_fit(browser, server, seeded, label):
    """A visitor sees the sign-in page (also with its error), and whatever else answers without a session."""
    shots = artifacts_dir()
    context = browser.new_context(base_url=server.url, viewport=WIDTHS[label])
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    try:
        page.goto("/login")
        problems = check_page(page, "/login", label, shots)
        page.fill("#username", "admin")
        page.fill("#password", "not-the-password")
        page.click("form[action='/login'] button[type=submit]")
        page.get_by_test_id("login-error").wait_for()
        problems += check_page(page, "/login (refused)", label, shots, name="login-refused")
        walked, _, more = walk(page, label, shots, seeded, "visitor")
        problems += more
        page.goto("/ui/nowhere")
        problems += check_page(page, "/ui/nowhere (signed out)", label, shots, name="visitor-nowhere")
    finally:
        context.close()
    report(label, "visitor", shots, [])
    print(f"signed-out pages walked besides the sign-in page: {', '.join(walked) or 'none'}")
    assert not problems, "\n".join(problems)


def test_phone_navigation_is_behind_a_menu_button_and_focus_is_visible(browser, server):
    context = browser.new_context(base_url=server.url, viewport=WIDTHS["phone"])
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    try:
        sign_in(page, "admin", ADMIN_PASSWORD)
        nav = page.locator("aside nav")
        assert not nav.is_visible()  # collapsed at phone width
        page.get_by_test_id("menu-button").click()
        assert nav.is_visible()
        assert page.get_by_test_id("menu-button").get_attribute("aria-expanded") == "true"
        page.screenshot(path=str(artifacts_dir() / "menu-open-phone.png"), full_page=True)

        page.goto("/ui/jobs")
        page.keyboard.press("Tab")  # the first stop is the skip link, shown when focused
        skip = page.locator("a.skip-link")
        active = page.evaluate("document.activeElement.outerHTML")
        assert skip.evaluate("e => e === document.activeElement"), active
        assert skip.is_visible()
        page.keyboard.press("Enter")
        assert page.evaluate("location.hash") == "#content"
        for _ in range(3):  # each following stop draws a focus outline
            page.keyboard.press("Tab")
            outline = page.evaluate("""() => { const s = getComputedStyle(document.activeElement);
                return [s.outlineStyle, s.outlineWidth, s.boxShadow, document.activeElement.outerHTML.slice(0, 120)]; }""")
            assert outline[0] != "none" and outline[1] != "0px" or outline[2] != "none", outline
    finally:
        context.close()


@pytest.fixture
def admin_page(browser, server):
    context = browser.new_context(base_url=server.url, viewport=WIDTHS["desktop"])
    context.set_default_timeout(TIMEOUT_MS)
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    page = context.new_page()
    sign_in(page, "admin", ADMIN_PASSWORD)
    yield page
    context.close()


def test_an_unknown_member_is_shown_under_its_field_and_the_page_stays(admin_page, seeded):
    page = admin_page
    page.goto(f"/ui/groups/{seeded['group']}")
    url = page.url
    page.fill("form[data-testid=add-member-form] #username", "nobody-by-that-name")
    page.click("form[data-testid=add-member-form] button[type=submit]")
    errors = page.get_by_test_id("errors-username")
    errors.wait_for()
    assert "No user or service account 'nobody-by-that-name'" in errors.inner_text()
    assert page.url == url and page.input_value("#username") == "nobody-by-that-name"
    assert page.get_attribute("#username", "aria-invalid") == "true"
    page.screenshot(path=str(artifacts_dir() / "field-error-desktop.png"), full_page=True)


def test_reloading_after_creating_a_credential_creates_nothing_and_copy_works(admin_page, server):
    page = admin_page
    admin = api_token(server.url, "admin", ADMIN_PASSWORD)
    count = httpx.get(f"{server.url}/api/v1/credentials?limit=1", headers=admin).json()["total"]
    page.goto("/ui/credentials")
    page.fill("#label", "copied")
    page.get_by_test_id("create-credential").click()
    secret = page.get_by_test_id("new-secret-key").inner_text().strip()
    assert "shown=" in page.url  # the browser followed the redirect: a GET
    page.get_by_test_id("copy-secret-key").click()
    assert page.evaluate("navigator.clipboard.readText()") == secret
    page.reload()
    assert page.get_by_test_id("secret-once").count() == 0 and secret not in page.content()
    assert httpx.get(f"{server.url}/api/v1/credentials?limit=1", headers=admin).json()["total"] == count + 1


def test_the_policy_dialog_has_a_maximum_and_an_unlimited_box_per_cap(admin_page, server):
    """Backend.AI's dialog: unticking a cap's Unlimited box enables its input; a value over the maximum is refused
    under the field by the server; a value within it is saved and shown unticked."""
    page, name = admin_page, unique("dialog")
    page.goto("/ui/resource-policies")
    gpu, unlimited = page.locator("#gpu"), page.get_by_test_id("unlimited-gpu")
    assert unlimited.is_checked() and gpu.is_disabled()  # a new policy starts unlimited
    assert "Maximum 64" in page.get_by_test_id("cap-gpu").inner_text()
    page.fill("#name", name)
    unlimited.uncheck()
    assert gpu.is_enabled()
    gpu.fill("65")
    page.get_by_role("button", name="Create resource policy").click()
    errors = page.get_by_test_id("errors-gpu")
    errors.wait_for()
    assert "at most 64" in errors.inner_text() and page.input_value("#gpu") == "65"
    assert not page.get_by_test_id("unlimited-gpu").is_checked()
    problems = check_page(page, "/ui/resource-policies (refused)", "desktop", artifacts_dir(), name="policy-refused")
    page.fill("#gpu", "8")
    page.get_by_role("button", name="Create resource policy").click()
    page.wait_for_url("**/ui/resource-policies")
    page.goto(f"/ui/resource-policies/{name}")
    assert page.input_value("#gpu") == "8" and not page.get_by_test_id("unlimited-gpu").is_checked()
    assert page.get_by_test_id("unlimited-cpu").is_checked() and page.locator("#cpu").is_disabled()
    admin = api_token(server.url, "admin", ADMIN_PASSWORD)
    policy = httpx.get(f"{server.url}/api/v1/resource-policies/{name}", headers=admin).json()
    assert policy["gpu"] == 8 and policy["cpu"] == "unlimited"
    assert not problems, "\n".join(problems)
