"""Bulk import of users from CSV (columns email, username, password, full_name[, need_password_change]).

Every row is checked before anything is written: the same rules as creating one user, plus duplicates against the
database and within the file. Without continue_on_error one bad row imports nothing; with it, the valid rows are
created and the bad ones reported. Rows are numbered as a spreadsheet shows them: the header is row 1.

A file that is not a CSV of this shape (not UTF-8, no header naming the columns, no rows, too many rows) is refused
with 422 on `file` or `header`; its shape is stated in the OpenAPI (BODY_SCHEMA). Bad rows are not a malformed
request but the import's result: the answer is the per-row report, 200 when every row was created and 207
(Multi-Status) when a row failed, whether the other rows were then created or, by default, skipped.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from allotment.audit import service as audit
from allotment.core.limits import MAX_CSV_BODY_BYTES, MAX_IMPORT_ROWS
from allotment.core.permissions import Principal
from allotment.errors import FieldError, ValidationFailed, invalid
from allotment.identity import service
from allotment.identity.models import User

REQUIRED_COLUMNS = ("email", "username", "password")
OPTIONAL_COLUMNS = ("full_name", "need_password_change")
MAX_ROWS = MAX_IMPORT_ROWS  # each row costs a password hash: bounded so that one import cannot hold the server
MAX_BYTES = 5 * 1024 * 1024
TRUE_WORDS = {"true", "yes", "y", "1", "on"}
FALSE_WORDS = {"false", "no", "n", "0", "off", ""}

CREATED, FAILED, SKIPPED = "created", "failed", "skipped"


@dataclass
class Row:
    row: int
    values: dict[str, str]
    errors: list[FieldError] = field(default_factory=list)
    status: str = SKIPPED

    @property
    def username(self) -> str:
        return self.values.get("username", "").strip()

    def report(self) -> dict[str, Any]:
        return {"row": self.row, "username": self.username, "status": self.status,
                "errors": [e.as_dict() for e in self.errors]}


def _any_case(word: str) -> str:
    return "".join(f"[{c}{c.upper()}]" if c.isalpha() else c for c in word)


def _header_pattern() -> str:
    """The header as the schema states it: the columns in the documented order (the optional ones may be left
    out), in any case, padded with spaces or tabs, each bare or quoted. The server also takes them in any order;
    a pattern naming every order would run to tens of kilobytes, so the schema states the documented one."""
    def cell(name: str) -> str:
        word = _any_case(name)
        # A quote opens a quoted cell only as its first character; what follows the closing quote is appended.
        return f'(?:[ \\t]*{word}|"[ \\t]*{word}[ \\t]*")[ \\t]*'
    required = ",".join(cell(c) for c in REQUIRED_COLUMNS)
    return required + "".join(f"(?:,{cell(c)})?" for c in OPTIONAL_COLUMNS)


# A character that makes a CSV record non-blank: not a space (as str.strip() counts them), comma or quote.
_INK = '[^\\t\\n\\x0b\\x0c\\r \\x1c-\\x1f\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff,"]'
# Rows: line breaks are \n or \r\n (a lone \r outside quotes is not CSV to Python's reader), and at least one
# character somewhere makes a row that is not blank.
_ROWS = f"(?:[^\\r]|\\r\\n)*{_INK}(?:[^\\r]|\\r\\n)*"
BODY_PATTERN = f"^\\ufeff?(?:[ \\t]*\\r?\\n)*{_header_pattern()}\\r?\\n{_ROWS}$"
BODY_SCHEMA = {
    "type": "string",
    "minLength": len("email,username,password\nx"),
    # Characters, at most 4 bytes each in UTF-8: a body of this length always fits the byte limit.
    "maxLength": MAX_CSV_BODY_BYTES // 4,
    "pattern": BODY_PATTERN,
    "description": (f"UTF-8 CSV (RFC 4180), at most {MAX_IMPORT_ROWS} rows after a header row naming the columns "
                    f"{', '.join(REQUIRED_COLUMNS)}[, {', '.join(OPTIONAL_COLUMNS)}]; the server also accepts the "
                    "columns in any order. need_password_change is true/false, yes/no, 1/0 or on/off (empty: "
                    "false). A file not of this shape is refused with 422 naming `file` or `header`."),
}


def decode(body: bytes) -> str:
    if len(body) > MAX_BYTES:
        raise invalid("file", f"is larger than {MAX_BYTES // (1024 * 1024)} MiB; split it into several imports")
    try:
        return body.decode("utf-8-sig")  # spreadsheets often prepend a byte-order mark
    except UnicodeDecodeError as exc:
        raise invalid("file", f"is not UTF-8 text (byte {exc.start}); save the CSV as UTF-8") from exc


def parse_csv(text: str) -> list[Row]:
    """The rows of the file, with values keyed by column. File-level problems raise ValidationFailed."""
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader, None)
        while header is not None and not any(cell.strip() for cell in header):
            header = next(reader, None)
        if header is None:
            raise invalid("file", "is empty; the first row must name the columns "
                          f"{', '.join(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)}")
        columns = [cell.strip().lower() for cell in header]
        _check_header(columns)
        rows = []
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue  # blank lines
            row = Row(reader.line_num, {c: (cells[i] if i < len(cells) else "") for i, c in enumerate(columns)})
            if len(cells) > len(columns):
                row.errors.append(FieldError("row", f"has {len(cells)} values but the header has {len(columns)}"))
            rows.append(row)
            if len(rows) > MAX_ROWS:
                raise invalid("file", f"has more than {MAX_ROWS} rows; split it into several imports")
    except csv.Error as exc:
        raise invalid("file", f"is not valid CSV (line {reader.line_num}: {exc})") from exc
    if not rows:
        raise invalid("file", "has a header but no rows")
    return rows


def _check_header(columns: list[str]) -> None:
    errors = []
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        errors.append(FieldError("header", f"lacks the column(s) {', '.join(missing)}"))
    unknown = [c for c in columns if c not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    if unknown:
        errors.append(FieldError("header", f"has unknown column(s) {', '.join(unknown)}; allowed: "
                                           f"{', '.join(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)}"))
    doubled = sorted({c for c in columns if columns.count(c) > 1})
    if doubled:
        errors.append(FieldError("header", f"names the column(s) {', '.join(doubled)} more than once"))
    if errors:
        raise ValidationFailed("; ".join(f"{e.field} {e.message}" for e in errors), errors)


def parse_flag(text: str) -> bool | None:
    """A need_password_change cell: true/false, yes/no, 1/0, on/off (empty is false); None when unreadable."""
    word = text.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    return None


def check_row(row: Row) -> None:
    """Add every rule the row's values break (the same rules as creating one user)."""
    v = row.values
    problems = service.new_user_problems(v.get("email", "").strip(), row.username, v.get("password", ""),
                                         v.get("full_name", "").strip() or None)
    row.errors.extend(FieldError(f, msg) for f, msgs in problems.items() for msg in msgs)
    if parse_flag(v.get("need_password_change", "")) is None:
        row.errors.append(FieldError("need_password_change", "must be true or false (or yes/no, 1/0)"))


