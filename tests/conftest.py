"""Shared fixtures: an app on SQLite or on the PostgreSQL that scripts/test.sh starts, and signed-in clients."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

# The scheduler core runs from its sources in a test process unless ALLOTMENT_CORE_EXT is set (allotment/
# compiled_core.py): the core's white-box tests (tests/unit/core) subclass and patch its classes, which compiled
# classes do not allow. scripts/test.sh runs every other test against the compiled build, as the server runs.
os.environ.setdefault("ALLOTMENT_CORE_EXT", "off")

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from allotment.api.app import create_app
from allotment.settings import Settings

ADMIN_PASSWORD = "Adm1n-password!"

# Real argon2, at its cheapest cost: hashing dominates otherwise (production uses argon2-cffi's defaults).
from allotment.identity.secrets import configure_password_hashing

configure_password_hashing(time_cost=1, memory_cost_kib=1024)
PG_URL = os.environ.get("ALLOT_TEST_POSTGRES_URL")


def _backends() -> list:
    params = ["sqlite"]
    if PG_URL or os.environ.get("ALLOT_TEST_REQUIRE_POSTGRES"):
        params.append(pytest.param("postgres", marks=pytest.mark.postgres))
    return params


def _pg_url(name: str) -> str:
    base, _, query = PG_URL.partition("?")
    return f"{base.rsplit('/', 1)[0]}/{name}?{query}"


_templates: dict[str, str] = {}


def _postgres_template() -> str:
    """A migrated database, made once per test process, that each test's database is copied from."""
    if "postgres" not in _templates:
        name = f"tmpl_{uuid.uuid4().hex[:12]}"
        admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        from allotment.migrate import upgrade

        upgrade(_pg_url(name))
        _templates["postgres"] = name
    return _templates["postgres"]


def _fresh_postgres_url() -> str:
    """A new migrated database per test on the shared test server, so tests never see each other's rows."""
    if not PG_URL:
        pytest.fail("ALLOT_TEST_POSTGRES_URL is not set: run the suite with `make test`")
    template = _postgres_template()
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    admin.dispose()
    return _pg_url(name)


def _sqlite_template(tmp_root: Path) -> Path:
    """A migrated SQLite file, made once per test process, copied into each test's data directory."""
    if "sqlite" not in _templates:
        path = tmp_root / f"template-{uuid.uuid4().hex[:8]}.db"
        from allotment.migrate import upgrade

        upgrade(f"sqlite:///{path}")
        _templates["sqlite"] = str(path)
    return Path(_templates["sqlite"])


def make_settings(tmp_path: Path, backend: str = "sqlite", **overrides) -> Settings:
    data_dir = tmp_path / "var"
    values = {
        "data_dir": data_dir,
        "secret_key": "test-secret-key",
        "bootstrap_admin_email": "admin@example.com",
        "bootstrap_admin_username": "admin",
        "bootstrap_admin_password": ADMIN_PASSWORD,
        # Tests lay out their own quotas (tests/integration/test_first_job.py tests the default one).
        "bootstrap_default_quota": False,
        "scheduler_tick_s": 0.05,
        # Tests drive the scheduler loop themselves (allotment.scheduler.loop.Scheduler.run_cycle) when they need it.
        "scheduler_enabled": False,
    }
    if backend == "postgres":
        values["database_url"] = _fresh_postgres_url()
    else:
        import shutil

        data_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy(_sqlite_template(tmp_path.parent), data_dir / "allotment.db")
    values.update(overrides)
    return Settings(**values)


@pytest.fixture(params=_backends())
def backend(request) -> str:
    return request.param


@pytest.fixture
def settings(tmp_path, backend) -> Settings:
    return make_settings(tmp_path, backend)


@pytest.fixture
def app(settings):
    return create_app(settings)


@pytest.fixture
def client(app) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


def login(client: TestClient, username: str, password: str) -> dict[str, str]:
    r = client.post("/api/v1/auth/login", json={"username": username, "password": password})
    assert r.status_code == 200, r.text
    client.cookies.clear()  # tests authenticate with explicit headers only
    return {"Authorization": f"Bearer {r.json()['token']}"}


@pytest.fixture
def admin_headers(client) -> dict[str, str]:
    return login(client, "admin", ADMIN_PASSWORD)
