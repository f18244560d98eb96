"""`allot admin` user commands against a real server: lifecycle, import with a per-row report, exports."""

from __future__ import annotations

import csv
import json

import pytest

from e2e.clitools import allot, login_config, ok, unique

pytestmark = pytest.mark.e2e

PASSWORD = "Us3r-password!"


def users_json(cfg, *args) -> list[dict]:
    return json.loads(ok(allot("admin", "users", "--json", *args, config_dir=cfg)).stdout)


def can_login(server, username, password, tmp_path) -> bool:
    return allot("login", server.url, "-u", username, "--password-stdin", input=password + "\n",
                 config_dir=tmp_path / unique("try")).returncode == 0


def test_user_lifecycle(server, admin_config, tmp_path):
    name = unique("ada")
    r = ok(allot("admin", "add-user", f"{name}@example.com", name, "--full-name", "Ada Lovelace", "--password-stdin",
                 "--need-password-change", input=PASSWORD + "\n", config_dir=admin_config))
    assert f"Added user {name} <{name}@example.com>" in r.stdout

    [user] = users_json(admin_config, "--search", name)
    assert (user["username"], user["full_name"], user["is_active"], user["need_password_change"]) == (
        name, "Ada Lovelace", True, True)
    table = ok(allot("admin", "users", "--search", name, config_dir=admin_config)).stdout
    assert name in table and "Ada Lovelace" in table and "needed" in table
    assert can_login(server, name, PASSWORD, tmp_path)

    # Rename, change the flag and the password in one command; the old password stops working.
    renamed = unique("ada-l")
    ok(allot("admin", "update-user", f"{name}@example.com", "--username", renamed, "--full-name", "Ada King",
             "--no-need-password-change", "--password-stdin", input="N3w-password!\n", config_dir=admin_config))
    shown = json.loads(ok(allot("admin", "show-user", renamed, "--json", config_dir=admin_config)).stdout)
    assert (shown["username"], shown["full_name"], shown["need_password_change"]) == (renamed, "Ada King", False)
    assert shown["email"] == f"{name}@example.com"
    assert "users" in shown["groups"]
    assert not can_login(server, renamed, PASSWORD, tmp_path)
    assert can_login(server, renamed, "N3w-password!", tmp_path)

    # Without a terminal and without --yes nothing is deactivated.
    r = allot("admin", "deactivate-user", renamed, config_dir=admin_config)
    assert r.returncode == 1
    assert "pass --yes" in r.stderr
    assert users_json(admin_config, "--search", renamed)[0]["is_active"] is True

    r = ok(allot("admin", "deactivate-user", renamed, "--yes", config_dir=admin_config))
    assert f"Deactivated {renamed}" in r.stdout
    assert not can_login(server, renamed, "N3w-password!", tmp_path)
    assert users_json(admin_config, "--search", renamed) == []  # the default list shows active users
    assert [u["username"] for u in users_json(admin_config, "--inactive", "--search", renamed)] == [renamed]
    assert [u["username"] for u in users_json(admin_config, "--all", "--search", renamed)] == [renamed]

    ok(allot("admin", "activate-user", renamed, config_dir=admin_config))
    assert can_login(server, renamed, "N3w-password!", tmp_path)


def test_session_ends_on_deactivation_and_credentials_stay_revoked(server, admin_config, new_user, tmp_path):
    name, password, cfg = new_user("carl")
    cred = json.loads(ok(allot("credentials", "create", "--label", "laptop", "--json", config_dir=cfg)).stdout)
    key_cfg = tmp_path / "key-cli"
    ok(allot("login", server.url, "--access-key", cred["access_key"], "--secret-stdin",
             input=cred["secret_key"] + "\n", config_dir=key_cfg))

    ok(allot("admin", "deactivate-user", name, "--yes", config_dir=admin_config))
    assert allot("whoami", config_dir=cfg).returncode == 1  # the login session ended
    assert allot("whoami", config_dir=key_cfg).returncode == 1  # the credential was revoked

    ok(allot("admin", "activate-user", name, config_dir=admin_config))
    assert allot("whoami", config_dir=key_cfg).returncode == 1  # reactivation does not bring it back
    login_config(server, tmp_path / "again", name, password)


