"""The cycle's executemany statements without SQLAlchemy's per-row parameter handling.

A cycle writes thousands of rows through a handful of constant statements (persist.py, metering.py). Executed the
usual way, SQLAlchemy builds and converts every parameter of every row in Python (its compiled parameters, then each
type's bind processor), which cost more than the database's own work. Here each statement is compiled once per
dialect; its constant parameters (the literals in the statement) are converted once; a row's own parameters go
through the same bind processors SQLAlchemy would use, and a timestamp, shared by most rows of a cycle, is converted
once per distinct value. The rows then go to the driver as one executemany (`Connection.exec_driver_sql`, which
psycopg pipelines on PostgreSQL), in the caller's transaction, seen by the engine's cursor events as before.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from operator import itemgetter
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, CursorResult
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.elements import BindParameter
from sqlalchemy.sql.visitors import replacement_traverse

Convert = Callable[[Any], Any] | None


class Prepared:
    """One statement compiled for one dialect: its SQL, the parameter names in driver order (positional drivers) or
    None (named ones), the converted constants and the converters of the row's own parameters."""

    __slots__ = ("constants", "converters", "converting", "key", "names", "positional", "set_constants", "set_sql", "sql")

    def __init__(self, stmt: ClauseElement, dialect: Any) -> None:
        compiled = stmt.compile(dialect=dialect)
        self.sql: str = compiled.string
        self.positional: bool = bool(compiled.positional)
        binds = {name: bind for bind, name in compiled.bind_names.items()}
        order = list(compiled.positiontup or ()) if self.positional else list(binds)
        self.names: list[str] = order
        self.constants: dict[str, Any] = {}
        self.converters: dict[str, Convert] = {}
        for name, bind in binds.items():
            process = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if bind.required:
                self.converters[name] = process
            else:
                value = bind.effective_value
                self.constants[name] = process(value) if process is not None else value
        # (position in driver order, converter) of the row parameters that need converting
        self.converting: list[tuple[int, Callable[[Any], Any]]] = [
            (i, process) for i, name in enumerate(order) if (process := self.converters.get(name)) is not None]
        # The row parameters that name the row a statement writes: rows repeating them are written once (the last).
        self.key: list[str] = [n for n in KEYS if n in self.converters]
        self.set_sql: str | None = None
        self.set_constants: dict[str, Any] = {}
        if dialect.name == "postgresql" and self.key:
            self.set_sql, self.set_constants = _as_set(stmt, {n: binds[n] for n in self.converters}, dialect)

    def parameters(self, rows: Sequence[dict[str, Any]]) -> list:
        """The driver's parameters for every row, in one pass of C-level lookups per row (the constants merged in,
        the values taken in driver order); only the parameters that have a converter are converted, each distinct
        timestamp once."""
        names, positional, converting = self.names, self.positional, self.converting
        get = itemgetter(*names)
        single = len(names) == 1
        constants = self.constants
        memo: dict[tuple, Any] = {}
        out: list = []
        for row in rows:
            if constants:
                row = {**row, **constants}
            values = [get(row)] if single else list(get(row))
            for i, process in converting:
                values[i] = _convert(process, values[i], memo)
            out.append(tuple(values) if positional else dict(zip(names, values, strict=True)))
        return out

    def columns(self, rows: Sequence[dict[str, Any]]) -> dict[str, list]:
        """Each row parameter's converted values over the rows, in row order (PostgreSQL's arrays)."""
        memo: dict[tuple, Any] = {}
        out = {}
        for name, process in self.converters.items():
            values = [row[name] for row in rows]
            if process is not None:
                values = [_convert(process, value, memo) for value in values]
            out[name] = values
        return out


def _convert(process: Callable[[Any], Any], raw: Any, memo: dict[tuple, Any]) -> Any:
    """One parameter converted; the same instant (most rows of a cycle share it) or the same list of names (a JSON
    column: the nodes a job was placed on, the empty list of a job without devices) once per call."""
    kind = type(raw)
    if kind is datetime:
        key: tuple = (process, raw, raw.tzinfo)
    elif kind is list and all(type(x) is str for x in raw):
        key = (process, list, *raw)
    else:
        return process(raw)
    converted = memo.get(key, memo)
    if converted is memo:
        converted = memo[key] = process(raw)
    return converted


_prepared: dict[tuple[int, str, str], tuple[ClauseElement, Prepared]] = {}
KEYS = ("b_id", "u_job", "u_start")  # persist.py's and metering.py's row keys


def _as_set(stmt: ClauseElement, row_binds: dict[str, BindParameter], dialect: Any) -> tuple[str, dict[str, Any]]:
    """PostgreSQL: the statement over the rows as one set, each row parameter an array unnested in step with the
    others (`UPDATE ... FROM (SELECT unnest(:a_x) AS x, ...) AS v`): one statement the server runs as a join, where
    an executemany cost the driver about 15 us of Python per row."""
    v = select(*[func.unnest(bindparam(f"a_{n}", type_=postgresql.ARRAY(b.type))).label(n)
                 for n, b in row_binds.items()]).subquery("v")

    def column(element: Any) -> Any:
        if isinstance(element, BindParameter) and element.key in row_binds:
            return v.c[element.key]
        return None

    compiled = replacement_traverse(stmt, {}, column).compile(dialect=dialect)
    constants = {}
    for bind, name in compiled.bind_names.items():
        if not bind.required:
            process = bind.type.dialect_impl(dialect).bind_processor(dialect)
            constants[name] = process(bind.effective_value) if process is not None else bind.effective_value
    return compiled.string, constants


def prepared(stmt: ClauseElement, dialect: Any) -> Prepared:
    key = (id(stmt), dialect.name, dialect.driver)
    found = _prepared.get(key)
    if found is None or found[0] is not stmt:
        found = _prepared[key] = (stmt, Prepared(stmt, dialect))
    return found[1]


def executemany(conn: Connection, stmt: ClauseElement, rows: Sequence[dict[str, Any]]) -> CursorResult:
    """Run `stmt` once per row; rowcount is the total where the driver reports it. On PostgreSQL the rows go as one
    set (_as_set), a row repeating an earlier one's key replacing it as it would when run after it."""
    prep = prepared(stmt, conn.dialect)
    if prep.set_sql is None or len(rows) < 2:
        return conn.exec_driver_sql(prep.sql, prep.parameters(rows))
    last = {tuple(row[k] for k in prep.key): row for row in rows}
    if len(last) != len(rows):
        rows = list(last.values())
    params = dict(prep.set_constants)
    for name, values in prep.columns(rows).items():
        params[f"a_{name}"] = values
    return conn.exec_driver_sql(prep.set_sql, params)
