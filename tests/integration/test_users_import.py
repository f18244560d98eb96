"""Bulk import of users from CSV: all-or-nothing by default, a per-row report, duplicates caught."""

from __future__ import annotations

from user_helpers import API, PASSWORD, audit_events, errors_by_field, login, make_user

HEADER = "email,username,password,full_name,need_password_change\n"


def post_csv(client, headers, text: str | bytes, **params):
    return client.post(f"{API}/users/import", headers={**headers, "content-type": "text/csv"}, content=text,
                       params=params)


def usernames(client, headers) -> list[str]:
    return [u["username"] for u in client.get(f"{API}/users", headers=headers).json()["items"]]


def test_import_creates_every_row_and_reports_each(client, admin_headers, app):
    text = HEADER + (f"ann@example.com,ann,{PASSWORD},Ann Smith,yes\n"
                     f"ben@example.com,ben,{PASSWORD},,\n"
                     f"cat@example.com,cat,{PASSWORD},\"Cat, the Third\",false\n")
    r = post_csv(client, admin_headers, text)
    assert r.status_code == 200, r.text
    assert r.json() == {"created": 3, "failed": 0, "rows": [
        {"row": 2, "username": "ann", "status": "created", "errors": []},
        {"row": 3, "username": "ben", "status": "created", "errors": []},
        {"row": 4, "username": "cat", "status": "created", "errors": []}]}
    ann = client.get(f"{API}/users/ann", headers=admin_headers).json()
    assert (ann["full_name"], ann["need_password_change"]) == ("Ann Smith", True)
    cat = client.get(f"{API}/users/cat", headers=admin_headers).json()
    assert (cat["full_name"], cat["need_password_change"]) == ("Cat, the Third", False)
    login(client, "ben", PASSWORD)
    assert [e.target for e in audit_events(app, "user.create")] == ["ann", "ben", "cat"]
    assert audit_events(app, "user.import")[-1].changes == {"before": None, "after": {"created": 3, "failed": 0}}


def test_one_bad_row_imports_nothing(client, admin_headers, app):
    text = HEADER + (f"ann@example.com,ann,{PASSWORD},,\n"
                     "not-an-email,ben,weak,,\n"
                     f"cat@example.com,cat,{PASSWORD},,\n")
    r = post_csv(client, admin_headers, text)
    assert r.status_code == 207, r.text  # the per-row report, not a malformed request
    body = r.json()
    assert (body["created"], body["failed"]) == (0, 1)
    assert [(row["row"], row["status"]) for row in body["rows"]] == [(2, "skipped"), (3, "failed"), (4, "skipped")]
    bad = {e["field"]: e["message"] for e in body["rows"][1]["errors"]}
    assert set(bad) == {"email", "password"}
    # Every rule the password breaks is listed, as for a single user.
    assert sum(1 for e in body["rows"][1]["errors"] if e["field"] == "password") == 3
    assert usernames(client, admin_headers) == ["admin"]
    assert audit_events(app, "user.import") == []


def test_continue_on_error_imports_the_valid_rows(client, admin_headers):
    text = HEADER + (f"ann@example.com,ann,{PASSWORD},,\n"
                     f"ben@example.com,ben,weak,,\n"
                     f"cat@example.com,cat,{PASSWORD},,maybe\n"
                     f"dan@example.com,dan,{PASSWORD},,1\n")
    r = post_csv(client, admin_headers, text, continue_on_error="true")
    assert r.status_code == 207, r.text
    body = r.json()
    assert (body["created"], body["failed"]) == (2, 2)
    assert [row["status"] for row in body["rows"]] == ["created", "failed", "failed", "created"]
    assert body["rows"][2]["errors"] == [{"field": "need_password_change",
                                          "message": "must be true or false (or yes/no, 1/0)"}]
    assert usernames(client, admin_headers) == ["admin", "ann", "dan"]


def test_duplicates_within_the_file_and_with_existing_users_are_caught(client, admin_headers):
    make_user(client, admin_headers, "zoe")
    text = HEADER + (f"ann@example.com,ann,{PASSWORD},,\n"
                     f"ANN@example.com,ann2,{PASSWORD},,\n"
                     f"other@example.com,ANN,{PASSWORD},,\n"
                     f"zoe@EXAMPLE.com,zoe2,{PASSWORD},,\n"
                     f"zed@example.com,Zoe,{PASSWORD},,\n")
    r = post_csv(client, admin_headers, text, continue_on_error="true")
    rows = r.json()["rows"]
    assert [row["status"] for row in rows] == ["created", "failed", "failed", "failed", "failed"]
    assert rows[1]["errors"] == [{"field": "email", "message": "ANN@example.com duplicates row 2 of this file"}]
    assert rows[2]["errors"] == [{"field": "username", "message": "ANN duplicates row 2 of this file"}]
    assert rows[3]["errors"] == [{"field": "email", "message": "zoe@EXAMPLE.com is already registered"}]
    assert rows[4]["errors"] == [{"field": "username", "message": "Zoe is already taken"}]


def test_columns_may_come_in_any_order_and_optional_ones_may_be_absent(client, admin_headers):
    text = f"Username,Password,Email\r\nann,{PASSWORD},ann@example.com\r\n\r\n"
    r = post_csv(client, admin_headers, ("\ufeff" + text).encode())  # a spreadsheet's byte-order mark
    assert r.status_code == 200, r.text
    assert r.json()["created"] == 1
    assert client.get(f"{API}/users/ann", headers=admin_headers).json()["need_password_change"] is False


def test_a_row_with_too_many_values_fails(client, admin_headers):
    r = post_csv(client, admin_headers, f"email,username,password\nann@example.com,ann,{PASSWORD},extra\n")
    assert r.status_code == 207
    assert r.json()["rows"][0]["errors"] == [{"field": "row", "message": "has 4 values but the header has 3"}]


def test_file_level_problems_are_422_on_the_file(client, admin_headers):
    cases = {
        "": "file",
        "email,username\nann@example.com,ann\n": "header",
        f"email,username,password,role\nann@example.com,ann,{PASSWORD},admin\n": "header",
        "email,username,password,email\n": "header",
        "email,username,password\n": "file",
    }
    for text, field in cases.items():
        r = post_csv(client, admin_headers, text)
        assert r.status_code == 422, text
        assert list(errors_by_field(r)) == [field], (text, r.json())
    r = post_csv(client, admin_headers, b"email,username,password\n\xff\xfe,x,y\n")
    assert r.status_code == 422 and "UTF-8" in r.json()["detail"]
    assert usernames(client, admin_headers) == ["admin"]


def test_only_platform_admins_import(client, admin_headers):
    make_user(client, admin_headers, "alice")
    alice = login(client, "alice", PASSWORD)
    r = post_csv(client, alice, HEADER + f"ann@example.com,ann,{PASSWORD},,\n")
    assert r.status_code == 403
    assert post_csv(client, {}, HEADER).status_code == 401
