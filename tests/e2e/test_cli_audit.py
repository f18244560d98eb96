"""`allot admin audit` filters against a real server."""

from __future__ import annotations

import json

import pytest

from e2e.clitools import allot, ok

pytestmark = pytest.mark.e2e


def audit(cfg, *args) -> list[dict]:
    return json.loads(ok(allot("admin", "audit", "--json", *args, config_dir=cfg)).stdout)


def test_audit_filters(admin_config, new_user):
    name, _, cfg = new_user("audited")
    ok(allot("admin", "update-user", name, "--full-name", "Audited Person", config_dir=admin_config))
    secret = json.loads(ok(allot("credentials", "create", "--label", "mine", "--json", config_dir=cfg)).stdout)[
        "secret_key"]

    about = audit(admin_config, "--target", name)
    assert len(about) >= 2  # created, then updated
    assert all(e["target"] == name for e in about)
    update = next(e for e in about if "Audited Person" in json.dumps(e["changes"]))
    assert update["actor"] == "admin"
    assert update["source"]  # from where

    by_user = audit(admin_config, "--actor", name)
    assert by_user and all(e["actor"] == name for e in by_user)
    assert secret not in json.dumps(audit(admin_config, "--limit", "1000"))  # never a secret in the log

    action = update["action"]
    same_action = audit(admin_config, "--action", action, "--target", name)
    assert same_action and all(e["action"] == action for e in same_action)

    assert audit(admin_config, "--target", name, "--since", "2999-01-01T00:00:00Z") == []
    assert audit(admin_config, "--target", name, "--until", "2000-01-01T00:00:00Z") == []
    assert len(audit(admin_config, "--target", name, "--since", "2000-01-01T00:00:00Z")) == len(about)

    table = ok(allot("admin", "audit", "--target", name, config_dir=admin_config)).stdout
    assert action in table and "Audited Person" in table

    assert len(audit(admin_config, "--limit", "1")) == 1


def test_audit_is_for_platform_admins(new_user):
    _, _, cfg = new_user("nosy")
    r = allot("admin", "audit", config_dir=cfg)
    assert r.returncode == 1 and r.stderr.startswith("error: ")


def test_bad_time_filter_is_an_error(admin_config):
    r = allot("admin", "audit", "--since", "yesterday-ish", config_dir=admin_config)
    assert r.returncode == 1
    assert "since" in r.stderr
