"""GET /exports/users.csv: every user with groups, for platform admins, safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import io

from user_helpers import API, PASSWORD, login, make_user


def test_users_export_lists_every_user_with_groups(client, admin_headers):
    make_user(client, admin_headers, "alice", full_name="Alice Liddell", need_password_change=True)
    make_user(client, admin_headers, "bob", full_name="=HYPERLINK(\"http://evil\")")
    client.post(f"{API}/groups", headers=admin_headers, json={"name": "vision"}).raise_for_status()
    client.put(f"{API}/groups/vision/members/alice", headers=admin_headers).raise_for_status()
    client.post(f"{API}/users/bob/deactivate", headers=admin_headers).raise_for_status()
    r = client.get(f"{API}/exports/users.csv", headers=admin_headers)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    assert 'filename="users.csv"' in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [row["username"] for row in rows] == ["admin", "alice", "bob"]
    alice = rows[1]
    assert (alice["email"], alice["full_name"], alice["is_active"], alice["need_password_change"],
            alice["groups"]) == ("alice@example.com", "Alice Liddell", "true", "true", "users;vision")
    assert rows[0]["groups"] == "admins;users"
    assert rows[2]["is_active"] == "false"
    # A self-chosen full name cannot become a live spreadsheet formula.
    assert rows[2]["full_name"] == "'=HYPERLINK(\"http://evil\")"
    assert "password" not in r.text.split("\n", 1)[0].replace("need_password_change", "")
    assert PASSWORD not in r.text


def test_users_export_is_for_platform_admins(client, admin_headers):
    make_user(client, admin_headers, "alice")
    alice = login(client, "alice", PASSWORD)
    assert client.get(f"{API}/exports/users.csv", headers=alice).status_code == 403
    assert client.get(f"{API}/exports/users.csv").status_code == 401
