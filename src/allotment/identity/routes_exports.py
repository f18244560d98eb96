"""CSV exports for platform admins (Backend.AI's "export CSV" of the users, credentials and audit tabs)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from fastapi import APIRouter, Response

from allotment.api.deps import DB, require
from allotment.core.permissions import PLATFORM_ADMIN
from allotment.identity import service

router = APIRouter(tags=["exports"])

USER_COLUMNS = ["username", "email", "full_name", "is_active", "need_password_change", "resource_policy", "groups",
                "created_at"]
# A cell starting with one of these is run as a formula by spreadsheet programs; users choose their own full name.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> str:
    text = "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def csv_response(filename: str, columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> Response:
    """A CSV download with a header row; cells are defused against spreadsheet formula injection."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([safe_cell(row.get(c)) for c in columns])
    return Response(buffer.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@router.get("/exports/users.csv", dependencies=[require(PLATFORM_ADMIN)],
            responses={200: {"content": {"text/csv": {}}}})
def export_users(db: DB) -> Response:
    return csv_response("users.csv", USER_COLUMNS, service.export_rows(db))
