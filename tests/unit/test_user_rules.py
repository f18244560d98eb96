"""Pure rules of the users domain: field checks, CSV parsing for the bulk import, CSV cell defusing."""

from __future__ import annotations

import pytest

from allotment.errors import ValidationFailed
from allotment.identity.groups import name_problems
from allotment.identity.routes_exports import safe_cell
from allotment.identity.service import check_email, check_full_name, check_username
from allotment.identity.user_import import Row, check_row, parse_csv, parse_flag

PW = "Passw0rd!"


@pytest.mark.parametrize(
    ("username", "expected"),
    [
        ("alice", []),
        ("a" * 64, []),
        ("a" * 65, ["must be at most 64 characters long"]),
        ("", ["must not be empty"]),
        ("al ice", ["must not contain spaces or ':'"]),
        ("al:ice", ["must not contain spaces or ':'"]),
        ("al@ice", ["must not contain '@' (it would be mistaken for an e-mail address)"]),
        ("42", ["must not be only digits (it would be mistaken for a user id)"]),
        ("a b@" + "c" * 61, ["must be at most 64 characters long", "must not contain spaces or ':'",
                             "must not contain '@' (it would be mistaken for an e-mail address)"]),
    ],
)
def test_username_rules(username, expected):
    assert check_username(username) == expected


@pytest.mark.parametrize(
    ("email", "count", "first"),
    [
        ("a@example.com", 0, None),
        ("a" * 60 + "@" + ("b" * 60 + ".") * 3 + "exampl.com", 0, None),
        ("a" * 60 + "@" + ("b" * 60 + ".") * 3 + "example.com", 2, "must be at most 254 characters long"),
        ("no-at-sign", 1, "is not a valid e-mail address"),
        ("x" * 255, 2, "must be at most 254 characters long"),
    ],
)
def test_email_rules(email, count, first):
    problems = check_email(email)
    assert len(problems) == count
    if first:
        assert problems[0].startswith(first)


@pytest.mark.parametrize(("full_name", "ok"), [(None, True), ("", True), ("x" * 64, True), ("x" * 65, False)])
def test_full_name_rule(full_name, ok):
    assert (check_full_name(full_name) == []) is ok


@pytest.mark.parametrize(
    ("name", "expected"),
    [("vision", []), ("team-1.a_b", []), ("", ["must not be empty"]),
     ("a b", ["must start with a letter or digit and contain only letters, digits, '.', '_' and '-'"]),
     ("7", ["must not be only digits (it would be mistaken for a group id)"]),
     ("x" * 65, ["must be at most 64 characters long"])],
)
def test_group_name_rules(name, expected):
    assert name_problems(name) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("yes", True), ("TRUE", True), ("1", True), (" on ", True), ("no", False), ("", False), ("0", False),
     ("maybe", None)],
)
def test_parse_flag(text, expected):
    assert parse_flag(text) is expected


def test_parse_csv_numbers_rows_like_a_spreadsheet_and_skips_blank_lines():
    rows = parse_csv(f"EMAIL, Username ,password\n\na@example.com,a,{PW}\n,,\nb@example.com,b,{PW}\n")
    assert [(r.row, r.values["username"]) for r in rows] == [(3, "a"), (5, "b")]


def test_parse_csv_pads_short_rows_and_flags_long_ones():
    rows = parse_csv("email,username,password\na@example.com\nb@example.com,b,c,d\n")
    assert rows[0].values == {"email": "a@example.com", "username": "", "password": ""}
    assert [e.message for e in rows[1].errors] == ["has 4 values but the header has 3"]


@pytest.mark.parametrize(
    ("text", "message"),
    [("", "is empty"), ("email,username\n", "lacks the column(s) password"),
     ("email,username,password,x\n", "has unknown column(s) x"),
     ("email,username,password,email\n", "names the column(s) email more than once"),
     ("email,username,password\n", "has a header but no rows")],
)
def test_parse_csv_rejects_bad_files(text, message):
    with pytest.raises(ValidationFailed) as exc:
        parse_csv(text)
    assert message in exc.value.detail


def test_check_row_lists_every_problem_of_every_field():
    row = Row(2, {"email": "bad", "username": "a b", "password": "abc", "full_name": "x" * 65,
                  "need_password_change": "perhaps"})
    check_row(row)
    fields = [e.field for e in row.errors]
    assert fields == ["email", "username", "full_name", "password", "password", "password", "need_password_change"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [("alice", "alice"), ("=1+2", "'=1+2"), ("+1", "'+1"), ("-1", "'-1"), ("@SUM(A1)", "'@SUM(A1)"),
     (True, "true"), (False, "false"), (None, ""), (3, "3")],
)
def test_csv_cells_are_defused(value, expected):
    assert safe_cell(value) == expected
