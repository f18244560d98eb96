"""Rich tables for people, JSON for scripts."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

console = Console()
err_console = Console(stderr=True)

PIPED_WIDTH = 1000  # tables size to their content below this; only a terminal (or COLUMNS) bounds them more


def table_width() -> int | None:
    """The width a table may take: COLUMNS when the caller set it, the terminal's own when there is one (None lets
    Rich measure it), else room for whole cells. Rich alone would size output that goes into a pipe or a file to 80
    columns, fixed when the console was made, and cut headers and values ("Preempti…") that scripts then misread."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    return None if console.is_terminal else PIPED_WIDTH


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
    print_table(t)


def print_table(t: Table) -> None:
    """Print a table at table_width(): whole cells into pipes and files."""
    sized().print(t)


def sized() -> Console:
    """The console to print on now: the shared one on a terminal, else one of table_width() for this print only (the
    shared console keeps the width it was made with, and a width set on it would stay for every later print)."""
    width = table_width()
    return console if width is None else Console(file=console.file, width=width)


def show(data: Any, as_json: bool, columns: Sequence[str | tuple[str, str]] | None = None, title: str | None = None):
    if as_json:
        emit_json(data)
    elif columns is not None and isinstance(data, list):
        table(data, columns, title)
    elif isinstance(data, dict):
        width = max((len(k) for k in data), default=0)
        out = sized()
        for k, v in data.items():
            out.print(f"[bold]{k.ljust(width)}[/bold]  {v}")
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
