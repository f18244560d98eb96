"""`allot vaults ...`, `allot config effective`, `allot targets ...` and `allot hide-list ...` (issue 17), run in
process against the test app."""

from __future__ import annotations

import json

import pytest
from cli_inprocess import cli_runner
from inventory_helpers import API, make_user


@pytest.fixture
def allot(client, monkeypatch, tmp_path):
    return cli_runner(client, monkeypatch, tmp_path / "cli")


def test_vaults_import_enable_effective_and_download(client, admin_headers, allot, tmp_path):
    alice = make_user(client, "alice", groups=("team-a",))
    admin, me = allot(admin_headers), allot(alice)
    team = tmp_path / "team.yaml"
    team.write_text("sdk:\n  bucket: team\n  region: eu\n")
    code, out = admin("vaults", "import", str(team), "--group", "team-a", "--enable")
    assert code == 0 and "vault team imported" in out, out
    conf = tmp_path / "clearml.conf"
    conf.write_text("sdk.region = us\n")
    code, out = me("vaults", "import", str(conf), "--name", "mine")
    assert code == 0, out
    code, out = me("config", "effective")
    assert code == 0 and "vaults merged in order: team" in out and "sdk.region" in out and '"eu"' in out
    assert me("vaults", "enable", "mine")[0] == 0
    code, out = me("config", "effective", "--json")
    keys = {k["key"]: (k["value"], k["source"]) for k in json.loads(out)["keys"]}
    assert keys == {"sdk.bucket": ("team", "team"), "sdk.region": ("us", "mine")}
    code, out = admin("config", "effective", "--user", "alice", "--json")
    assert code == 0 and json.loads(out)["user"] == "alice"
    code, out = me("vaults", "list")
    assert code == 0 and "group:team-a" in out and "user:alice" in out
    assert me("vaults", "download", "mine") == (0, "sdk.region = us\n")
    # Importing again replaces the content; invalid content is refused with the parser's line and column.
    conf.write_text("sdk {\n  region = [us\n}\n")
    code, out = me("vaults", "import", str(conf), "--name", "mine")
    assert code != 0 and "line 3, column 1" in out
    code, out = me("vaults", "create", "agent", "--format", "json", "--content", '{"agent": {"worker_id": "w"}}')
    assert code != 0 and "agent.worker_id" in out


def test_targets_and_hide_list(client, admin_headers, allot, tmp_path, monkeypatch):
    alice = make_user(client, "alice")
    admin, me = allot(admin_headers), allot(alice)
    secret = tmp_path / "token"
    secret.write_text("ghp_cli_secret\n")
    repo = tmp_path / "meta.git"
    import subprocess

    subprocess.run(["git", "init", "--bare", "-q", str(repo)], check=True)
    code, out = admin("targets", "create", "meta", "--kind", "git", "--repository-url", f"file://{repo}",
                      "--secret-from", str(secret))
    assert code == 0, out
    code, out = me("targets", "list")
    assert code == 0 and "meta" in out and "ghp_cli_secret" not in out
    assert admin("targets", "test", "meta") == (0, "storage target meta: connection works\n")
    code, out = me("targets", "create", "x", "--kind", "folder", "--path", "/srv")
    assert code != 0 and "platform admin" in out
    code, out = admin("targets", "show", "meta", "--json")
    assert json.loads(out)["secret_set"] is True and "ghp_cli_secret" not in out

    code, out = me("hide-list", "add", "WANDB_API_KEY", "HF_TOKEN")
    assert code == 0 and "WANDB_API_KEY, HF_TOKEN" in out
    code, out = me("hide-list", "remove", "HF_TOKEN")
    assert code == 0 and "own names: WANDB_API_KEY" in out
    code, out = me("hide-list", "add", "bad-name")
    assert code != 0 and "names.1" in out
    assert me("hide-list", "set-platform", "X")[0] != 0
    code, out = admin("hide-list", "set-platform", "AWS_SECRET_ACCESS_KEY", "CORP_TOKEN")
    assert code == 0 and "CORP_TOKEN" in out
    code, out = me("hide-list", "show", "--json")
    assert set(json.loads(out)["effective"]) == {"AWS_SECRET_ACCESS_KEY", "CORP_TOKEN", "WANDB_API_KEY",
                                                 "GCS_SERVICE_ACCOUNT_JSON", "GIT_TOKEN"}
    code, out = admin("hide-list", "reset-platform")
    assert code == 0 and "AZURE_STORAGE_KEY" in out
    assert client.get(f"{API}/hide-list", headers=alice).json()["own"] == ["WANDB_API_KEY"]
