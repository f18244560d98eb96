"""The API keeps its published contract: Schemathesis drives every operation of /api/openapi.json in process.

Each operation runs twice, as the bootstrap admin and as an ordinary user, on a fresh SQLite database of its own, with
every Schemathesis check (no 5xx, only declared status codes and media types, responses matching their schemas, valid
data accepted and invalid data refused, 405 with `Allow`, authentication not ignored, ...). Examples are bounded and
derandomised, so a run is repeatable and the module fits in `make test`: CONTRACT_EXAMPLES raises the budget for a
deeper local run, CONTRACT_SEED changes the seed.

A fresh database per (operation, role) is what keeps destructive operations honest without excluding them: an
operation that logs the caller out, changes its password or deletes what it finds can only spoil its own examples
(later ones then see 401 or 404, which the contract declares too), never another operation's.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import positive_data_acceptance
from user_helpers import PASSWORD, login, make_user

from allotment.api import problems
from allotment.api.app import create_app
from allotment.settings import Settings
from conftest import ADMIN_PASSWORD, make_settings

EXAMPLES = int(os.environ.get("CONTRACT_EXAMPLES", "10"))
SEED = int(os.environ.get("CONTRACT_SEED", "20240607"))


# Every check, on its defaults, but for one addition: a request refused with 413 by the body-size limit (before
# its body is read, so before it could be validated) counts as rejected when it was schema-violating.
CHECKS = {"negative_data_rejection": {"expected-statuses": [
    "400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429"]}}

# Each test signs its requests itself, as the admin or as the user. Generated Authorization values (or their removal,
# in negative cases) would be overridden by those headers and make negative cases that are in fact valid.
GENERATION = {"with-security-parameters": False}


class WithoutLifespan:
    """Hands requests to the app, counting them, but declines the ASGI lifespan: the fixture has already started the
    app's database, and Schemathesis would otherwise keep every app it saw alive until the process exits."""

    def __init__(self, app):
        self.app = app
        self.requests = 0

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            raise RuntimeError("lifespan is run by the test fixture")  # refused before any message: unsupported
        self.requests += 1
        await self.app(scope, receive, send)


def contract_of(app):
    """Schemathesis's view of `app`: the OpenAPI document it serves at /api/openapi.json, with this module's
    configuration. Loading through ASGI also sends Schemathesis's own probes (the ignored_auth check's replays
    without credentials) in process, to the app a test passes."""
    config = schemathesis.Config.from_dict({"seed": SEED, "checks": CHECKS, "generation": GENERATION})
    return schemathesis.openapi.from_asgi("/api/openapi.json", WithoutLifespan(app), config=config)


def _load_schema():
    # Building the document needs no database, so this app is never started.
    with tempfile.TemporaryDirectory() as data_dir:
        return contract_of(create_app(Settings(data_dir=Path(data_dir), secret_key="contract-schema-only"),
                                      start_background=False))


schema = _load_schema()


# The ignored_auth check replays successful requests with a missing and an invalid token, all from one client
# address, a few hundred times per operation. Per-source throttling of failed credentials would answer 429 and fail
# that check; it has tests of its own (test_login_abuse.py), so here its budget is set beyond what a run sends.
UNTHROTTLED = {"credential_failures_burst": 1_000_000, "credential_failures_per_minute": 1_000_000.0}


@pytest.fixture(params=["admin", "user"])
def signed_in(request, tmp_path):
    """(app, headers): a fresh app and database with the admin and an ordinary user, signed in as `request.param`."""
    app = create_app(make_settings(tmp_path, **UNTHROTTLED), start_background=False)
    with TestClient(app) as client:
        admin = login(client, "admin", ADMIN_PASSWORD)
        if request.param == "admin":
            headers = admin
        else:
            make_user(client, admin, "contract-user")
            headers = login(client, "contract-user", PASSWORD)
    counted = WithoutLifespan(app)
    yield counted, headers
    request.node.user_properties.append(("requests", counted.requests))  # in --junitxml reports


