"""The CLI without a server: exit codes of main(), paging, formatting, and how refusals are reported."""

from __future__ import annotations

import io
import json

import httpx
import pytest

from allotment.cli import client as client_module
from allotment.cli.client import Client, segment
from allotment.cli.main import main
from allotment.cli.output import human_bytes, when


@pytest.fixture(autouse=True)
def isolated_config(tmp_path, monkeypatch):
    for name in ("ALLOT_URL", "ALLOT_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ALLOT_CONFIG_DIR", str(tmp_path / "cfg"))
    monkeypatch.setenv("COLUMNS", "200")


@pytest.fixture
def fake_server(monkeypatch):
    """Route the CLI's HTTP client to `handler(request) -> httpx.Response`; returns the requests it saw."""
    seen: list[httpx.Request] = []
    real_client = httpx.Client

    def install(handler):
        def recording(request):
            seen.append(request)
            return handler(request)

        monkeypatch.setattr(client_module.httpx, "Client",
                            lambda **kw: real_client(transport=httpx.MockTransport(recording), **kw))
        monkeypatch.setenv("ALLOT_URL", "http://allot.test")
        monkeypatch.setenv("ALLOT_TOKEN", "st_test")
        return seen

    return install


def run(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    return exit_info.value.code or 0


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (["--help"], 0),
        (["admin", "--help"], 0),
        ([], 2),
        (["no-such-command"], 2),
        (["admin", "users", "--no-such-option"], 2),
        (["admin", "users", "--inactive", "--all"], 2),
        (["admin", "export", "passwords", "-o", "x.csv"], 2),
        (["credentials", "revoke"], 2),
        (["whoami"], 1),  # not logged in
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else str(v),
)
def test_exit_codes(argv, code):
    assert run(argv) == code


def test_errors_are_one_line_naming_the_problem(fake_server, capsys):
    fake_server(lambda r: httpx.Response(404, json={"status": 404, "detail": "no user or service account 'bob'"},
                                         headers={"content-type": "application/problem+json"}))
    assert run(["admin", "activate-user", "bob"]) == 1
    assert capsys.readouterr().err == "error: no user or service account 'bob'\n"


def test_field_errors_are_listed_per_field_on_one_line(fake_server, capsys, monkeypatch):
    body = {"status": 422, "detail": "x", "errors": [{"field": "password", "message": "must contain a digit"},
                                                      {"field": "email", "message": "is not valid"}]}
    seen = fake_server(lambda r: httpx.Response(422, json=body))
    monkeypatch.setattr("sys.stdin", io.StringIO("weak-password\n"))
    assert run(["admin", "add-user", "a@b", "ann", "--password-stdin"]) == 1
    assert capsys.readouterr().err == "error: password: must contain a digit; email: is not valid\n"
    assert json.loads(seen[0].content)["password"] == "weak-password"


def test_markup_in_messages_is_printed_literally(fake_server, capsys):
    fake_server(lambda r: httpx.Response(409, json={"status": 409, "detail": "group [bold]x[/bold] exists"}))
    assert run(["admin", "groups", "create", "x"]) == 1
    assert capsys.readouterr().err == "error: group [bold]x[/bold] exists\n"


def test_get_all_follows_pages_until_total(fake_server):
    people = [{"username": f"u{i}"} for i in range(7)]

    def handler(request):
        limit, offset = int(request.url.params["limit"]), int(request.url.params["offset"])
        return httpx.Response(200, json={"items": people[offset:offset + limit], "total": len(people)})

    seen = fake_server(handler)
    assert Client().get_all("users", {"active": "true"}, page=3) == people
    assert [r.url.params["offset"] for r in seen] == ["0", "3", "6"]
    assert all(r.url.params["active"] == "true" for r in seen)
    assert len(Client().get_all("users", page=3, limit=4)) == 4


