"""The console's quality bars in a real browser: every page passes axe-core (WCAG 2.1 A and AA) and fits a phone's width.

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
    return {"job_id": job_id, "quota": quota, "cluster": "local", "user": "admin", "group": group,
            "name": policies[0]["name"], "/ui/service-accounts/{name}": {"name": robot}}


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


@pytest.mark.parametrize("label", list(WIDTHS))
def test_every_page_is_accessible_and_fits_the_width(browser, server, seeded, label):
    shots = artifacts_dir()
    context = browser.new_context(base_url=server.url, viewport=WIDTHS[label])
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    problems: list[str] = []
    try:
        page.goto("/login")
        problems += check_page(page, "/login", label, shots)
        sign_in(page, "admin", ADMIN_PASSWORD)
        walked, unknown = [], []
        for template in console_get_paths():
            if template in FRAGMENTS or template in REDIRECTS or template.startswith(NOT_PAGES):
                continue
            values = {**seeded, **seeded.get(template, {})}
            if any(n not in values for n in re.findall(r"{(\w+)}", template)):
                unknown.append(template)  # reported below; add a value to `seeded` to walk it
                continue
            path = template.format(**values)
            response = page.goto(path)
            if response is None or response.status != 200:
                problems.append(f"{path} [{label}] answered {response and response.status}")
                continue
            problems += check_page(page, path, label, shots, name=template)  # one file per page, run after run
            walked.append(path)
        page.goto("/ui/nowhere")  # the error page is a page too
        problems += check_page(page, "/ui/nowhere", label, shots)
    finally:
        context.close()
    print(f"\nconsole screenshots ({label}): {shots}")
    if unknown:
        print(f"not walked (no value for their path parameters): {', '.join(unknown)}")
    assert len(walked) >= 20, walked
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