# Operations whose body carries a document no JSON schema can describe: SAML IdP metadata is XML that pysaml2 reads,
# so a body the schema allows may still be refused with 422 naming the field. Only the check that valid data is
# accepted is left out for them; every other check (no 5xx, declared statuses and schemas, invalid data refused...)
# still runs.
OPAQUE_DOCUMENTS = {("POST", "/api/v1/sso/connections"), ("POST", "/api/v1/sso/test")}
# Operations with rules between two fields or parameters that OpenAPI cannot state (a period whose end must follow its
# start; the fields of a job's shape): a body the schema allows may break one and is refused with 422 naming the field.
CROSS_PARAMETER_RULES = {("GET", "/api/v1/usage"), ("GET", "/api/v1/usage/pools"), ("GET", "/api/v1/exports/usage.csv"),
                         # A job's shape: gpu or gpus_per_node, not both; gpu with nodes > 1 only per node; GPU models
                         # without a pool or a profile; a profile without nodes (workloads/shape.py).
                         ("POST", "/api/v1/jobs"), ("POST", "/api/v1/jobs/batch"),
                         # A vault's owner: at most one of user, service_account and group (vaults/service.py).
                         ("GET", "/api/v1/vaults"), ("POST", "/api/v1/vaults"),
                         # A storage target's fields depend on its kind (storage/targets.py).
                         ("POST", "/api/v1/storage/targets"), ("PATCH", "/api/v1/storage/targets/{name}"),
                         # A storage host's fields depend on its kind; a folder's permission is for group folders
                         # (storage/hosts.py, storage/folders.py).
                         ("POST", "/api/v1/storage-hosts"), ("PATCH", "/api/v1/storage-hosts/{name}"),
                         ("POST", "/api/v1/folders"),
                         # An access rule's resource: with its type; by path or id in a workspace, by name for a
                         # quota, which takes no workspace (access/service.py).
                         ("GET", "/api/v1/access-rules"), ("POST", "/api/v1/access-rules"),
                         ("PATCH", "/api/v1/access-rules/{rule}")}


@schema.parametrize()
@settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
def test_operation_keeps_its_contract(case, signed_in):
    app, headers = signed_in
    operation = (case.method, case.path)
    excluded = [positive_data_acceptance] if operation in OPAQUE_DOCUMENTS | CROSS_PARAMETER_RULES else None
    case.call_and_validate(app=app, headers=headers, excluded_checks=excluded)


def test_the_harness_fails_on_a_server_error_and_an_undeclared_status():
    """The checks above can fail: a route that crashes and one that answers a status its contract does not declare,
    declared the way every API route is (problems.install), are each caught."""
    app = FastAPI(openapi_url="/api/openapi.json")
    problems.install(app)

    @app.get("/crash")
    def crash() -> dict:
        raise RuntimeError("deliberate crash")

    @app.get("/teapot")
    def teapot() -> JSONResponse:
        return JSONResponse({}, status_code=418)

    contract = contract_of(app)
    # A 500 reaches the test as the exception itself: Starlette sends the problem response, then re-raises.
    with pytest.raises(RuntimeError, match="deliberate crash"):
        contract["/crash"]["GET"].Case().call_and_validate(app=app)
    with pytest.raises(FailureGroup) as undeclared:
        contract["/teapot"]["GET"].Case().call_and_validate(app=app)
    assert [type(e).__name__ for e in undeclared.value.exceptions] == ["UndefinedStatusCode"]


def test_every_error_response_is_a_declared_problem():
    """What the contract run relies on, stated directly: errors are problem+json, signed-in operations say so."""
    document = schema.raw_schema
    assert "Problem" in document["components"]["schemas"]
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                if int(status) >= 400:
                    assert list(response["content"]) == ["application/problem+json"], (method, path, status)
            if operation.get("security"):
                assert {"401", "403"} <= set(operation["responses"]), (method, path)
            if "requestBody" in operation:
                assert {"400", "413", "422"} <= set(operation["responses"]), (method, path)


@pytest.mark.parametrize(("method", "path", "allow"), [
    ("PUT", "/api/v1/users", "GET, HEAD, POST"),
    ("DELETE", "/api/v1/jobs/1", "GET, HEAD"),
    # Paths where a literal route sits beside a parameterised one name the literal resource.
    ("GET", "/api/v1/jobs/batch", "POST"),
    ("GET", "/api/v1/users/import", "POST"),
])
def test_a_405_names_the_methods_of_the_resource(client, admin_headers, method, path, allow):
    response = client.request(method, path, headers=admin_headers)
    assert response.status_code == 405, response.text
    assert response.headers["allow"] == allow
    assert response.headers["content-type"] == "application/problem+json"
