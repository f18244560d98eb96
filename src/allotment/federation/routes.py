"""Single sign-on API: provider connections (platform admins), Test Provider, the site's password sign-in rule,
the providers offered on the login page, and the CLI's code exchange. The browser's side of a login (redirects,
callback, ACS) is the console's: web/pages_auth.py."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request, Response

from allotment.api import problems
from allotment.api.deps import DB, State, client_address, require
from allotment.api.fields import IdPath
from allotment.core.permissions import PLATFORM_ADMIN, PUBLIC, Principal
from allotment.federation import connections, flow, password_policy
from allotment.federation.models import IdentityConnection
from allotment.federation.oidc import ProviderError
from allotment.federation.schemas import (
    CodeExchange,
    CodeExchangeOut,
    ConnectionIn,
    ConnectionList,
    ConnectionOut,
    ConnectionUpdate,
    PasswordLoginIn,
    PasswordLoginOut,
    ProviderButton,
    ProviderList,
    TestResult,
    TestStart,
)

router = APIRouter(tags=["single sign-on"])
Admin = Annotated[Principal, require(PLATFORM_ADMIN)]


def _out(state, connection: IdentityConnection, request: Request) -> ConnectionOut:
    return ConnectionOut(**connections.view(state.secret_key, connection, str(request.base_url)))


def _parts(body: ConnectionIn | ConnectionUpdate) -> tuple[dict[str, Any], dict[str, Any]]:
    values = body.settings.model_dump(exclude_unset=True) if body.settings is not None else {}
    secrets = body.secrets.model_dump(exclude_unset=True) if body.secrets is not None else {}
    return values, secrets


def login_url(connection_id: int) -> str:
    return f"/login/sso/{connection_id}"


@router.get("/sso/providers", response_model=ProviderList, dependencies=[require(PUBLIC)])
def providers(db: DB) -> ProviderList:
    """The active connections, as the login page offers them, and whether password sign-in is on."""
    items = [ProviderButton(id=c.id, name=c.name, protocol=c.protocol, login_url=login_url(c.id))
             for c in connections.list_connections(db, active_only=True)]
    return ProviderList(items=items, password_login=password_policy.view(db)["enabled"])


@router.get("/sso/connections", response_model=ConnectionList)
def list_connections(principal: Admin, db: DB, state: State, request: Request) -> ConnectionList:
    return ConnectionList(items=[_out(state, c, request) for c in connections.list_connections(db)])


@router.post("/sso/connections", response_model=ConnectionOut, status_code=201)
def create_connection(body: ConnectionIn, principal: Admin, db: DB, state: State, request: Request) -> ConnectionOut:
    values, secrets = _parts(body)
    created = connections.create_connection(db, state.secret_key, principal, body.name, body.protocol, body.provider,
                                            values, secrets, body.active, body.generate_key_pair,
                                            client_address(request))
    return _out(state, created, request)


@router.get("/sso/connections/{connection}", response_model=ConnectionOut)
def get_connection(connection: str, principal: Admin, db: DB, state: State, request: Request) -> ConnectionOut:
    return _out(state, connections.find_connection(db, connection), request)


@router.patch("/sso/connections/{connection}", response_model=ConnectionOut)
def update_connection(connection: str, body: ConnectionUpdate, principal: Admin, db: DB, state: State,
                      request: Request) -> ConnectionOut:
    found = connections.find_connection(db, connection)
    values, secrets = _parts(body)
    changes = body.model_dump(exclude_unset=True, include={"name", "protocol", "provider", "active"})
    updated = connections.update_connection(db, state.secret_key, principal, found, changes, values, secrets,
                                            body.generate_key_pair, client_address(request))
    return _out(state, updated, request)


@router.delete("/sso/connections/{connection}", status_code=204)
def delete_connection(connection: str, principal: Admin, db: DB, request: Request) -> Response:
    connections.delete_connection(db, principal, connections.find_connection(db, connection),
                                  client_address(request))
    return Response(status_code=204)


def start_test(state, draft: flow.Draft, principal: Principal, base_url: str) -> TestStart:
    """Test Provider: the URL to open in a browser; the outcome is then read from /sso/tests/{id}. A provider that
    cannot even be reached (discovery, metadata) answers at once with its error."""
    try:
        url, _, test_id = flow.begin(state, draft, flow.TEST, base_url, admin_id=principal.id)
    except ProviderError as exc:
        return TestStart(status="error", error=str(exc))
    return TestStart(status="pending", test_id=test_id, authorize_url=url)


@router.post("/sso/test", response_model=TestStart)
def test_new_connection(body: ConnectionIn, principal: Admin, state: State, request: Request) -> TestStart:
    """Test Provider for a connection not saved yet: nothing is stored but the test itself."""
    values, secrets = _parts(body)
    settings, secret_values = connections.draft(body.protocol, body.provider, values, secrets, body.generate_key_pair)
    draft = flow.Draft(None, body.name, body.protocol, settings, secret_values)
    return start_test(state, draft, principal, str(request.base_url))


@router.post("/sso/connections/{connection}/test", response_model=TestStart)
def test_connection(connection: str, principal: Admin, db: DB, state: State, request: Request,
                    body: ConnectionUpdate | None = None) -> TestStart:
    """Test Provider for a saved connection, with the changes in the body (if any) applied but not saved."""
    found = connections.find_connection(db, connection)
    current_secrets = connections.secrets_of(state.secret_key, found)
    values, secrets = _parts(body) if body is not None else ({}, {})
    protocol = body.protocol if body is not None and body.protocol else found.protocol
    provider = body.provider if body is not None and body.provider else found.provider
    settings, secret_values = connections.draft(protocol, provider, values, secrets,
                                                bool(body and body.generate_key_pair), found, current_secrets)
    name = body.name if body is not None and body.name else found.name
    draft = flow.Draft(None, name, protocol, settings, secret_values, ref_id=found.id)
    return start_test(state, draft, principal, str(request.base_url))


@router.get("/sso/tests/{test_id}", response_model=TestResult)
def test_outcome(test_id: IdPath, principal: Admin, db: DB) -> TestResult:
    return TestResult(**flow.test_result(db, test_id, principal.id))


@router.get("/sso/password-login", response_model=PasswordLoginOut)
def get_password_login(principal: Admin, db: DB) -> PasswordLoginOut:
    return PasswordLoginOut(**password_policy.view(db))


@router.put("/sso/password-login", response_model=PasswordLoginOut)
def set_password_login(body: PasswordLoginIn, principal: Admin, db: DB, request: Request) -> PasswordLoginOut:
    return PasswordLoginOut(**password_policy.update(db, principal, body.enabled, body.break_glass,
                                                     client_address(request)))


@router.post("/auth/sso/token", response_model=CodeExchangeOut, dependencies=[require(PUBLIC)],
             responses={401: problems.problem_response(401)})
def exchange_code(body: CodeExchange, state: State) -> CodeExchangeOut:
    """The CLI's last step: the one-time code its loopback address received, with its PKCE verifier."""
    return CodeExchangeOut(token=flow.exchange_cli_code(state, body.code, body.code_verifier))
