"""ClearML's profile: a user changes their own username (same rules as a new one: unique, no look-alike of another
name) and full name, through the API, the CLI and the console; audited; their sessions and access keys stay valid."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from allotment.cli import client as cli_client
from allotment.cli.main import app as cli_app
from conftest import login

API = "/api/v1"
PASSWORD = "Passw0rd!x"


def make_user(client, admin_headers, username: str) -> dict[str, str]:
    r = client.post(f"{API}/users", headers=admin_headers,
                    json={"email": f"{username}@example.com", "username": username, "password": PASSWORD})
    assert r.status_code == 201, r.text
    return login(client, username, PASSWORD)


def test_a_user_renames_themselves_and_stays_signed_in(client, admin_headers):
    alice = make_user(client, admin_headers, "alice")
    key = client.post(f"{API}/credentials", headers=alice, json={"label": "laptop"})
    assert key.status_code == 201, key.text
    key_header = {"Authorization": f"Bearer {key.json()['access_key']}:{key.json()['secret_key']}"}
    r = client.patch(f"{API}/users/alice", headers=alice, json={"username": "alice.w", "full_name": "Alice W"})
    assert r.status_code == 200, r.text
    assert (r.json()["username"], r.json()["full_name"]) == ("alice.w", "Alice W")
    assert client.get(f"{API}/auth/whoami", headers=alice).json()["username"] == "alice.w"  # the session
    assert client.get(f"{API}/auth/whoami", headers=key_header).json()["username"] == "alice.w"  # the access key
    assert client.post(f"{API}/auth/login", json={"username": "alice.w", "password": PASSWORD}).status_code == 200
    assert client.post(f"{API}/auth/login", json={"username": "alice", "password": PASSWORD}).status_code == 401
    events = client.get(f"{API}/audit", headers=admin_headers, params={"action": "user.update"}).json()["items"]
    renamed = [e for e in events if (e.get("changes") or {}).get("after", {}).get("username") == "alice.w"]
    assert renamed and renamed[0]["changes"]["before"]["username"] == "alice"
    assert renamed[0]["actor"] == "alice"  # who acted, as they were named when they did


@pytest.mark.parametrize(("name", "status", "says"), [
    ("admin", 409, "username admin is already taken"),
    ("ADMlN", 409, "could be taken for the existing admin"),
    ("bo b", 422, "must not contain spaces"),
    ("12345", 422, "must not be only digits"),
    ("bob@x", 422, "must not contain '@'"),
])
def test_a_new_username_follows_the_rules_of_a_new_user(client, admin_headers, name, status, says):
    bob = make_user(client, admin_headers, "bob")
    r = client.patch(f"{API}/users/bob", headers=bob, json={"username": name})
    assert r.status_code == status, r.text
    assert [e["field"] for e in r.json()["errors"]] == ["username"] and says in r.json()["detail"]
    assert client.get(f"{API}/auth/whoami", headers=bob).json()["username"] == "bob"


def test_a_user_may_change_only_their_own_profile(client, admin_headers):
    make_user(client, admin_headers, "carol")
    dave = make_user(client, admin_headers, "dave")
    assert client.patch(f"{API}/users/carol", headers=dave, json={"username": "carol2"}).status_code == 403
    r = client.patch(f"{API}/users/dave", headers=dave, json={"resource_policy": "default"})
    assert r.status_code == 403 and "username, full_name and password" in r.json()["detail"]


def test_the_cli_changes_your_own_profile(client, admin_headers, monkeypatch, tmp_path):
    erin = make_user(client, admin_headers, "erin")

    def fake_http_client(base_url, headers, timeout):
        client.headers.update(headers)
        return client

    monkeypatch.setattr(cli_client.httpx, "Client", fake_http_client)
    env = {"ALLOT_URL": "http://testserver", "ALLOT_TOKEN": erin["Authorization"].removeprefix("Bearer "),
           "ALLOT_CONFIG_DIR": str(tmp_path), "COLUMNS": "200"}
    result = CliRunner().invoke(cli_app, ["profile", "--username", "erin.k", "--full-name", "Erin K", "--json"],
                                env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"username": "erin.k", "full_name": "Erin K", "email": "erin@example.com"}
    result = CliRunner().invoke(cli_app, ["profile", "--username", "admin"], env=env)
    assert result.exit_code == 1 and "username admin is already taken" in str(result.exception)
    client.headers.pop("Authorization", None)


def _csrf(client, path: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text).group(1)


def test_the_console_changes_your_own_profile(client, admin_headers):
    make_user(client, admin_headers, "fay")
    form = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
    r = client.post("/login", data={"username": "fay", "password": PASSWORD, "csrf_token": token},
                    follow_redirects=False)
    assert r.status_code == 303, r.text[:300]
    page = client.get("/ui/account")
    assert 'data-testid="profile-form"' in page.text and 'value="fay"' in page.text
    token = _csrf(client, "/ui/account")
    r = client.post("/ui/account/profile", data={"csrf_token": token, "username": "admin", "full_name": ""})
    assert r.status_code == 409 and "Username admin is already taken" in r.text and 'value="admin"' in r.text
    r = client.post("/ui/account/profile", data={"csrf_token": token, "username": "fay.l", "full_name": "Fay L"},
                    follow_redirects=False)
    assert r.status_code == 303
    page = client.get("/ui/account")  # still signed in
    assert page.status_code == 200 and "Signed in as fay.l" in page.text and "Fay L" in page.text
