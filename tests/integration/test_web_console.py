"""The console over HTTP (no browser): sign-in rules, CSRF, deny by default, HTML errors, missing npm assets."""

from __future__ import annotations

import logging
import re

import pytest
from fastapi.testclient import TestClient

from allotment.api.app import create_app

ADMIN_PASSWORD = "Adm1n-password!"  # the bootstrap admin of tests/conftest.py's settings
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf(client: TestClient, path: str) -> str:
    r = client.get(path)
    assert r.status_code == 200, r.text
    return TOKEN.search(r.text).group(1)


def sign_in(client: TestClient, username: str, password: str, next_path: str = "/ui/"):
    token = csrf(client, "/login")
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token,
                                       "next": next_path}, follow_redirects=False)


def make_user(client: TestClient, admin_headers, username: str, password: str = "Passw0rd!x") -> None:
    r = client.post("/api/v1/users", headers=admin_headers,
                    json={"email": f"{username}@example.com", "username": username, "password": password})
    assert r.status_code == 201, r.text


def test_anonymous_is_sent_to_sign_in_and_comes_back(client):
    r = client.get("/ui/users?status=inactive", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/login?next=/ui/users%3Fstatus%3Dinactive"
    r = sign_in(client, "admin", ADMIN_PASSWORD, next_path="/ui/users?status=inactive")
    assert r.status_code == 303 and r.headers["location"] == "/ui/users?status=inactive"
    assert "httponly" in r.headers["set-cookie"].lower() and "samesite=lax" in r.headers["set-cookie"].lower()
    assert client.get("/ui/").status_code == 200


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/\\evil.example"])
def test_sign_in_never_redirects_off_site(client, target):
    r = sign_in(client, "admin", ADMIN_PASSWORD, next_path=target)
    assert r.headers["location"] == "/ui/"


def test_sign_in_needs_the_forms_csrf_token(client):
    client.get("/login")
    r = client.post("/login", data={"username": "admin", "password": ADMIN_PASSWORD, "csrf_token": "forged"})
    assert r.status_code == 403
    assert "text/html" in r.headers["content-type"]
    assert "allot_session" not in r.headers.get("set-cookie", "")


def test_wrong_password_then_lockout_with_the_services_messages(client, settings):
    for _ in range(settings.login_max_failures - 1):
        r = sign_in(client, "admin", "Wrong-passw0rd")
        assert r.status_code == 401 and "wrong username or password" in r.text
    r = sign_in(client, "admin", "Wrong-passw0rd")
    assert r.status_code == 401 and "wrong username or password" in r.text  # a lock is not announced
    r = sign_in(client, "admin", ADMIN_PASSWORD)  # still locked: the failure count was committed
    assert r.status_code == 401 and "a platform admin can unlock it" in r.text


def test_service_accounts_cannot_sign_in(client, admin_headers):
    r = client.post("/api/v1/service-accounts", headers=admin_headers, json={"name": "ci-bot"})
    if r.status_code == 404:
        pytest.skip("service accounts are not in this build yet")
    assert r.status_code == 201, r.text
    r = sign_in(client, "ci-bot", "anything-1!")
    assert r.status_code == 401 and "allot_session" not in r.headers.get("set-cookie", "")


def test_console_posts_need_the_sessions_csrf_token(client, admin_headers):
    make_user(client, admin_headers, "eve")
    assert sign_in(client, "admin", ADMIN_PASSWORD).status_code == 303
    eve = client.get("/api/v1/users/eve", headers=admin_headers).json()
    r = client.post(f"/ui/users/{eve['id']}/deactivate", data={})
    assert r.status_code == 403 and "form has expired" in r.text
    assert client.get("/api/v1/users/eve", headers=admin_headers).json()["is_active"] is True
    token = csrf(client, "/ui/users")
    r = client.post(f"/ui/users/{eve['id']}/deactivate", headers={"X-CSRF-Token": token}, follow_redirects=False)
    assert r.status_code == 303
    assert client.get("/api/v1/users/eve", headers=admin_headers).json()["is_active"] is False


def test_non_admin_gets_403_pages_and_no_admin_links(client, admin_headers):
    make_user(client, admin_headers, "bob")
    assert sign_in(client, "bob", "Passw0rd!x").status_code == 303
    home = client.get("/ui/")
    assert home.status_code == 200 and 'href="/ui/users"' not in home.text
    for path in ["/ui/users", "/ui/users/new", "/ui/groups", "/ui/audit"]:
        r = client.get(path)
        assert r.status_code == 403, path
        assert "text/html" in r.headers["content-type"] and "Access denied" in r.text
    token = csrf(client, "/ui/credentials")
    r = client.post("/ui/users", data={"csrf_token": token, "email": "x@example.com", "username": "x",
                                       "password": "Passw0rd!x", "password_confirm": "Passw0rd!x"})
    assert r.status_code == 403
    assert client.get("/api/v1/users/x", headers=admin_headers).status_code == 404


def test_create_user_shows_every_field_error_and_keeps_input(client):
    sign_in(client, "admin", ADMIN_PASSWORD)
    token = csrf(client, "/ui/users/new")
    r = client.post("/ui/users", data={"csrf_token": token, "email": "bad", "username": "carol",
                                       "password": "abc", "password_confirm": "abc"})
    assert r.status_code == 422
    for message in ["must be at least 8 characters long", "must contain at least one digit",
                    "must contain at least one special character", "is not a valid e-mail address"]:
        assert message in r.text
    assert 'value="carol"' in r.text and 'value="abc"' not in r.text  # passwords are never echoed back
    r = client.post("/ui/users", data={"csrf_token": token, "email": "admin@example.com", "username": "carol",
                                       "password": "Passw0rd!x", "password_confirm": "Passw0rd!x"})
    assert r.status_code == 409 and "already registered" in r.text
    r = client.post("/ui/users", data={"csrf_token": token, "email": "c@example.com", "username": "carol",
                                       "password": "Passw0rd!x", "password_confirm": "Passw0rd!y"})
    assert r.status_code == 422 and "does not match the password" in r.text


def test_logout_ends_the_session_for_the_api_too(client):
    sign_in(client, "admin", ADMIN_PASSWORD)
    cookie = client.cookies.get("allot_session")
    token = csrf(client, "/ui/")
    r = client.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    client.cookies.clear()
    assert client.get("/api/v1/auth/whoami", headers={"Authorization": f"Bearer {cookie}"}).status_code == 401


def test_errors_are_pages_on_the_console_and_problems_on_the_api(client):
    sign_in(client, "admin", ADMIN_PASSWORD)
    r = client.get("/ui/no-such-page")
    assert r.status_code == 404 and "text/html" in r.headers["content-type"]
    assert "Page not found" in r.text
    r = client.get("/ui/users/99999")
    assert r.status_code == 404 and "text/html" in r.headers["content-type"]
    r = client.get("/api/v1/no-such-thing")
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"


def test_an_unexpected_failure_shows_a_friendly_page_without_a_trace(settings, monkeypatch):
    from allotment.web import pages_clusters

    def broken(*_args, **_kwargs):
        raise RuntimeError("database exploded at secret location")

    monkeypatch.setattr(pages_clusters, "clusters_for", broken)
    app = create_app(settings, start_background=False)
    with TestClient(app, raise_server_exceptions=False) as c:
        sign_in(c, "admin", ADMIN_PASSWORD)
        r = c.get("/ui/clusters")
    assert r.status_code == 500 and "Something went wrong" in r.text
    assert "exploded" not in r.text and "Traceback" not in r.text


def test_console_starts_without_npm_assets_and_says_so(settings, tmp_path, caplog):
    settings = settings.model_copy(update={"vendor_dir": tmp_path / "no-node-modules"})
    with caplog.at_level(logging.WARNING, logger="allotment.web"):
        app = create_app(settings, start_background=False)
    assert "console assets missing" in caplog.text and "npm ci" in caplog.text
    with TestClient(app) as c:
        r = c.get("/login")
        assert r.status_code == 200 and "/static/vendor/" not in r.text
        assert c.get("/static/console/console.css").status_code == 200


def test_vendor_assets_are_served_from_node_modules(client):
    r = client.get("/login")
    assert '/static/vendor/htmx.org/dist/htmx.min.js' in r.text
    assert client.get("/static/vendor/htmx.org/dist/htmx.min.js").status_code == 200
    assert client.get("/static/vendor/@picocss/pico/css/pico.min.css").status_code == 200


def test_change_own_password_needs_the_current_one(client, admin_headers):
    make_user(client, admin_headers, "dave")
    sign_in(client, "dave", "Passw0rd!x")
    token = csrf(client, "/ui/account")
    r = client.post("/ui/account/password", data={"csrf_token": token, "current_password": "nope-Passw0rd!",
                                                  "new_password": "N3w-password!", "new_password_confirm":
                                                  "N3w-password!"})
    assert r.status_code == 403 and "current_password" in r.text
    r = client.post("/ui/account/password", data={"csrf_token": token, "current_password": "Passw0rd!x",
                                                  "new_password": "short", "new_password_confirm": "short"})
    assert r.status_code == 422 and "must be at least 8 characters long" in r.text
    r = client.post("/ui/account/password", data={"csrf_token": token, "current_password": "Passw0rd!x",
                                                  "new_password": "N3w-password!", "new_password_confirm":
                                                  "N3w-password!"}, follow_redirects=False)
    assert r.status_code == 303
    assert client.post("/api/v1/auth/login", json={"username": "dave", "password": "N3w-password!"}).status_code == 200


def test_admin_edits_a_user_but_never_the_email(client, admin_headers):
    make_user(client, admin_headers, "frank")
    frank = client.get("/api/v1/users/frank", headers=admin_headers).json()
    sign_in(client, "admin", ADMIN_PASSWORD)
    page = client.get(f"/ui/users/{frank['id']}/edit")
    assert page.status_code == 200 and 'name="email"' not in page.text
    token = TOKEN.search(page.text).group(1)
    r = client.post(f"/ui/users/{frank['id']}/edit", data={"csrf_token": token, "username": "frank",
                                                            "full_name": "x" * 65})
    assert r.status_code == 422 and "must be at most 64 characters long" in r.text
    r = client.post(f"/ui/users/{frank['id']}/edit", data={"csrf_token": token, "username": "franklin",
                                                            "full_name": "Frank Lin", "need_password_change": "true"},
                    follow_redirects=False)
    assert r.status_code == 303
    after = client.get("/api/v1/users/franklin", headers=admin_headers).json()
    assert after["full_name"] == "Frank Lin" and after["need_password_change"] is True
    assert after["email"] == "frank@example.com"


def test_user_list_filters_and_pages(client, admin_headers):
    for i in range(27):
        make_user(client, admin_headers, f"u{i:02d}")
    sign_in(client, "admin", ADMIN_PASSWORD)
    first = client.get("/ui/users?search=u&sort=username")
    assert "1–25 of 27" in first.text and "u00@example.com" in first.text and "u26@" not in first.text
    second = client.get("/ui/users?search=u&sort=username&page=2")
    assert "26–27 of 27" in second.text and "u26@example.com" in second.text
    fragment = client.get("/ui/users?search=u07", headers={"HX-Request": "true", "HX-Target": "user-table"})
    assert "<html" not in fragment.text and "u07@example.com" in fragment.text and "u08@" not in fragment.text
    assert "No inactive users" in client.get("/ui/users?status=inactive").text


def test_service_accounts_are_created_and_deleted_from_the_console(client, admin_headers):
    sign_in(client, "admin", ADMIN_PASSWORD)
    token = csrf(client, "/ui/service-accounts")
    r = client.post("/ui/service-accounts", data={"csrf_token": token, "name": "has space"})
    assert r.status_code == 422 and "must not contain spaces" in r.text
    r = client.post("/ui/service-accounts", data={"csrf_token": token, "name": "ci-bot", "description": "CI"},
                    follow_redirects=False)
    assert r.status_code == 303
    assert "ci-bot" in client.get("/ui/service-accounts").text
    r = client.post("/ui/service-accounts/ci-bot/delete", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303
    names = [a["name"] for a in client.get("/api/v1/service-accounts", headers=admin_headers).json()["items"]]
    assert "ci-bot" not in names


def test_console_pages_cannot_be_framed(client):
    r = client.get("/login")
    assert r.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]


def test_htmx_errors_land_in_the_notice_area(client):
    sign_in(client, "admin", ADMIN_PASSWORD)
    admin = client.get("/ui/users?search=admin")
    token = TOKEN.search(admin.text).group(1)
    me = re.search(r'id="user-row-(\d+)" data-username="admin"', admin.text).group(1)
    r = client.post(f"/ui/users/{me}/deactivate", headers={"X-CSRF-Token": token, "HX-Request": "true",
                                                           "HX-Target": f"user-row-{me}"})
    assert r.status_code == 409  # the last platform admin stays
    assert r.headers["hx-retarget"] == "#notice-area" and "<html" not in r.text
    assert "admin" in r.text


def test_a_password_change_request_leads_to_the_account_page(client, admin_headers):
    r = client.post("/api/v1/users", headers=admin_headers, json={
        "email": "gina@example.com", "username": "gina", "password": "Passw0rd!x", "need_password_change": True})
    assert r.status_code == 201
    r = sign_in(client, "gina", "Passw0rd!x")
    assert r.headers["location"] == "/ui/account"
    assert "asks you to choose a new password" in client.get("/ui/account").text


def test_cluster_managers_manage_members_and_users_cannot(client, admin_headers):
    make_user(client, admin_headers, "mona")
    make_user(client, admin_headers, "ivan")
    assert client.put("/api/v1/clusters/local/users/mona", headers=admin_headers,
                      json={"role": "manager"}).status_code == 200
    sign_in(client, "ivan", "Passw0rd!x")
    assert client.get("/ui/clusters/local/members").status_code == 403  # no role on the cluster at all

    client.cookies.clear()
    sign_in(client, "mona", "Passw0rd!x")
    page = client.get("/ui/clusters/local/members")
    assert page.status_code == 200 and 'data-member="mona"' in page.text
    token = TOKEN.search(page.text).group(1)
    r = client.post("/ui/clusters/local/members", data={"csrf_token": token, "username": "ivan",
                                                        "role": "data-scientist"}, follow_redirects=False)
    assert r.status_code == 303  # DKube's alias for the user role
    assert "ivan added as user on local" in client.get("/ui/clusters/local/members").text
    r = client.post("/ui/clusters/local/members", data={"csrf_token": token, "username": "ivan", "role": "admin"})
    assert r.status_code == 403  # only cluster admins grant admin
    r = client.post("/ui/clusters/local/members/ivan/remove", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303
    roles = {m["username"]: m["role"] for m in
             client.get("/api/v1/clusters/local/users", headers=admin_headers).json()["items"]}
    assert "ivan" not in roles and roles["mona"] == "manager"


def _inventory(client, admin_headers) -> None:
    r = client.post("/api/v1/clusters/local/nodes", headers=admin_headers, json={
        "name": "gpu-01", "cpu": 32, "memory": "256Gi",
        "devices": [{"index": 0, "model": "A100", "memory": "80Gi", "utilisation": 42.0},
                    {"index": 1, "model": "A100", "memory": "80Gi", "health": "unhealthy"}]})
    assert r.status_code in (200, 201), r.text
    r = client.post("/api/v1/clusters/local/quotas", headers=admin_headers, json={
        "name": "research", "description": "ML research",
        "resources": [{"resource": "gpu", "guarantee": 1, "limit": 2}]})
    assert r.status_code == 201, r.text
    r = client.post("/api/v1/clusters/local/quotas", headers=admin_headers, json={"name": "vision", "parent": "research"})
    assert r.status_code == 201, r.text


def test_cluster_quota_and_job_pages(client, admin_headers, app):
    _inventory(client, admin_headers)
    r = client.post("/api/v1/jobs", headers=admin_headers, json={"quota": "research", "gpu": 1, "command": "sleep 1",
                                                                 "name": "train-resnet"})
    assert r.status_code == 201, r.text
    job_id = r.json()["id"]
    sign_in(client, "admin", ADMIN_PASSWORD)

    cluster = client.get("/ui/clusters/local")
    assert cluster.status_code == 200
    assert "gpu-01" in cluster.text and "A100" in cluster.text and "1 GPU unhealthy" in cluster.text
    assert "21%" in cluster.text  # the node's mean; each device's own on the node's page
    node = client.get("/ui/clusters/local/nodes/gpu-01").text
    assert "42%" in node and "unhealthy" in node
    quotas = client.get("/ui/quotas")
    assert quotas.status_code == 200 and "research" in quotas.text and "vision" in quotas.text
    jobs = client.get("/ui/jobs")
    assert jobs.status_code == 200 and "train-resnet" in jobs.text
    assert client.get("/ui/jobs?state=bogus").status_code == 422
    dashboard = client.get("/ui/")
    assert 'data-testid="tile-devices">2<' in dashboard.text and 'data-testid="tile-quotas">2<' in dashboard.text

    page = client.get(f"/ui/jobs/{job_id}")
    assert page.status_code == 200 and "train-resnet" in page.text
    token = TOKEN.search(page.text).group(1)
    r = client.post(f"/ui/jobs/{job_id}/cancel", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303
    state = client.get(f"/api/v1/jobs/{job_id}", headers=admin_headers).json()
    assert state["state"] == "cancelled" or state["cancel_requested_at"] is not None
    events = client.get("/api/v1/audit?action=job.cancel", headers=admin_headers).json()
    assert events["total"] == 1 and events["items"][0]["actor"] == "admin"


def test_cluster_detail_needs_a_role_on_that_cluster(client, admin_headers):
    make_user(client, admin_headers, "hank")
    sign_in(client, "hank", "Passw0rd!x")
    assert client.get("/ui/clusters/local").status_code == 403
    assert "You hold no role on any cluster" in client.get("/ui/clusters").text
    r = client.put("/api/v1/clusters/local/users/hank", headers=admin_headers, json={"role": "user"})
    assert r.status_code == 200, r.text
    assert client.get("/ui/clusters/local").status_code == 200
