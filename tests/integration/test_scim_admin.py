"""Provisioning clients and their SCIM tokens: the admin API, `allot admin scim` and who may use them."""

from __future__ import annotations

import json

import pytest
from inventory_helpers import API, make_user
from scim_helpers import scim_http
from typer.testing import CliRunner

from allotment.cli import client as cli_client
from allotment.cli.main import app as cli_app

pytestmark = pytest.mark.parametrize("backend", ["sqlite"])


def test_admin_api_issues_a_token_once_and_revokes_it(client, admin_headers):
    r = client.post(f"{API}/scim/clients", json={"name": "okta", "description": "Okta production"},
                    headers=admin_headers)
    assert r.status_code == 201, r.text
    assert client.post(f"{API}/scim/clients", json={"name": "okta"}, headers=admin_headers).status_code == 409
    r = client.post(f"{API}/scim/clients", json={"name": "two words"}, headers=admin_headers)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "name"

    issued = client.post(f"{API}/scim/clients/okta/tokens", json={"label": "tenant-1"}, headers=admin_headers)
    assert issued.status_code == 201, issued.text
    token = issued.json()["token"]
    assert issued.json()["scim_url"] == "http://testserver/scim/v2" and token.startswith(issued.json()["hint"])
    assert scim_http(client.app, token).get("Users").status_code == 200

    shown = client.get(f"{API}/scim/clients/okta", headers=admin_headers).json()
    assert token not in json.dumps(shown)
    assert [(t["label"], t["status"]) for t in shown["tokens"]] == [("tenant-1", "active")]
    assert shown["tokens"][0]["last_used_at"] is not None

    token_id = issued.json()["id"]
    assert client.delete(f"{API}/scim/clients/okta/tokens/{token_id}", headers=admin_headers).status_code == 204
    assert scim_http(client.app, token).get("Users").status_code == 401
    assert client.get(f"{API}/scim/clients", headers=admin_headers).json()["items"][0]["tokens"][0]["status"] == \
        "revoked"
    assert client.delete(f"{API}/scim/clients/okta/tokens/999", headers=admin_headers).status_code == 404
    events = client.get(f"{API}/audit?action=scim_token.*", headers=admin_headers).json()["items"]
    assert sorted(e["action"] for e in events) == ["scim_token.issue", "scim_token.revoke"]
    assert all(token not in json.dumps(e) for e in events)


def test_only_platform_admins_manage_provisioning_clients(client, admin_headers):
    alice = make_user(client, "alice")
    assert client.get(f"{API}/scim/clients", headers=alice).status_code == 403
    assert client.post(f"{API}/scim/clients", json={"name": "mine"}, headers=alice).status_code == 403


def test_the_cli_creates_a_client_issues_and_revokes_a_token(client, admin_headers, monkeypatch, tmp_path):
    def fake_http_client(base_url, headers, timeout):
        client.headers.update(headers)
        return client

    monkeypatch.setattr(cli_client.httpx, "Client", fake_http_client)
    env = {"ALLOT_URL": "http://testserver", "ALLOT_TOKEN": admin_headers["Authorization"].removeprefix("Bearer "),
           "ALLOT_CONFIG_DIR": str(tmp_path), "COLUMNS": "200"}
    runner = CliRunner()
    result = runner.invoke(cli_app, ["admin", "scim", "create", "entra", "--description", "Entra ID"], env=env)
    assert result.exit_code == 0 and "Created provisioning client entra" in result.output, result.output
    result = runner.invoke(cli_app, ["admin", "scim", "token-issue", "entra", "--json"], env=env)
    assert result.exit_code == 0, result.output
    issued = json.loads(result.output)
    assert scim_http(client.app, issued["token"]).get("Groups").status_code == 200
    result = runner.invoke(cli_app, ["admin", "scim", "list"], env=env)
    assert "entra" in result.output and "Entra ID" in result.output
    result = runner.invoke(cli_app, ["admin", "scim", "token-revoke", "entra", str(issued["id"])], env=env)
    assert result.exit_code == 0, result.output
    assert scim_http(client.app, issued["token"]).get("Groups").status_code == 401
    result = runner.invoke(cli_app, ["admin", "scim", "show", "entra"], env=env)
    assert "revoked" in result.output and issued["token"] not in result.output
    result = runner.invoke(cli_app, ["admin", "scim", "token-issue", "nobody"], env=env)
    assert result.exit_code == 1 and "no provisioning client nobody" in str(result.exception)
    client.headers.pop("Authorization", None)
