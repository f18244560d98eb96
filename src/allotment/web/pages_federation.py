"""Single sign-on connections in the console (ClearML's Identity Providers): the table with active toggles, a form
per protocol to create or edit one, Test Provider before saving, deleting, and the site's password sign-in rule.
Platform admins only; the rules are the federation service's."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from allotment.api.deps import DB, State, client_address, require
from allotment.core.permissions import PLATFORM_ADMIN, Principal
from allotment.errors import DomainError
from allotment.federation import connections, flow, password_policy
from allotment.federation.mapping import MAPPED
from allotment.federation.models import OIDC, PROTOCOLS
from allotment.federation.oidc import ProviderError
from allotment.web.console import field_errors, redirect, render

router = APIRouter()
Admin = Annotated[Principal, require(PLATFORM_ADMIN)]
LABELS = {
    "web_app_url": "Web app URL", "issuer": "Issuer", "discovery_url": "Discovery URL", "client_id": "Client ID",
    "authorization_endpoint": "Authorization endpoint", "token_endpoint": "Access token endpoint",
    "revocation_endpoint": "Revocation endpoint", "userinfo_endpoint": "User info endpoint", "jwks_uri": "JWKS URI",
    "userinfo_from_id_token": "Obtain user information from the identity token",
    "require_email_verified": "Email verification (only users whose email_verified is true)",
    "create_users": "Create new users on first login", "verify_signature": "Verify token signature (JWKS)",
    "code_challenge_method": "Code challenge method", "scopes": "Standard scopes",
    "additional_scopes": "Additional scopes", "sync_groups": "User groups synchronisation",
    "entity_id": "Entity ID", "idp_metadata": "IdP metadata (XML)",
    "require_signed_assertions": "Require signed assertions", "sign_requests": "Sign requests sent to the IdP",
    "certificate": "Public key (certificate, PEM)",
}


def _form_values(form, protocol: str) -> tuple[dict[str, Any], dict[str, Any], bool]:
    """The settings, secrets and key-generation wish a submitted form holds. A secret left empty stays as it is;
    its 'clear' box clears it."""
    values: dict[str, Any] = {}
    for key in connections.FIELDS_OF[protocol]:
        if key in connections.FLAGS:
            values[key] = form.get(key) == "true"
        elif key == "claims":
            values[key] = {name: str(form.get(f"claims.{name}", "")).strip() for name in MAPPED}
        else:
            values[key] = str(form.get(key, "")).strip() or None
    secrets: dict[str, Any] = {}
    for key in connections.SECRETS[protocol]:
        if form.get(f"clear_{key}") == "true":
            secrets[key] = None
        elif str(form.get(key, "")).strip():
            secrets[key] = str(form.get(key))
    return values, secrets, form.get("generate_key_pair") == "true"


def _list_page(request: Request, db, state, status: int = 200, **extra) -> Response:
    items = [connections.view(state.secret_key, c, str(request.base_url)) for c in connections.list_connections(db)]
    from allotment.identity.models import User
    from allotment.identity.service import active_admin_ids

    admins = sorted(u.username for i in active_admin_ids(db) if (u := db.get(User, i)) is not None)
    context = {"connections": items, "policy": password_policy.view(db), "admins": admins, "errors": {}}
    context.update(extra)
    return render(request, "sso/list.html", context, status=status)


def _form_page(request: Request, protocol: str, values: dict, status: int = 200, **extra) -> Response:
    values = {k: ", ".join(v) if isinstance(v, list) else v for k, v in values.items()}  # scopes as one text
    context = {"protocol": protocol, "protocols": PROTOCOLS, "providers": connections.PROVIDERS[protocol],
               "fields": connections.FIELDS_OF[protocol], "labels": LABELS, "flags": connections.FLAGS,
               "mapped": MAPPED, "methods": connections.CODE_CHALLENGE_METHODS, "values": values, "errors": {},
               "secret_names": connections.SECRETS[protocol], "connection": None, "callback_path":
               connections.CALLBACK_PATH, "acs_path": connections.ACS_PATH}
    context.update(extra)
    return render(request, "sso/form.html", context, status=status)


@router.get("/ui/sso")
def sso_page(request: Request, principal: Admin, db: DB, state: State) -> Response:
    return _list_page(request, db, state)


@router.get("/ui/sso/new")
def new_connection_page(request: Request, principal: Admin, protocol: str = OIDC) -> Response:
    protocol = protocol if protocol in PROTOCOLS else OIDC
    values = {"name": "", "provider": "custom", "active": True, **connections.DEFAULTS[protocol]}
    return _form_page(request, protocol, values)


async def _test(request: Request, state, principal: Principal, draft: flow.Draft) -> Response | str:
    try:
        url, _, _ = await run_in_threadpool(flow.begin, state, draft, flow.TEST, str(request.base_url), "/ui/sso",
                                            None, principal.id)
    except ProviderError as exc:
        return str(exc)
    return redirect(url)


@router.post("/ui/sso/new")
async def create_connection(request: Request, principal: Admin, db: DB, state: State) -> Response:
    form = await request.form()
    protocol = str(form.get("protocol", OIDC))
    protocol = protocol if protocol in PROTOCOLS else OIDC
    values, secrets, generate = _form_values(form, protocol)
    shown = {**values, "name": form.get("name", ""), "provider": form.get("provider", "custom"),
             "active": form.get("active") == "true"}
    try:
        if form.get("action") == "test":
            settings, secret_values = connections.draft(protocol, shown["provider"], values, secrets, generate)
            tested = await _test(request, state, principal, flow.Draft(None, str(shown["name"]) or "(new)", protocol,
                                                                       settings, secret_values))
            if isinstance(tested, str):
                return _form_page(request, protocol, shown, 502, test_error=tested)
            return tested
        created = connections.create_connection(db, state.secret_key, principal, shown["name"], protocol,
                                                shown["provider"], values, secrets, shown["active"], generate,
                                                client_address(request))
    except DomainError as exc:
        if not exc.errors:
            raise
        return _form_page(request, protocol, shown, exc.status, errors=field_errors(exc.errors))
    return redirect(f"/ui/sso/{created.id}", notice=f"Connection {created.name} created.")


@router.get("/ui/sso/tests/{test_id}")
def test_result_page(request: Request, principal: Admin, db: DB, test_id: int) -> Response:
    return render(request, "sso/test.html", {"result": flow.test_result(db, test_id, principal.id)})


@router.post("/ui/sso/password-login")
def set_password_login(request: Request, principal: Admin, db: DB, state: State,
                       enabled: Annotated[bool, Form()] = False,
                       break_glass: Annotated[str, Form()] = "") -> Response:
    names = [n.strip() for n in break_glass.replace(",", " ").split() if n.strip()]
    try:
        password_policy.update(db, principal, enabled, names, client_address(request))
    except DomainError as exc:
        if not exc.errors:
            raise
        return _list_page(request, db, state, exc.status, errors=field_errors(exc.errors))
    return redirect("/ui/sso", notice="Password sign-in is " + ("on." if enabled else "off, but for break-glass "
                                                                                     "accounts."))


@router.get("/ui/sso/{connection_id}")
def connection_page(request: Request, principal: Admin, db: DB, state: State, connection_id: int) -> Response:
    connection = connections.find_connection(db, connection_id)
    shown = connections.view(state.secret_key, connection, str(request.base_url))
    values = {**shown["settings"], "name": connection.name, "provider": connection.provider,
              "active": connection.active}
    return _form_page(request, connection.protocol, values, connection=shown,
                      linked=flow.linked_accounts(db, connection.id))


@router.post("/ui/sso/{connection_id}")
async def update_connection(request: Request, principal: Admin, db: DB, state: State,
                            connection_id: int) -> Response:
    connection = connections.find_connection(db, connection_id)
    form = await request.form()
    protocol = connection.protocol
    values, secrets, generate = _form_values(form, protocol)
    changes = {"name": str(form.get("name", "")), "provider": str(form.get("provider", connection.provider)),
               "active": form.get("active") == "true"}
    shown_connection = connections.view(state.secret_key, connection, str(request.base_url))
    shown = {**values, **changes}
    try:
        if form.get("action") == "test":
            settings, secret_values = connections.draft(protocol, changes["provider"], values, secrets, generate,
                                                        connection, connections.secrets_of(state.secret_key,
                                                                                           connection))
            tested = await _test(request, state, principal, flow.Draft(None, changes["name"] or connection.name,
                                                                       protocol, settings, secret_values,
                                                                       ref_id=connection.id))
            if isinstance(tested, str):
                return _form_page(request, protocol, shown, 502, connection=shown_connection, test_error=tested)
            return tested
        connections.update_connection(db, state.secret_key, principal, connection, changes, values, secrets,
                                      generate, client_address(request))
    except DomainError as exc:
        if not exc.errors:
            raise
        return _form_page(request, protocol, shown, exc.status, connection=shown_connection,
                          errors=field_errors(exc.errors))
    return redirect(f"/ui/sso/{connection.id}", notice=f"Connection {connection.name} saved.")


@router.post("/ui/sso/{connection_id}/active")
def toggle_connection(request: Request, principal: Admin, db: DB, state: State, connection_id: int,
                      active: Annotated[bool, Form()] = False) -> Response:
    connection = connections.find_connection(db, connection_id)
    connections.update_connection(db, state.secret_key, principal, connection, {"active": active}, {}, {},
                                  source=client_address(request))
    return redirect("/ui/sso", request=request,
                    notice=f"Sign-in through {connection.name} is {'on' if active else 'off'}.")


@router.post("/ui/sso/{connection_id}/delete")
def delete_connection(request: Request, principal: Admin, db: DB, connection_id: int) -> Response:
    connection = connections.find_connection(db, connection_id)
    name = connection.name
    connections.delete_connection(db, principal, connection, client_address(request))
    return redirect("/ui/sso", request=request, notice=f"Connection {name} deleted; its users keep their accounts.")
