"""Console pages of issue 17: configuration vaults (create, editor, toggle, import, download, effective
configuration), storage targets (register, edit keeping the secret, test connection, remove) and the hide-list."""

from __future__ import annotations

import re

import pytest
from inventory_helpers import API, PASSWORD, make_user

from conftest import ADMIN_PASSWORD

TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def sign_in(client, username, password):
    client.cookies.clear()
    token = TOKEN.search(client.get("/login").text).group(1)
    r = client.post("/login", data={"username": username, "password": password, "csrf_token": token, "next": "/ui/"},
                    follow_redirects=False)
    assert r.status_code == 303, r.text
    return TOKEN.search(client.get("/ui/vaults").text).group(1)


@pytest.fixture
def admin(client, admin_headers):
    return sign_in(client, "admin", ADMIN_PASSWORD)


def test_vault_workflow(client, admin_headers):
    make_user(client, "alice")
    csrf = sign_in(client, "alice", PASSWORD)
    r = client.post("/ui/vaults", data={"csrf_token": csrf, "name": "mine", "format": "hocon",
                                        "content": "sdk {\n  region = [eu\n}", "position": "0"})
    assert r.status_code == 422 and 'data-testid="errors-content"' in r.text and "line 3, column 1" in r.text
    r = client.post("/ui/vaults", data={"csrf_token": csrf, "name": "mine", "format": "hocon",
                                        "content": "agent.worker_id = w1", "position": "0"})
    assert r.status_code == 422 and "agent.worker_id is machine-specific" in r.text
    r = client.post("/ui/vaults", data={"csrf_token": csrf, "name": "mine", "format": "hocon",
                                        "content": "sdk.region = eu", "position": "0"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/ui/vaults/mine"
    page = client.get("/ui/vaults")
    assert 'data-testid="toggle-mine"' in page.text and 'aria-checked="false"' in page.text
    assert "No key is set." in page.text
    assert client.post("/ui/vaults/mine/toggle", data={"csrf_token": csrf}).status_code == 200
    page = client.get("/ui/vaults")
    assert 'aria-checked="true"' in page.text and "sdk.region" in page.text
    r = client.post("/ui/vaults/mine", data={"csrf_token": csrf, "format": "json", "content": '{"sdk": {"region": 1,}}',
                                             "position": "0", "enabled": "true"})
    assert r.status_code == 422 and "not valid JSON: line 1" in r.text
    r = client.post("/ui/vaults/mine", data={"csrf_token": csrf, "format": "json", "content": '{"sdk": {"region": "us"}}',
                                             "position": "0", "enabled": "true"}, follow_redirects=False)
    assert r.status_code == 303
    assert client.get("/api/v1/vaults/mine/download").text == '{"sdk": {"region": "us"}}'
    r = client.post("/ui/vaults/import", data={"csrf_token": csrf},
                    files={"file": ("team.yaml", b"sdk:\n  bucket: b\n", "application/yaml")}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/ui/vaults/team"
    assert client.get(f"{API}/vaults/team").json()["format"] == "yaml"
    r = client.post("/ui/vaults/import", data={"csrf_token": csrf}, files={"file": ("x.txt", b"a", "text/plain")})
    assert r.status_code == 422 and 'data-testid="errors-file"' in r.text
    assert client.post("/ui/vaults/team/delete", data={"csrf_token": csrf}).status_code == 200
    assert client.get("/ui/vaults/team").status_code == 404


def test_storage_target_workflow(client, admin, tmp_path):
    r = client.post("/ui/storage-targets", data={"csrf_token": admin, "name": "bucket", "kind": "s3",
                                                 "access_key": "AK"})
    assert r.status_code == 422 and 'data-testid="errors-bucket"' in r.text and 'data-testid="errors-secret_key"' in r.text
    r = client.post("/ui/storage-targets", data={"csrf_token": admin, "name": "shared", "kind": "folder",
                                                 "path": str(tmp_path), "bucket": "ignored-for-a-folder"},
                    follow_redirects=False)
    assert r.status_code == 303, r.text
    r = client.post("/ui/storage-targets/shared/test", data={"csrf_token": admin}, follow_redirects=False)
    assert r.status_code == 303
    assert "Worked at" in client.get("/ui/storage-targets/shared").text
    r = client.post("/ui/storage-targets", data={"csrf_token": admin, "name": "meta", "kind": "git",
                                                 "repository_url": "https://git.example/meta.git", "token": "tok-1"},
                    follow_redirects=False)
    assert r.status_code == 303
    page = client.get("/ui/storage-targets/meta")
    assert "tok-1" not in page.text and "set; leave blank to keep it" in page.text
    r = client.post("/ui/storage-targets/meta", data={"csrf_token": admin, "repository_url": "https://git.example/m2.git",
                                                      "secret": ""}, follow_redirects=False)
    assert r.status_code == 303
    assert client.get(f"{API}/storage/targets/meta").json()["secret_set"] is True
    r = client.post("/ui/storage-targets/meta", data={"csrf_token": admin, "repository_url": "nope"})
    assert r.status_code == 422 and 'data-testid="errors-repository_url"' in r.text
    listing = client.get("/ui/storage-targets").text
    assert 'data-testid="target-shared"' in listing and 'data-testid="target-meta"' in listing
    assert client.post("/ui/storage-targets/meta/delete", data={"csrf_token": admin}).status_code == 200
    make_user(client, "bob")
    csrf = sign_in(client, "bob", PASSWORD)
    page = client.get("/ui/storage-targets")
    assert 'data-testid="target-shared"' in page.text and "Register a target" not in page.text
    assert client.post("/ui/storage-targets/shared/delete", data={"csrf_token": csrf}).status_code == 403


def test_hide_list_workflow(client, admin):
    page = client.get("/ui/hide-list")
    assert "AWS_SECRET_ACCESS_KEY" in page.text
    r = client.post("/ui/hide-list/platform", data={"csrf_token": admin, "names": "HF_TOKEN\nbad-name"})
    assert r.status_code == 422 and 'data-testid="errors-platform"' in r.text and "names.1" in r.text
    assert client.post("/ui/hide-list/platform", data={"csrf_token": admin, "names": "HF_TOKEN\nCORP_KEY"},
                       follow_redirects=False).status_code == 303
    make_user(client, "carol")
    csrf = sign_in(client, "carol", PASSWORD)
    assert client.post("/ui/hide-list/mine", data={"csrf_token": csrf, "names": "WANDB_API_KEY"},
                       follow_redirects=False).status_code == 303
    page = client.get("/ui/hide-list").text
    assert "CORP_KEY" in page and "WANDB_API_KEY" in page and "Save the platform" not in page
    assert client.post("/ui/hide-list/platform", data={"csrf_token": csrf, "names": "X"}).status_code == 403
