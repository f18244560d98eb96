"""Schema migrations (Alembic) driven from code: `allot db upgrade`, self-migration on SQLite, checks on PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


class SchemaOutdated(RuntimeError):
    pass


def check_schema(engine: Engine) -> None:
    """Raise SchemaOutdated naming the command that fixes it when the database is not at the head revision."""
    current, head = current_revision(engine), head_revision()
    if current != head:
        state = "not migrated" if current is None else f"at revision {current}, the code needs {head}"
        raise SchemaOutdated(f"the database schema is {state}: run `allot db upgrade` first")
