"""The server's foundation: health, readiness, metrics, bootstrap, problem+json errors, migrations."""

from __future__ import annotations

from sqlalchemy import inspect

from allotment import migrate
from allotment.models import metadata


def test_health_ready_metrics(client):
    assert client.get("/healthz").json()["status"] == "ok"
    assert client.get("/readyz").json() == {"status": "ready"}
    body = client.get("/metrics").text
    assert "allot_http_requests_total" in body


def test_openapi_is_served(client):
    spec = client.get("/api/openapi.json").json()
    assert "/api/v1/auth/login" in spec["paths"]


def test_bootstrap_admin_is_platform_admin_and_cluster_admin(client, admin_headers):
    me = client.get("/api/v1/auth/whoami", headers=admin_headers).json()
    assert me["username"] == "admin"
    assert me["is_platform_admin"] is True
    assert me["cluster_roles"] == {"local": "admin"}
    assert "admins" in me["groups"]


def test_unauthenticated_request_gets_problem_json(client):
    r = client.get("/api/v1/auth/whoami")
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["status"] == 401


def test_validation_error_names_the_field(client):
    r = client.post("/api/v1/auth/login", json={"username": ""})
    assert r.status_code == 422
    fields = {e["field"] for e in r.json()["errors"]}
    assert fields == {"username", "password"}


def test_unknown_route_is_problem_json(client):
    r = client.get("/api/v1/nope")
    assert r.status_code == 404 and r.json()["title"] == "Not found"


def test_wrong_password_is_rejected_without_detail_leak(client):
    r = client.post("/api/v1/auth/login", json={"username": "admin", "password": "wrong-Passw0rd!"})
    assert r.status_code == 401
    assert r.json()["detail"].startswith("wrong username or password")


def test_migrations_match_models(app, client):
    """The schema the migrations build is the schema the models describe."""
    engine = app.state.allot.engine
    assert migrate.current_revision(engine) == migrate.head_revision()
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diffs == [], "models changed without a migration: run `make migration`"
    assert set(inspect(engine).get_table_names()) >= set(metadata.tables)
