"""Rich tables for people, JSON for scripts."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

console = Console()
err_console = Console(stderr=True)


def emit_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str | tuple[str, str]], title: str | None = None,
          empty: str | None = None) -> None:
    """A Rich table; with `empty`, that line instead of a table without rows."""
    if empty is not None and not rows:
        console.print(empty, highlight=False)
        return
    t = Table(title=title)
    cols = [(c, c) if isinstance(c, str) else c for c in columns]
    for key, header in cols:
        t.add_column(header.replace("_", " ").upper() if header == key else header)
    for row in rows:
        t.add_row(*["" if row.get(k) is None else str(row.get(k)) for k, _ in cols])
    console.print(t)


def show(data: Any, as_json: bool, columns: Sequence[str | tuple[str, str]] | None = None, title: str | None = None):
    if as_json:
        emit_json(data)
    elif columns is not None and isinstance(data, list):
        table(data, columns, title)
    elif isinstance(data, dict):
        width = max((len(k) for k in data), default=0)
        for k, v in data.items():
            console.print(f"[bold]{k.ljust(width)}[/bold]  {v}")
    else:
        console.print(data)


def when(value: Any) -> str:
    """An API timestamp (ISO 8601, UTC) as 'YYYY-MM-DD HH:MM' for tables; empty when absent."""
    if not value:
        return ""
    text = str(value).replace("T", " ")
    return text[:16]


def human_bytes(value: Any) -> str:
    """Memory for people: numbers are bytes (1073741824 -> '1.0G'); strings are shown as the server gave them."""
    if value is None or value == "":
        return ""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    size = float(value)
    for unit in ("", "K", "M", "G", "T", "P"):
        if abs(size) < 1024 or unit == "P":
            return f"{size:.0f}" if unit == "" else f"{size:.1f}{unit}"
        size /= 1024
    return str(value)


def yes_no(value: Any) -> str:
    return "yes" if value else "no"
