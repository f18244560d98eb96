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

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Text, bindparam, cast, func, literal_column, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, CursorResult
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.elements import BindParameter
from sqlalchemy.sql.visitors import replacement_traverse

Convert = Callable[[Any], Any] | None


class Prepared:
    """One statement compiled for one dialect: its SQL, the parameter names in driver order (positional drivers) or
    None (named ones), the converted constants and the converters of the row's own parameters."""

    __slots__ = ("constants", "converters", "converting", "dialect", "key", "names", "positional", "row_binds", "sets",
                 "sql", "stmt")

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
        self.stmt, self.dialect = stmt, dialect
        # PostgreSQL: the set form (_as_set), one per combination of row parameters that are alike in every row
        self.row_binds: dict[str, BindParameter] | None = None
        if dialect.name == "postgresql" and self.key:
            self.row_binds = {n: binds[n] for n in self.converters}
        self.sets: dict[frozenset[str], tuple[str, dict[str, Any]]] = {}

    def as_set(self, alike: frozenset[str]) -> tuple[str, dict[str, Any]]:
        found = self.sets.get(alike)
        if found is None:
            assert self.row_binds is not None
            found = self.sets[alike] = _as_set(self.stmt, self.row_binds, alike, self.dialect)
        return found

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

    def set_parameters(self, rows: Sequence[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
        """The set form's SQL and parameters for these rows: a row parameter with the same value in every row (the
        cycle's time, a pool, an empty device list) goes once as a scalar, the others as arrays in row order. JSON
        goes as its text, which the server casts (the driver's adapter of JSON objects costs about 2 us each in Python
        where a string costs 0.5), instants as whole microseconds since the epoch (a timestamp cost 3.8 us, an
        integer 0.6)."""
        memo: dict[tuple, Any] = {}
        alike: dict[str, Any] = {}
        arrays: dict[str, list] = {}
        assert self.row_binds is not None
        serialize = self.dialect._json_serializer or json.dumps
        for name, process in self.converters.items():
            values = [row[name] for row in rows]
            first = values[0]
            kind = type(first)
            if all(type(v) is kind and v == first for v in values):
                alike[name] = _convert(process, first, memo) if process is not None else first
            elif isinstance(self.row_binds[name].type, JSON):
                arrays[name] = [serialize(v) for v in values]
            elif _is_instant(self.row_binds[name].type):
                arrays[name] = [None if v is None else (_convert(process, v, memo) - EPOCH) // MICROSECOND
                                if process is not None else (v - EPOCH) // MICROSECOND for v in values]
            else:
                arrays[name] = [_convert(process, v, memo) for v in values] if process is not None else values
        if not arrays:  # every row alike: only possible for rows that repeat one key, which were merged before
            raise ValueError("the set form needs at least one parameter that differs between rows")
        sql, constants = self.as_set(frozenset(alike))
        params = dict(constants)
        for name, value in alike.items():
            params[f"s_{name}"] = value
        for name, values in arrays.items():
            params[f"a_{name}"] = values
        return sql, params


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


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
_EPOCH_SQL = literal_column("TIMESTAMP WITH TIME ZONE '1970-01-01 00:00:00+00'")
_MICROSECOND_SQL = literal_column("INTERVAL '1 microsecond'")


def _is_instant(type_: Any) -> bool:
    """A timezone-aware timestamp column (db.UTCDateTime): what an epoch offset stands for exactly."""
    impl = getattr(type_, "impl", type_)
    return isinstance(impl, DateTime) and bool(impl.timezone)


_prepared: dict[tuple[int, str, str], tuple[ClauseElement, Prepared]] = {}
KEYS = ("b_id", "u_job", "u_start")  # persist.py's and metering.py's row keys


def _as_set(stmt: ClauseElement, row_binds: dict[str, BindParameter], alike: frozenset[str],
            dialect: Any) -> tuple[str, dict[str, Any]]:
    """PostgreSQL: the statement over the rows as one set, each row parameter an array unnested in step with the
    others (`UPDATE ... FROM (SELECT unnest(:a_x) AS x, ...) AS v`): one statement the server runs as a join, where
    an executemany cost the driver about 15 us of Python per row. The parameters in `alike` are one scalar each
    (`:s_x`); JSON arrays come as text and are cast, instants as microseconds since the epoch."""
    columns = []
    for n, b in row_binds.items():
        if n in alike:
            continue
        if isinstance(b.type, JSON):
            columns.append(cast(func.unnest(bindparam(f"a_{n}", type_=postgresql.ARRAY(Text()))), b.type).label(n))
        elif _is_instant(b.type):  # exact: integer microseconds added to the epoch
            micros = func.unnest(bindparam(f"a_{n}", type_=postgresql.ARRAY(BigInteger())))
            columns.append((_EPOCH_SQL + micros * _MICROSECOND_SQL).label(n))
        else:
            columns.append(func.unnest(bindparam(f"a_{n}", type_=postgresql.ARRAY(b.type))).label(n))
    v = select(*columns).subquery("v")
    scalars = {n: bindparam(f"s_{n}", type_=row_binds[n].type) for n in alike}

    def column(element: Any) -> Any:
        if isinstance(element, BindParameter) and element.key in row_binds:
            return scalars[element.key] if element.key in alike else v.c[element.key]
        return None

    compiled = replacement_traverse(stmt, {}, column).compile(dialect=dialect)
    constants = _constants(compiled, dialect)
    sql = compiled.string
    if dialect.driver == "psycopg":
        sql = _binary_arrays(sql, [f"a_{n}" for n in row_binds if n not in alike])
    return sql, constants


def _binary_arrays(sql: str, names: list[str]) -> str:
    """psycopg: the arrays' placeholders in the binary format (`%(a_x)b`). Left to choose, psycopg writes a list as
    an array literal in text, escaping every element in Python: about 1.2 us an integer or float and 2.9 us a string,
    against about 0.2 us in binary; the cycle sends some fifteen array elements per job. The SQL's casts
    (`::BIGINT[]`, `::VARCHAR[]`) still say what the server makes of them."""
    for name in names:
        placeholder = f"%({name})s"
        if sql.count(placeholder) != 1:
            raise ValueError(f"the set form's SQL names {name} {sql.count(placeholder)} times, not once")
        sql = sql.replace(placeholder, f"%({name})b")
    return sql


def _as_json_set(stmt: ClauseElement, names: list[str], dialect: Any) -> tuple[str, list[str], dict[str, Any]]:
    """SQLite: the statement over the rows as one set, `UPDATE ... FROM (SELECT json_extract(value, '$[i]') AS x, ...
    FROM json_each(?)) AS v`, the rows one JSON array of arrays, each row's parameters in the order of `names`.
    SQLite then runs the whole batch in one step, which releases the interpreter lock once, where `executemany`
    takes it back after every row (what lets another thread run Python meanwhile: persist.EventWrites). Returns the
    SQL, its parameters' names in driver order ("j_rows" for the rows) and the converted constants."""
    rows = func.json_each(bindparam("j_rows", type_=Text())).table_valued("value")
    v = select(*[func.json_extract(rows.c.value, f"$[{i}]").label(n) for i, n in enumerate(names)]).subquery("v")

    def column(element: Any) -> Any:
        if isinstance(element, BindParameter) and element.key in names:
            return v.c[element.key]
        return None

    compiled = replacement_traverse(stmt, {}, column).compile(dialect=dialect)
    return compiled.string, list(compiled.positiontup or ()), _constants(compiled, dialect)


def _constants(compiled: Any, dialect: Any) -> dict[str, Any]:
    """A compiled set form's own parameters (the statement's literals, the JSON paths), converted for the driver."""
    constants = {}
    for bind, name in compiled.bind_names.items():
        if not bind.required:
            process = bind.type.dialect_impl(dialect).bind_processor(dialect)
            constants[name] = process(bind.effective_value) if process is not None else bind.effective_value
    return constants


# SQLite learned UPDATE ... FROM in 3.33.
SQLITE_UPDATE_FROM = (3, 33, 0)
_json_sets: dict[int, tuple[ClauseElement, str, list[str], dict[str, Any], list[int]]] = {}


def executemany_as_one(conn: Connection, stmt: ClauseElement, rows: Sequence[dict[str, Any]]) -> CursorResult:
    """`executemany` as one statement where the database runs it as one set: on PostgreSQL what executemany does
    already; on SQLite (3.33 or later) the JSON set form (_as_json_set), for statements whose rows are named by a
    key (persist.py's). A row repeating an earlier one's key replaces it, as it would when run after it."""
    dialect = conn.dialect
    if dialect.name != "sqlite" or len(rows) < 2 or dialect.dbapi.sqlite_version_info < SQLITE_UPDATE_FROM:
        return executemany(conn, stmt, rows)
    prep = prepared(stmt, dialect)
    if not prep.key or not prep.positional:
        return executemany(conn, stmt, rows)
    found = _json_sets.get(id(stmt))
    if found is None or found[0] is not stmt:
        row_names = list(dict.fromkeys(n for n in prep.names if n in prep.converters))  # a name may repeat
        sql, order, constants = _as_json_set(stmt, row_names, dialect)
        found = _json_sets[id(stmt)] = (stmt, sql, order, constants, [prep.names.index(n) for n in row_names])
    _, sql, order, constants, at = found
    last = {tuple(row[k] for k in prep.key): row for row in rows}
    if len(last) != len(rows):
        rows = list(last.values())
    text = json.dumps([[values[i] for i in at] for values in prep.parameters(rows)])
    return conn.exec_driver_sql(sql, tuple(text if n == "j_rows" else constants[n] for n in order))


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
    if prep.row_binds is None or len(rows) < 2:
        return conn.exec_driver_sql(prep.sql, prep.parameters(rows))
    last = {tuple(row[k] for k in prep.key): row for row in rows}
    if len(last) != len(rows):
        rows = list(last.values())
        if len(rows) < 2:
            return conn.exec_driver_sql(prep.sql, prep.parameters(rows))
    sql, params = prep.set_parameters(rows)
    with planned_for_its_rows(conn):
        return conn.exec_driver_sql(sql, params)


@contextmanager
def planned_for_its_rows(conn: Connection) -> Iterator[None]:
    """PostgreSQL: the statements run inside are planned for the parameters they are given, each time. psycopg
    prepares a statement once a connection has run it five times, and the server then keeps one generic plan for it:
    an array parameter assumed to hold ten rows, every table as large as when the plan was made. For a statement over
    an array of rows that plan can be quadratic: made while the jobs table was nearly empty, it read the whole queue
    once for every row of a batch (a cycle ending 600 jobs against 9,000 queued: 0.5 s a statement, where a plan for
    the rows takes milliseconds). Planning each time costs the server well under a millisecond a statement."""
    raw = conn.connection.dbapi_connection
    threshold = getattr(raw, "prepare_threshold", None)
    if threshold is None:  # SQLite, or a psycopg connection that prepares nothing
        yield
        return
    raw.prepare_threshold = None
    try:
        yield
    finally:
        raw.prepare_threshold = threshold