def check_duplicates(session: Session, rows: list[Row]) -> None:
    """Duplicates within the file (the first occurrence wins) and against existing accounts, ignoring case."""
    emails = {r.values.get("email", "").strip().lower() for r in rows} - {""}
    names = {r.username.lower() for r in rows} - {""}
    taken_emails = set(existing_keys(session, User.email_key, emails))
    taken_names = set(existing_keys(session, User.username_key, names))
    seen: dict[tuple[str, str], int] = {}
    for row in rows:
        for column, taken in (("email", taken_emails), ("username", taken_names)):
            value = row.values.get(column, "").strip()
            key = value.lower()
            if not key:
                continue
            if key in taken:
                what = "is already registered" if column == "email" else "is already taken"
                row.errors.append(FieldError(column, f"{value} {what}"))
            elif (column, key) in seen:
                row.errors.append(FieldError(column, f"{value} duplicates row {seen[(column, key)]} of this file"))
            else:
                seen[(column, key)] = row.row


def existing_keys(session: Session, column, keys: set[str]) -> list[str]:
    found: list[str] = []
    ordered = sorted(keys)
    for start in range(0, len(ordered), 500):  # keep IN lists short enough for every database
        found.extend(session.scalars(select(column).where(column.in_(ordered[start:start + 500]))))
    return found


def import_users(session: Session, actor: Principal, text: str, continue_on_error: bool,
                 source: str | None) -> dict[str, Any]:
    """Import the file; returns {created, failed, rows}. When a row fails and continue_on_error is off, nothing is
    written and the valid rows are reported as skipped."""
    rows = parse_csv(text)
    for row in rows:
        check_row(row)
    check_duplicates(session, rows)
    for row in rows:
        row.status = FAILED if row.errors else SKIPPED
    failed = sum(1 for r in rows if r.status == FAILED)
    if failed and not continue_on_error:
        return {"created": 0, "failed": failed, "rows": [r.report() for r in rows]}
    for row in rows:
        if row.status == FAILED:
            continue
        v = row.values
        service.register_user(
            session, actor, source, email=v["email"].strip(), username=row.username, password=v["password"],
            full_name=v.get("full_name", "").strip() or None,
            need_password_change=bool(parse_flag(v.get("need_password_change", ""))),
        )
        row.status = CREATED
    created = len(rows) - failed
    audit.record(session, actor, "user.import", "user", None,
                 changes={"before": None, "after": {"created": created, "failed": failed}}, source=source)
    return {"created": created, "failed": failed, "rows": [r.report() for r in rows]}
