"""Provisioning clients API (platform admins): create and list clients, issue and revoke their SCIM tokens."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request, Response

from allotment.api.deps import DB, State, client_address, require
from allotment.core.permissions import PLATFORM_ADMIN, Principal
from allotment.federation.scim import clients
from allotment.federation.scim.schemas import (
    ScimClientCreate,
    ScimClientList,
    ScimClientOut,
    ScimTokenCreate,
    ScimTokenCreated,
    TokenId,
)

router = APIRouter(tags=["scim"])

Admin = Annotated[Principal, require(PLATFORM_ADMIN)]


def scim_url(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/scim/v2"


@router.get("/scim/clients", response_model=ScimClientList)
def list_scim_clients(_: Admin, db: DB) -> ScimClientList:
    items = clients.list_clients(db)
    return ScimClientList(items=[ScimClientOut(**c) for c in items], total=len(items))


@router.post("/scim/clients", status_code=201, response_model=ScimClientOut)
def create_scim_client(body: ScimClientCreate, principal: Admin, db: DB, request: Request) -> ScimClientOut:
    client = clients.create_client(db, principal, body.name, body.description, client_address(request))
    return ScimClientOut(**clients.client_out(db, client))


@router.get("/scim/clients/{name}", response_model=ScimClientOut)
def get_scim_client(name: str, _: Admin, db: DB) -> ScimClientOut:
    return ScimClientOut(**clients.client_out(db, clients.find_client(db, name)))


@router.post("/scim/clients/{name}/tokens", status_code=201, response_model=ScimTokenCreated)
def issue_scim_token(name: str, principal: Admin, db: DB, state: State, request: Request,
                     body: ScimTokenCreate | None = None) -> ScimTokenCreated:
    """A new bearer token for the client; the token is shown only in this answer."""
    client = clients.find_client(db, name)
    token, plain = clients.issue_token(db, state.secret_key, principal, client, body.label if body else None,
                                       client_address(request))
    return ScimTokenCreated(**clients.token_out(token), token=plain, scim_url=scim_url(request))


@router.delete("/scim/clients/{name}/tokens/{token_id}", status_code=204)
def revoke_scim_token(name: str, token_id: TokenId, principal: Admin, db: DB, request: Request) -> Response:
    client = clients.find_client(db, name)
    clients.revoke_token(db, principal, client, clients.find_token(db, client, token_id), client_address(request))
    return Response(status_code=204)
