"""create_app(settings): the API, the console and the background services of one allotment server."""

from __future__ import annotations

import functools
import importlib
import importlib.util
import logging
import time
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from sqlalchemy import text

from allotment import __version__, migrate
from allotment.api import problems
from allotment.api.body_limit import BodyLimitMiddleware
from allotment.api.deps import State, require
from allotment.api.state import AppState
from allotment.bootstrap import bootstrap
from allotment.core.permissions import PUBLIC
from allotment.db import make_engine, make_session_factory, transaction
from allotment.settings import Settings

log = logging.getLogger("allotment")

# Domains whose `routes` module (when present) exposes `router`, mounted under /api/v1.
DOMAINS = ["identity", "audit", "inventory", "quotas", "policies", "workloads", "accounting", "simulation",
           "federation", "workspaces", "projects", "storage", "access"]

# Route modules that are not a domain's `routes` (a second API inside a domain's package), mounted the same way.
ROUTE_MODULES = ["allotment.vaults.routes", "allotment.storage.targets_routes"]


def prepare_database(state: AppState) -> None:
    """SQLite migrates itself; PostgreSQL must be migrated with `allot db upgrade` first."""
    if state.settings.is_sqlite:
        state.settings.data_dir.mkdir(parents=True, exist_ok=True)
        if migrate.current_revision(state.engine) != migrate.head_revision():
            migrate.upgrade(state.settings.effective_database_url)
    else:
        migrate.check_schema(state.engine)
    with transaction(state.sessions) as session:
        bootstrap(session, state.settings)


def build_state(settings: Settings) -> AppState:
    engine = make_engine(settings.effective_database_url)
    return AppState(settings=settings, engine=engine, sessions=make_session_factory(engine),
                    secret_key=settings.ensure_secret_key())


def _system_router(registry: CollectorRegistry) -> APIRouter:
    router = APIRouter(tags=["system"])

    @router.get("/healthz", dependencies=[require(PUBLIC)])
    async def healthz() -> dict:
        return {"status": "ok", "version": __version__}

    @router.get("/readyz", dependencies=[require(PUBLIC)], responses={503: {
        "description": "The database is unreachable, or the scheduler has not run its first cycle yet",
        "content": {problems.PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}}})
    def readyz(state: State) -> Response:
        try:
            with state.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception:
            log.warning("readiness check: database unreachable", exc_info=True)
            return problems.problem(503, "Service unavailable", "the database is unreachable", "not_ready")
        # Ready means a submission is decided within a cycle: a loop still starting (its process importing, its first
        # load of the jobs) would hold every submission until it is up.
        scheduler = state.extras.get("scheduler")
        if scheduler is not None and not scheduler.ready():
            return problems.problem(503, "Service unavailable", "the scheduler is starting", "not_ready")
        return Response('{"status":"ready"}', media_type="application/json")

    # Prometheus' text format, declared as such so the published contract names what is sent.
    @router.get("/metrics", dependencies=[require(PUBLIC)], response_class=Response,
                responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}})
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return router


class MetricsMiddleware:
    """Request count and latency, as plain ASGI: Starlette's BaseHTTPMiddleware (`@app.middleware`) costs about a
    third of a trivial request's CPU time, which the authentication benchmark showed."""

    def __init__(self, app, requests_total: Counter, latency: Histogram):
        self.app = app
        self.requests_total = requests_total
        self.latency = latency
        self._counters: dict[tuple[str, int], object] = {}

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500  # what the client gets when the app raises before responding

        async def send_and_note_status(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note_status)
        finally:
            self.latency.observe(time.perf_counter() - start)
            key = (scope["method"], status)
            counter = self._counters.get(key)
            if counter is None:
                counter = self._counters[key] = self.requests_total.labels(scope["method"], str(status))
            counter.inc()


def create_app(settings: Settings | None = None, *, start_background: bool = True) -> FastAPI:
    settings = settings or Settings()
    state = build_state(settings)
    registry = CollectorRegistry()
    requests_total = Counter("allot_http_requests_total", "HTTP requests", ["method", "status"], registry=registry)
    latency = Histogram("allot_http_request_seconds", "HTTP request latency", registry=registry)
    state.extras["metrics_registry"] = registry

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        prepare_database(state)
        services = []
        if start_background:
            from allotment.services import start_services

            services = start_services(state)
        try:
            yield
        finally:
            for service in reversed(services):
                service.stop()
            state.engine.dispose()

    app = FastAPI(title="allotment", version=__version__, lifespan=lifespan, openapi_url="/api/openapi.json",
                  docs_url="/api/docs", redoc_url=None)
    app.state.allot = state
    problems.install(app)

    app.add_middleware(BodyLimitMiddleware)  # added before metrics, so refused bodies are counted too
    app.add_middleware(MetricsMiddleware, requests_total=requests_total, latency=latency)

    app.include_router(_system_router(registry))
    # The domain routes are built once per process and shared by every app (building a FastAPI route is costly).
    app.router.routes.extend(_domain_routes())
    from allotment.federation.scim import routes as scim_routes  # SCIM 2.0 at /scim/v2, outside /api/v1

    scim_routes.mount(app)
    web = _web_module()
    if web is not None:
        web.mount(app)
    return app


@functools.cache
def _domain_routes() -> tuple:
    combined = APIRouter()
    for domain in DOMAINS:
        name = f"allotment.{domain}.routes"
        if importlib.util.find_spec(name) is not None:
            combined.include_router(importlib.import_module(name).router, prefix="/api/v1")
    for name in ROUTE_MODULES:
        combined.include_router(importlib.import_module(name).router, prefix="/api/v1")
    return tuple(combined.routes)


def _web_module():
    if importlib.util.find_spec("allotment.web.routes") is None:
        return None
    return importlib.import_module("allotment.web.routes")
