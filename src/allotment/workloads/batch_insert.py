"""Writing a batch of new rows with the driver's own executemany, values converted as SQLAlchemy would convert them.

SQLAlchemy's executemany of an INSERT runs every value of every row through the column type's bind processor in
Python and builds its parameters row by row: for a 500-job batch that was half the cost of the whole INSERT. Here the
processors are looked up once per (dialect, column), a value that is the same object as the previous row's (the
batch's time stamps, owner, state, configuration) is converted once, and the rows go to the driver as tuples (SQLite)
or through COPY (PostgreSQL: psycopg writes the rows in its C copy protocol; the transaction, and so its durability,
is the caller's as for an INSERT). The stored values are the same as SQLAlchemy's: the same processors convert them.
COPY uses PostgreSQL's binary format, each column's type named once: the server parses no text (numbers, time
stamps) and psycopg writes each value with its column's binary writer instead of choosing a text writer by the
value's Python type.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, Float, Integer, String, Table, TypeDecorator
from sqlalchemy.orm import Session

_Processor = Callable[[Any], Any] | None
_plans: dict[tuple[str, str, tuple[str, ...]], tuple[str, list[_Processor], list[str]]] = {}


def _binary_type(column_type: Any, dialect: Any) -> str:
    """The PostgreSQL type whose binary writer psycopg uses for a column's converted values. JSON goes as text (its
    converted value is its JSON text, and json's binary form is that text: the server checks it as for an INSERT);
    a column of another type is written as its declared type."""
    if isinstance(column_type, JSON):
        return "text"
    impl = column_type.dialect_impl(dialect)
    if isinstance(impl, TypeDecorator):
        impl = impl.impl_instance
    if isinstance(impl, DateTime):
        return "timestamptz" if impl.timezone else "timestamp"
    if isinstance(impl, BigInteger):
        return "int8"
    if isinstance(impl, Integer):
        return "int4"
    if isinstance(impl, Float):
        return "float8"
    if isinstance(impl, Boolean):
        return "bool"
    if isinstance(impl, String):  # Text too
        return "text"
    raise ValueError(f"no binary COPY type for {column_type!r}")


def _plan(dialect, table: Table, columns: tuple[str, ...]) -> tuple[str, list[_Processor], list[str]]:
    key = (dialect.name, table.name, columns)
    if key not in _plans:
        missing = [c.name for c in table.columns if c.default is not None and c.name not in columns
                   and not c.primary_key]
        if missing:  # a Python-side default would be skipped: the caller must give every such column
            raise ValueError(f"rows for {table.name} lack columns with defaults: {', '.join(missing)}")
        quote = dialect.identifier_preparer.quote
        names = ", ".join(quote(c) for c in columns)
        types: list[str] = []
        if dialect.name == "postgresql":
            sql = f"COPY {quote(table.name)} ({names}) FROM STDIN (FORMAT BINARY)"
            # COPY takes JSON as its text: the text psycopg's Json wrapper (SQLAlchemy's processor) would write
            # for an INSERT, None included ('null', as SQLAlchemy stores it), without a wrapper object per value.
            as_text = dialect._json_serializer or json.dumps
            processors = [as_text if isinstance(table.c[c].type, JSON)
                          else table.c[c].type.dialect_impl(dialect).bind_processor(dialect) for c in columns]
            types = [_binary_type(table.c[c].type, dialect) for c in columns]
        else:
            marks = ", ".join("?" for _ in columns)
            sql = f"INSERT INTO {quote(table.name)} ({names}) VALUES ({marks})"
            processors = [table.c[c].type.dialect_impl(dialect).bind_processor(dialect) for c in columns]
        _plans[key] = (sql, processors, types)
    return _plans[key]


def _converted(rows: Sequence[dict[str, Any]], columns: tuple[str, ...],
               processors: list[_Processor]) -> list[tuple]:
    """Each row as a tuple in column order, every value through its column's processor (once per distinct object
    in a run of rows that share it)."""
    converted = [(i, process) for i, process in enumerate(processors) if process is not None]
    last_in: list[Any] = [object()] * len(columns)
    last_out: list[Any] = [None] * len(columns)
    get = itemgetter(*columns) if len(columns) > 1 else (lambda row: (row[columns[0]],))
    out = []
    for row in rows:
        values = list(get(row))
        for i, process in converted:
            value = values[i]
            if value is last_in[i]:
                values[i] = last_out[i]
            else:
                last_in[i] = value
                values[i] = last_out[i] = process(value)
        out.append(tuple(values))
    return out


def insert_rows(session: Session, table: Table, rows: Sequence[dict[str, Any]],
                same: dict[str, Any] | None = None) -> None:
    """Insert `rows` (dicts with the same keys) in the session's transaction, each with the values of `same` too (the
    columns every row shares, converted once); every column that has a Python-side default must be among them."""
    if not rows:
        return
    own = tuple(rows[0])
    same = same or {}
    columns = own + tuple(same)
    connection = session.connection()
    dialect = connection.dialect
    sql, processors, types = _plan(dialect, table, columns)
    shared = tuple(value if process is None else process(value)
                   for value, process in zip(same.values(), processors[len(own):], strict=True))
    values = _converted(rows, own, processors[:len(own)])
    if shared:
        values = [row + shared for row in values]
    if dialect.name == "postgresql":
        cursor = connection.connection.driver_connection.cursor()
        # The engine's statement listeners (counters, profiles) see the COPY as they see an executemany.
        events = connection._has_events or connection.engine._has_events
        if events:
            connection.dispatch.before_cursor_execute(connection, cursor, sql, values, None, True)
        with cursor.copy(sql) as copy:
            copy.set_types(types)
            for row in values:
                copy.write_row(row)
        if events:
            connection.dispatch.after_cursor_execute(connection, cursor, sql, values, None, True)
        return
    connection.exec_driver_sql(sql, values)