def test_add_user_errors_name_the_field(admin_config):
    name = unique("dup")
    ok(allot("admin", "add-user", f"{name}@example.com", name, "--password-stdin", input=PASSWORD,
             config_dir=admin_config))
    r = allot("admin", "add-user", f"other-{name}@example.com", name.upper(), "--password-stdin", input=PASSWORD,
              config_dir=admin_config)
    assert r.returncode == 1
    assert r.stderr.startswith("error: username")

    r = allot("admin", "add-user", f"weak-{name}@example.com", f"weak-{name}", "--password-stdin", input="short\n",
              config_dir=admin_config)
    assert r.returncode == 1
    assert "password" in r.stderr and len(r.stderr.strip().splitlines()) == 1

    r = allot("admin", "add-user", f"nopass-{name}@example.com", f"nopass-{name}", config_dir=admin_config)
    assert r.returncode == 1
    assert "--password-stdin" in r.stderr


def test_a_user_cannot_administer(new_user):
    _, _, cfg = new_user("eve")
    r = allot("admin", "users", config_dir=cfg)
    assert r.returncode == 1
    assert r.stderr.startswith("error: ")


def write_csv(path, rows):
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["email", "username", "password", "full_name"])
        writer.writerows(rows)
    return path


def test_import_with_a_bad_row_imports_nothing_unless_asked(admin_config, tmp_path):
    a, b, bad = unique("imp-a"), unique("imp-b"), unique("imp-bad")
    path = write_csv(tmp_path / "people.csv", [
        [f"{a}@example.com", a, PASSWORD, "Anna A"],
        [f"{bad}@example.com", bad, "weak", "Bad Row"],
        [f"{b}@example.com", b, PASSWORD, "Bo B"],
    ])
    r = allot("admin", "import-users", str(path), config_dir=admin_config)
    assert r.returncode == 1
    assert "nothing imported" in r.stderr and "--continue-on-error" in r.stderr
    [bad_line] = [line for line in r.stdout.splitlines() if bad in line]
    assert "failed" in bad_line and "password" in bad_line
    assert not {u["username"] for u in users_json(admin_config, "--all", "--search", "imp-")} & {a, b}

    r = allot("admin", "import-users", str(path), "--continue-on-error", config_dir=admin_config)
    assert r.returncode == 1  # a row failed: say so, even though the others were imported
    assert "created 2, failed 1" in r.stdout
    names = {u["username"] for u in users_json(admin_config, "--all", "--search", "imp-")}
    assert {a, b} <= names and bad not in names


def test_import_report_as_json(admin_config, tmp_path):
    c = unique("imp-c")
    path = write_csv(tmp_path / "one.csv", [[f"{c}@example.com", c, PASSWORD, ""]])
    report = json.loads(ok(allot("admin", "import-users", str(path), "--json", config_dir=admin_config)).stdout)
    assert report["created"] == 1 and report["failed"] == 0
    assert report["rows"][0]["username"] == c and report["rows"][0]["status"] == "created"


def test_import_missing_file_is_a_usage_error(admin_config, tmp_path):
    r = allot("admin", "import-users", str(tmp_path / "nope.csv"), config_dir=admin_config)
    assert r.returncode == 2


def test_exports_write_csv_files_without_secrets(admin_config, new_user, tmp_path):
    name, _, cfg = new_user("exp")
    cred = json.loads(ok(allot("credentials", "create", "--label", "ci", "--json", config_dir=cfg)).stdout)

    users_csv = tmp_path / "users.csv"
    r = ok(allot("admin", "export", "users", "--output", str(users_csv), config_dir=admin_config))
    assert str(users_csv) in r.stdout
    rows = list(csv.DictReader(users_csv.open()))
    assert any(row.get("username") == name and row.get("email") == f"{name}@example.com" for row in rows)
    header = users_csv.read_text().splitlines()[0].split(",")
    assert not [column for column in header if column in ("password", "password_hash")]

    creds_csv = tmp_path / "credentials.csv"
    ok(allot("admin", "export", "credentials", "-o", str(creds_csv), config_dir=admin_config))
    text = creds_csv.read_text()
    assert cred["access_key"] in text
    assert cred["secret_key"] not in text

    audit_csv = tmp_path / "audit.csv"
    ok(allot("admin", "export", "audit", "--target", name, "-o", str(audit_csv), config_dir=admin_config))
    audit_rows = list(csv.DictReader(audit_csv.open()))
    assert audit_rows and all(row["target"] == name for row in audit_rows)
    assert cred["secret_key"] not in audit_csv.read_text()

    r = allot("admin", "export", "users", "--target", name, "-o", str(tmp_path / "x.csv"), config_dir=admin_config)
    assert r.returncode == 2  # audit filters only apply to the audit export