@pytest.mark.parametrize("status", [207, 422])  # 422: servers before the import answered bad rows with 207
def test_import_refused_prints_the_row_report_and_exits_1(fake_server, tmp_path, capsys, status):
    report = {"created": 0, "failed": 1, "rows": [
        {"row": 1, "username": "anna", "status": "skipped", "errors": []},
        {"row": 2, "username": "bob", "status": "failed",
         "errors": [{"field": "password", "message": "must contain a digit"}]},
    ]}
    seen = fake_server(lambda r: httpx.Response(status, json=report))
    csv_file = tmp_path / "people.csv"
    csv_file.write_text("email,username,password,full_name\n")
    assert run(["admin", "import-users", str(csv_file)]) == 1
    out, err = capsys.readouterr()
    bob_line = next(line for line in out.splitlines() if "bob" in line)
    assert "failed" in bob_line and "password: must contain a digit" in bob_line
    assert err.startswith("error: 1 bad row(s) in people.csv: nothing imported")
    assert seen[0].url.params["continue_on_error"] == "false"
    assert seen[0].headers["content-type"] == "text/csv"


def test_deactivate_without_terminal_or_yes_changes_nothing(fake_server, capsys):
    seen = fake_server(lambda r: httpx.Response(200, json={"username": "bob"}))
    assert run(["admin", "deactivate-user", "bob"]) == 1
    assert "pass --yes" in capsys.readouterr().err
    assert seen == []
    assert run(["admin", "deactivate-user", "bob", "--yes"]) == 0
    assert [(r.method, r.url.path) for r in seen] == [("POST", "/api/v1/users/bob/deactivate")]


def test_update_user_sends_only_what_changes(fake_server):
    seen = fake_server(lambda r: httpx.Response(200, json={"username": "bob"}))
    assert run(["admin", "update-user", "bob@example.com", "--no-need-password-change", "--full-name", "Bob"]) == 0
    assert seen[0].method == "PATCH" and seen[0].url.path == "/api/v1/users/bob@example.com"
    assert json.loads(seen[0].content) == {"full_name": "Bob", "need_password_change": False}


def test_new_credential_is_printed_unwrapped(fake_server, capsys):
    cred = {"access_key": "AK" + "A" * 30, "secret_key": "s" * 120, "owner": "bob", "label": None,
            "expires_at": None, "cli_snippet": "allot login http://allot.test --access-key AKX --secret-stdin"}
    seen = fake_server(lambda r: httpx.Response(201, json=cred))
    assert run(["credentials", "create", "--expires", "30d"]) == 0
    out = capsys.readouterr().out
    assert f"Secret key  {cred['secret_key']}\n" in out  # one line, whatever the terminal width
    assert "  allot login http://allot.test --access-key AKX --secret-stdin\n" in out
    assert json.loads(seen[0].content) == {"expires_in": "30d"}


@pytest.mark.parametrize(
    ("value", "shown"),
    [(None, ""), (512, "512"), (2048, "2.0K"), (80 * 1024**3, "80.0G"), ("80Gi", "80Gi"), (True, "True")],
)
def test_human_bytes(value, shown):
    assert human_bytes(value) == shown


@pytest.mark.parametrize(
    ("value", "shown"), [(None, ""), ("2025-01-31T12:34:56.789+00:00", "2025-01-31 12:34")]
)
def test_when(value, shown):
    assert when(value) == shown


@pytest.mark.parametrize(("value", "quoted"), [("bob", "bob"), ("bob@example.com", "bob@example.com"),
                                               ("a/b", "a%2Fb"), ("x?y", "x%3Fy")])
def test_path_segments_cannot_change_the_route(value, quoted):
    assert segment(value) == quoted


@pytest.mark.parametrize(
    ("changes", "shown"),
    [
        (None, ""),
        ({"before": {"role": "user"}, "after": {"role": "admin"}}, "role: user -> admin"),
        ({"before": None, "after": {"name": "ml", "description": None}}, "name=ml"),
        ({"before": {"member": "bob"}, "after": None}, "member=bob"),
        ({"reason": "x"}, '{"reason": "x"}'),
    ],
)
def test_audit_changes_text(changes, shown):
    from allotment.cli.admin_audit import changes_text

    assert changes_text(changes) == shown
