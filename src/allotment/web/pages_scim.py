"""SCIM provisioning clients (platform admins): the clients with their tokens, a form to create a client, and per
client a token issued (shown once, after a redirect, with the SCIM URL to paste into the identity provider) or
revoked."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from allotment.api.deps import DB, State, client_address, require
from allotment.core.permissions import PLATFORM_ADMIN, Principal
from allotment.errors import DomainError
from allotment.federation.scim import clients
from allotment.federation.scim.admin_routes import scim_url
from allotment.web.console import field_errors, redirect, render, stash_once, take_once

router = APIRouter()
Admin = Annotated[Principal, require(PLATFORM_ADMIN)]


def _page(request: Request, db, status: int = 200, **extra) -> Response:
    context = {"clients": clients.list_clients(db), "scim_url": scim_url(request), "values": {}, "errors": {},
               "issued": None}
    context.update(extra)
    response = render(request, "scim.html", context, status=status)
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/ui/scim")
def scim_page(request: Request, principal: Admin, db: DB, shown: str = "") -> Response:
    return _page(request, db, issued=take_once(request, principal.id, shown))


@router.post("/ui/scim")
def create_client(request: Request, principal: Admin, db: DB, name: Annotated[str, Form()] = "",
                  description: Annotated[str, Form()] = "") -> Response:
    try:
        client = clients.create_client(db, principal, name, description.strip() or None, client_address(request))
    except DomainError as exc:
        if not exc.errors:
            raise
        return _page(request, db, status=exc.status, errors=field_errors(exc.errors),
                     values={"name": name, "description": description})
    return redirect("/ui/scim", notice=f"Provisioning client {client.name} created. Issue it a token below.")


@router.post("/ui/scim/{name}/tokens")
def issue_token(request: Request, principal: Admin, db: DB, state: State, name: str,
                label: Annotated[str, Form()] = "") -> Response:
    client = clients.find_client(db, name)
    try:
        token, plain = clients.issue_token(db, state.secret_key, principal, client, label or None,
                                           client_address(request))
    except DomainError as exc:
        if not exc.errors:
            raise
        return _page(request, db, status=exc.status, errors=field_errors(exc.errors), values={"label": label})
    shown = stash_once(request, principal.id, {"client": client.name, "token": plain, "id": token.id})
    return redirect(f"/ui/scim?shown={shown}")


@router.post("/ui/scim/{name}/tokens/{token_id}/revoke")
def revoke_token(request: Request, principal: Admin, db: DB, name: str, token_id: int) -> Response:
    client = clients.find_client(db, name)
    clients.revoke_token(db, principal, client, clients.find_token(db, client, token_id), client_address(request))
    return redirect("/ui/scim", request=request,
                    notice=f"Token {token_id} of {client.name} revoked: requests with it are refused from now on.")
