"""The loop's hot read without SQLAlchemy's per-row result handling: new submissions, read at every scan.

Executed the usual way, SQLAlchemy wraps every row of the result in its Row and runs each typed column's result
processor on each row (a timestamp column parsed once per row, although a batch of submissions shares one). Here the
statement is compiled once per dialect and run with `Connection.exec_driver_sql` (in the caller's transaction, seen
by the engine's cursor events as before); the driver's rows become named tuples, and the columns SQLAlchemy would
convert go through the same result processors, each distinct value once per read (bulk.py does the same for the
cycle's writes).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Integer, bindparam, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql import Select

from allotment.core.limits import MAX_ID  # jobs.id is a 32-bit integer on PostgreSQL
from allotment.scheduler.load import NEW_JOB_COLUMNS, NewJobRow
from allotment.workloads.models import Job

# Jobs above the watermark, in id order. PostgreSQL gets a range with two ends (scan.py says why).
NEWER = select(*NEW_JOB_COLUMNS).where(Job.id > bindparam("wm", type_=Integer())).order_by(Job.id)
NEWER_PG = select(*NEW_JOB_COLUMNS).where(
    Job.id.between(bindparam("wm_above", type_=Integer()), bindparam("wm_top", type_=Integer()))).order_by(Job.id)


class Read:
    """One select compiled for one dialect: its SQL, its parameters in driver order (positional drivers) and the
    result processors of its columns that have one."""

    def __init__(self, stmt: Select, dialect: Any) -> None:
        compiled = stmt.compile(dialect=dialect)
        self.sql: str = compiled.string
        self.names: list[str] | None = list(compiled.positiontup or ()) if compiled.positional else None
        self.processors: list[tuple[int, Any]] = [
            (i, process) for i, column in enumerate(stmt.selected_columns)
            if (process := column.type.dialect_impl(dialect).result_processor(dialect, None)) is not None]

    def rows(self, conn: Connection, params: dict[str, Any], kind: type) -> list[Any]:
        """The rows as named tuples of `kind` (its fields: the select's columns, in order)."""
        result = conn.exec_driver_sql(self.sql, tuple(params[n] for n in self.names) if self.names is not None
                                      else params)
        try:
            raw = result.cursor.fetchall() if result.cursor is not None else []
        finally:
            result.close()
        make = tuple.__new__
        if not self.processors:
            return [make(kind, row) for row in raw]
        memo: dict[tuple[int, Any], Any] = {}
        out = []
        for row in raw:
            values = list(row)
            for i, process in self.processors:
                value = values[i]
                if value is not None:
                    key = (i, value)
                    try:
                        found = memo.get(key, memo)
                    except TypeError:  # a value that cannot be a key (none of NEW_JOB_COLUMNS' today)
                        found = process(value)
                    else:
                        if found is memo:
                            found = memo[key] = process(value)
                    values[i] = found
            out.append(make(kind, values))
        return out


_reads: dict[tuple[str, str], Read] = {}  # (dialect, driver) -> its compiled read


def new_jobs(conn: Connection, watermark: int) -> list[Any]:
    """The jobs above the watermark (load.NewJobRow), in id order."""
    dialect = conn.dialect
    postgresql = dialect.name == "postgresql"
    key = (dialect.name, dialect.driver)
    read = _reads.get(key)
    if read is None:
        read = _reads[key] = Read(NEWER_PG if postgresql else NEWER, dialect)
    params = {"wm_above": watermark + 1, "wm_top": MAX_ID} if postgresql else {"wm": watermark}
    return read.rows(conn, params, NewJobRow)
