"""`allot login|whoami|logout` against a real server, and the CLI's exit codes (0 ok, 1 error, 2 usage)."""

from __future__ import annotations

import json

import pytest

from e2e.clitools import ok

pytestmark = pytest.mark.e2e


def test_login_whoami_logout_with_password(server, allot, tmp_path):
    cfg = tmp_path / "cli"
    r = ok(allot("login", server.url, "--username", "admin", "--password-stdin", input=server.admin_password + "\n",
                 config_dir=cfg))
    assert f"logged in to {server.url} as admin" in r.stdout
    # The saved login is private to its owner: it holds a bearer token.
    assert (cfg / "config.json").stat().st_mode & 0o077 == 0

    me = json.loads(ok(allot("whoami", "--json", config_dir=cfg)).stdout)
    assert me["username"] == "admin"
    assert me["is_platform_admin"] is True
    # The server is shared with other e2e tests, and a cluster's creator becomes its admin: check `local` only.
    assert me["cluster_roles"]["local"] == "admin"
    assert "cluster_roles" in ok(allot("whoami", config_dir=cfg)).stdout

    assert "logged out" in ok(allot("logout", config_dir=cfg)).stdout
    r = allot("whoami", config_dir=cfg)
    assert r.returncode == 1
    assert r.stderr.strip() == "error: not logged in: run `allot login URL` first"


def test_logout_ends_the_session_on_the_server(server, allot, tmp_path):
    cfg = tmp_path / "cli"
    ok(allot("login", server.url, "-u", "admin", "--password-stdin", input=server.admin_password, config_dir=cfg))
    token = json.loads((cfg / "config.json").read_text())["token"]
    ok(allot("logout", config_dir=cfg))
    # The same token, used again (for example copied elsewhere), no longer authenticates.
    r = allot("whoami", config_dir=cfg, env={"ALLOT_URL": server.url, "ALLOT_TOKEN": token})
    assert r.returncode == 1
    assert r.stderr.startswith("error: ")


def test_wrong_password_is_one_line_and_exit_1(server, allot, tmp_path):
    r = allot("login", server.url, "-u", "admin", "--password-stdin", input="not-the-password\n",
              config_dir=tmp_path / "cli")
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "cli" / "config.json").exists()


def test_unreachable_server_is_exit_1_naming_the_address(allot, tmp_path):
    from e2e.clitools import free_port

    url = f"http://127.0.0.1:{free_port()}"
    r = allot("login", url, "-u", "admin", "--password-stdin", input="x\n", config_dir=tmp_path)
    assert r.returncode == 1
    assert r.stderr.startswith(f"error: cannot reach {url}")


@pytest.mark.parametrize(
    "args",
    [
        ["no-such-command"],
        ["login"],  # missing URL
        ["whoami", "--no-such-option"],
        ["login", "http://127.0.0.1:9"],  # neither --username nor --access-key
        ["admin", "export", "passwords", "--output", "x.csv"],  # not an export kind
        ["admin", "export", "users"],  # --output is required
        ["admin", "update-user", "bob"],  # nothing to change
    ],
    ids=lambda a: " ".join(a),
)
def test_usage_errors_exit_2(allot, tmp_path, args):
    r = allot(*args, config_dir=tmp_path)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr


def test_help_exits_0(allot, tmp_path):
    for args in (["--help"], ["admin", "--help"], ["credentials", "--help"], ["admin", "groups", "--help"]):
        assert "Usage" in ok(allot(*args, config_dir=tmp_path)).stdout
