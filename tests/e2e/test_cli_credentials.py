"""`allot credentials create|list|revoke` and `allot login --access-key` against a real server."""

from __future__ import annotations

import json

import pytest

from e2e.clitools import allot, ok, printed_credential

pytestmark = pytest.mark.e2e


def test_create_login_list_revoke(server, new_user, tmp_path):
    name, _, cfg = new_user("kim")
    out = ok(allot("credentials", "create", "--label", "laptop", "--expires", "30d", config_dir=cfg)).stdout
    key, secret = printed_credential(out)
    assert "shown only now" in out
    snippet = next(line.strip() for line in out.splitlines() if "--access-key" in line)
    assert snippet.startswith("allot login ") and snippet.endswith(f"--access-key {key} --secret-stdin")

    # The snippet works as printed, with the secret piped in.
    key_cfg = tmp_path / "key-cli"
    r = ok(allot("login", server.url, "--access-key", key, "--secret-stdin", input=secret + "\n", config_dir=key_cfg))
    assert f"as {name}" in r.stdout
    assert json.loads(ok(allot("whoami", "--json", config_dir=key_cfg)).stdout)["username"] == name

    [listed] = [c for c in json.loads(ok(allot("credentials", "list", "--json", config_dir=cfg)).stdout)
                if c["access_key"] == key]
    assert listed["label"] == "laptop" and listed["status"] == "active" and listed["owner"] == name
    assert listed["expires_at"] is not None
    assert listed["last_used_at"] is not None  # the whoami above used it
    table = ok(allot("credentials", "list", config_dir=cfg)).stdout
    assert key in table and "laptop" in table
    assert secret not in table

    r = ok(allot("credentials", "revoke", key, config_dir=cfg))
    assert r.stdout.strip() == f"Revoked {key}"
    # Revocation takes effect on the very next command.
    r = allot("whoami", config_dir=key_cfg)
    assert r.returncode == 1 and r.stderr.startswith("error: ")
    [listed] = [c for c in json.loads(ok(allot("credentials", "list", "--json", config_dir=cfg)).stdout)
                if c["access_key"] == key]
    assert listed["status"] == "revoked"


def test_wrong_secret_is_refused(server, new_user, tmp_path):
    _, _, cfg = new_user("wrong-secret")
    cred = json.loads(ok(allot("credentials", "create", "--json", config_dir=cfg)).stdout)
    r = allot("login", server.url, "--access-key", cred["access_key"], "--secret-stdin", input="not-the-secret\n",
              config_dir=tmp_path / "key-cli")
    assert r.returncode == 1
    assert not (tmp_path / "key-cli" / "config.json").exists()


def test_users_see_their_own_credentials_and_admins_anyones(admin_config, new_user):
    _, _, a_cfg = new_user("own-a")
    b, _, b_cfg = new_user("own-b")
    a_key = json.loads(ok(allot("credentials", "create", "--json", config_dir=a_cfg)).stdout)["access_key"]
    b_keys = {c["access_key"] for c in json.loads(ok(allot("credentials", "list", "--json", config_dir=b_cfg)).stdout)}
    assert a_key not in b_keys
    assert allot("credentials", "revoke", a_key, config_dir=b_cfg).returncode == 1

    # An admin creates one for another user, lists theirs and revokes it.
    made = json.loads(ok(allot("credentials", "create", "--user", b, "--label", "given", "--json",
                               config_dir=admin_config)).stdout)
    assert made["owner"] == b
    listed = json.loads(ok(allot("credentials", "list", "--user", b, "--json", config_dir=admin_config)).stdout)
    assert made["access_key"] in {c["access_key"] for c in listed}
    everyone = json.loads(ok(allot("credentials", "list", "--all", "--json", config_dir=admin_config)).stdout)
    assert {a_key, made["access_key"]} <= {c["access_key"] for c in everyone}
    ok(allot("credentials", "revoke", a_key, config_dir=admin_config))


def test_revoking_an_unknown_key_names_it(new_user):
    _, _, cfg = new_user("unknown-key")
    r = allot("credentials", "revoke", "AKNOSUCHKEY", config_dir=cfg)
    assert r.returncode == 1
    assert "AKNOSUCHKEY" in r.stderr or "not found" in r.stderr.lower()
