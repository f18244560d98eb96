"""The console's cross-cutting defects over HTTP (no browser): credentials post/redirect/get, relabelling, everyone's
keys for admins, service accounts' credentials, field messages that name their field once, paging past the end."""

from __future__ import annotations

import json
import re

from integration.inventory_helpers import hold_devices, quota, register_node
from integration.test_web_console import ADMIN_PASSWORD, csrf, make_user, sign_in

SHOWN = re.compile(r"/ui/credentials\?shown=([\w-]+)$")
SECRET = re.compile(r'data-testid="new-secret-key">([^<]+)<')
ACCESS = re.compile(r'data-testid="new-access-key">([^<]+)<')


def signed_in_admin(client):
    assert sign_in(client, "admin", ADMIN_PASSWORD).status_code == 303


def create_credential(client, label: str) -> tuple[str, str, str]:
    token = csrf(client, "/ui/credentials")
    r = client.post("/ui/credentials", data={"label": label, "csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303, r.text
    location = r.headers["location"]
    assert SHOWN.search(location), location
    page = client.get(location)
    assert page.status_code == 200
    return ACCESS.search(page.text).group(1).strip(), SECRET.search(page.text).group(1).strip(), location


def test_creating_a_credential_redirects_and_shows_the_secret_once(client, admin_headers):
    signed_in_admin(client)
    before = client.get("/api/v1/credentials?limit=1", headers=admin_headers).json()["total"]
    access_key, secret, location = create_credential(client, "laptop")
    assert client.get("/api/v1/auth/whoami", headers={"Authorization": f"Bearer {access_key}:{secret}"}).json()[
        "username"] == "admin"
    again = client.get(location)  # a reload of the page after the redirect: no secret, nothing created
    assert again.status_code == 200
    assert secret not in again.text and 'data-testid="secret-once"' not in again.text
    assert client.get("/api/v1/credentials?limit=1", headers=admin_headers).json()["total"] == before + 1


def test_the_secret_page_has_copy_buttons_and_another_user_cannot_take_it(client, admin_headers):
    signed_in_admin(client)
    token = csrf(client, "/ui/credentials")
    r = client.post("/ui/credentials", data={"label": "ci", "csrf_token": token}, follow_redirects=False)
    location = r.headers["location"]
    make_user(client, admin_headers, "mallory")
    client.cookies.clear()
    assert sign_in(client, "mallory", "Passw0rd!x").status_code == 303
    assert 'data-testid="secret-once"' not in client.get(location).text  # tied to who created it
    client.cookies.clear()
    signed_in_admin(client)
    token = csrf(client, "/ui/credentials")
    r = client.post("/ui/credentials", data={"label": "ci2", "csrf_token": token}, follow_redirects=False)
    page = client.get(r.headers["location"]).text
    assert 'data-copy-target="new-secret-key"' in page and 'data-copy-target="new-access-key"' in page


def test_a_credentials_label_is_edited_in_place_and_checked(client, admin_headers):
    signed_in_admin(client)
    access_key, _, _ = create_credential(client, "old")
    token = csrf(client, "/ui/credentials")
    r = client.post(f"/ui/credentials/{access_key}/label", data={"label": "new name", "csrf_token": token},
                    follow_redirects=False)
    assert r.status_code == 303
    assert client.get(f"/api/v1/credentials/{access_key}", headers=admin_headers).json()["label"] == "new name"
    r = client.post(f"/ui/credentials/{access_key}/label", data={"label": "x" * 65, "csrf_token": token})
    assert r.status_code == 422
    assert f'data-testid="errors-label-{access_key}"' in r.text and "must be at most 64 characters" in r.text
    assert client.get(f"/api/v1/credentials/{access_key}", headers=admin_headers).json()["label"] == "new name"


def test_admins_see_everyones_keys_and_others_only_their_own(client, admin_headers):
    make_user(client, admin_headers, "bob")
    assert sign_in(client, "bob", "Passw0rd!x").status_code == 303
    bobs_key, _, _ = create_credential(client, "bobs")
    mine = client.get("/ui/credentials?owner=all").text  # not an admin: the parameter changes nothing
    assert bobs_key in mine and 'data-testid="everyone-tab"' not in mine
    client.cookies.clear()
    signed_in_admin(client)
    assert bobs_key not in client.get("/ui/credentials").text
    everyone = client.get("/ui/credentials?owner=all").text
    assert bobs_key in everyone and f'data-testid="owner-{bobs_key}"' in everyone
    token = csrf(client, "/ui/credentials")
    r = client.post(f"/ui/credentials/{bobs_key}/revoke", data={"csrf_token": token, "back": "/ui/credentials?owner=all"},
                    follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/ui/credentials?owner=all"
    assert client.get(f"/api/v1/credentials/{bobs_key}", headers=admin_headers).json()["status"] == "revoked"


def test_service_account_credentials_are_created_and_revoked_in_the_console(client, admin_headers):
    signed_in_admin(client)
    token = csrf(client, "/ui/service-accounts")
    r = client.post("/ui/service-accounts", data={"name": "ci-bot", "csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/ui/service-accounts/ci-bot"
    r = client.post("/ui/service-accounts/ci-bot/credentials", data={"label": "pipeline", "csrf_token": token},
                    follow_redirects=False)
    assert r.status_code == 303 and "shown=" in r.headers["location"]
    page = client.get(r.headers["location"]).text
    access_key, secret = ACCESS.search(page).group(1).strip(), SECRET.search(page).group(1).strip()
    who = client.get("/api/v1/auth/whoami", headers={"Authorization": f"Bearer {access_key}:{secret}"})
    assert who.json()["username"] == "ci-bot"
    assert secret not in client.get(r.headers["location"]).text
    r = client.post(f"/ui/credentials/{access_key}/revoke",
                    data={"csrf_token": token, "back": "/ui/service-accounts/ci-bot"}, follow_redirects=False)
    assert r.headers["location"] == "/ui/service-accounts/ci-bot"
    assert client.get("/api/v1/auth/whoami",
                      headers={"Authorization": f"Bearer {access_key}:{secret}"}).status_code == 401


def test_a_field_message_names_its_field_once(client, admin_headers):
    make_user(client, admin_headers, "carol")
    signed_in_admin(client)
    token = csrf(client, "/ui/users/new")
    r = client.post("/ui/users", data={"email": "carol@example.com", "username": "carol2", "password": "Passw0rd!x",
                                       "password_confirm": "Passw0rd!x", "csrf_token": token})
    assert r.status_code in (409, 422), r.status_code
    errors = re.search(r'data-testid="errors-email">(.*?)</small>', r.text, re.DOTALL).group(1)
    assert "already registered" in errors
    assert not re.search(r"e-mail\s+e-mail", errors, re.IGNORECASE), errors


def test_paging_past_the_end_shows_the_last_page(client, admin_headers):
    signed_in_admin(client)
    for name in ("p1", "p2"):
        make_user(client, admin_headers, name)
    page = client.get("/ui/users?page=999&status=all")
    assert page.status_code == 200
    assert "Page 999" not in page.text
    assert 'data-username="admin"' in page.text or "p1" in page.text  # rows of the last page, not an empty list
    audit = client.get("/ui/audit?page=999")
    assert audit.status_code == 200 and "Page 999" not in audit.text and 'data-testid="audit-table"' in audit.text


def test_an_unknown_member_name_is_a_field_error_not_a_missing_page(client, admin_headers):
    signed_in_admin(client)
    r = client.post("/api/v1/groups", headers=admin_headers, json={"name": "team"})
    assert r.status_code == 201, r.text
    group_id = r.json()["id"]
    token = csrf(client, f"/ui/groups/{group_id}")
    htmx = {"HX-Request": "true", "X-CSRF-Token": token}
    r = client.post(f"/ui/groups/{group_id}/members", data={"username": "nobody-here"}, headers=htmx)
    assert r.status_code == 422
    assert r.headers["HX-Reswap"] == "none"
    event = json.loads(r.headers["HX-Trigger"])["allot:field-errors"]
    assert event["errors"] == {"username": ["no user or service account 'nobody-here'"]}
    r = client.post("/ui/clusters/local/members", data={"username": "nobody-here", "role": "user"}, headers=htmx)
    assert r.status_code == 422 and "username" in json.loads(r.headers["HX-Trigger"])["allot:field-errors"]["errors"]
    r = client.post("/ui/clusters/local/groups", data={"group": "no-such-group", "role": "user"}, headers=htmx)
    assert r.status_code == 422 and "group" in json.loads(r.headers["HX-Trigger"])["allot:field-errors"]["errors"]


def test_the_dashboard_shows_gpus_per_pool_the_longest_waits_and_unhealthy_nodes(client, admin_headers):
    register_node(client, admin_headers, "dash-ok", "A100", 4)
    r = client.post("/api/v1/clusters/local/nodes", headers=admin_headers, json={
        "name": "dash-sick", "cpu": "8", "memory": "64Gi", "health": "unhealthy",
        "devices": [{"index": 0, "model": "A100", "memory": "80Gi", "health": "unhealthy"}]})
    assert r.status_code == 200, r.text
    quota(client, admin_headers, "dash", gpu="0", limit="0")
    jobs = []
    for name in ("holding", "waiting"):
        r = client.post("/api/v1/jobs", headers=admin_headers,
                        json={"quota": "dash", "gpu": 1, "command": "sleep 60", "name": name})
        assert r.status_code == 201, r.text
        jobs.append(r.json()["id"])
    hold_devices(client, jobs[0], ["dash-ok:0"], pool="default")
    signed_in_admin(client)
    page = client.get("/ui/").text
    row = re.search(r'<tr data-pool="local/[^"]+">(.*?)</tr>', page, re.DOTALL).group(1)
    assert 'data-testid="allocated">1<' in row and 'data-testid="free">3<' in row  # 4 usable, 1 held
    waits = re.search(r'data-testid="longest-waits">(.*?)</section>', page, re.DOTALL).group(1)
    assert f"#{jobs[1]} waiting" in waits and f"#{jobs[0]} " not in waits
    sick = re.search(r'data-testid="unhealthy-nodes">(.*?)</section>', page, re.DOTALL).group(1)
    assert "dash-sick" in sick and "1 unhealthy GPU" in sick and "dash-ok" not in sick


def test_the_about_page_names_the_version_engines_and_database(client):
    from allotment import __version__

    signed_in_admin(client)
    page = client.get("/ui/about")
    assert page.status_code == 200
    assert f'data-testid="about-version">{__version__}<' in page.text
    assert re.search(r'data-testid="about-database">(SQLite|PostgreSQL) [\d.]+', page.text)
    for engine in ("local", "simulated", "slurm", "ray"):
        assert f'data-engine="{engine}"' in page.text
    assert "slurmrestd API v0.0.38" in page.text
    assert 'href="/ui/about"' in page.text  # in every page's sidebar


def test_the_audit_log_shows_a_difference_and_links_its_targets(client, admin_headers):
    signed_in_admin(client)
    access_key, _, _ = create_credential(client, "before-name")
    token = csrf(client, "/ui/credentials")
    client.post(f"/ui/credentials/{access_key}/label", data={"label": "after-name", "csrf_token": token})
    make_user(client, admin_headers, "dora")
    page = client.get("/ui/audit?action=credential.update").text
    diff = re.search(r'data-testid="audit-diff">(.*?)</table>', page, re.DOTALL).group(1)
    assert "<del>before-name</del>" in diff and "<ins>after-name</ins>" in diff
    assert '"label"' not in page  # no raw JSON
    page = client.get("/ui/audit?action=user.create&target=dora").text
    user_id = client.get("/api/v1/users/dora", headers=admin_headers).json()["id"]
    assert f'<a href="/ui/users/{user_id}" data-testid="audit-target">dora</a>' in page
