"""Credentials API: create (secret shown once), list, relabel, revoke. Users manage their own, platform admins anyone's."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response

from allotment.api.deps import DB, State, client_address, require
from allotment.api.fields import Offset
from allotment.core.permissions import AUTHENTICATED, Principal
from allotment.db import utcnow
from allotment.errors import Forbidden, NotFound
from allotment.identity import credentials
from allotment.identity.access_schemas import (
    CredentialCreate,
    CredentialCreated,
    CredentialList,
    CredentialOut,
    CredentialUpdate,
)
from allotment.identity.models import User
from allotment.identity.service import find_user

router = APIRouter(tags=["credentials"])
CredentialStatus = Literal["active", "revoked", "expired"]  # credentials.STATUSES

Authenticated = Annotated[Principal, require(AUTHENTICATED)]


def server_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def created_response(request: Request, credential, owner: User, secret: str) -> CredentialCreated:
    url = server_url(request)
    return CredentialCreated(
        access_key=credential.access_key, secret_key=secret, label=credential.label, owner=owner.username,
        created_at=credential.created_at, expires_at=credential.expires_at,
        cli_snippet=credentials.cli_snippet(url, credential.access_key),
        env_snippet=credentials.env_snippet(url, credential.access_key, secret),
    )


@router.get("/credentials", response_model=CredentialList)
def list_credentials(
    principal: Authenticated, db: DB,
    user: Annotated[str | None, Query(description="whose (platform admins: anyone's)")] = None,
    all: Annotated[bool, Query(description="everyone's (platform admins only)")] = False,
    status: Annotated[CredentialStatus | None, Query(description="active, revoked or expired")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Offset = 0,
) -> CredentialList:
    owner_id: int | None = principal.id
    if all and not principal.is_platform_admin:
        raise Forbidden("only platform admins may list everyone's credentials")
    if all:
        owner_id = None
    elif user is not None:
        try:
            owner_id = find_user(db, user).id
        except NotFound:
            if not principal.is_platform_admin:  # the same answer as for someone else's: no probing for accounts
                raise Forbidden("only platform admins may list other users' credentials") from None
            raise
        if owner_id != principal.id and not principal.is_platform_admin:
            raise Forbidden("only platform admins may list other users' credentials")
    views, total = credentials.list_credentials(db, owner_id, status, limit, offset)
    return CredentialList(items=[CredentialOut(**v.as_dict()) for v in views], total=total)


@router.post("/credentials", status_code=201, response_model=CredentialCreated)
def create_credential(principal: Authenticated, db: DB, state: State, request: Request,
                      body: CredentialCreate | None = None) -> CredentialCreated:
    body = body or CredentialCreate()
    credentials.refuse_while_impersonating(principal)
    owner = db.get(User, principal.id)
    if body.user is not None:
        owner = find_user(db, body.user)
        if owner.id != principal.id and not principal.is_platform_admin:
            raise Forbidden("only platform admins may create credentials for other users")
    expires_at = credentials.resolve_expiry(body.expires_in, body.expires_at, utcnow(), body.both_expiries())
    credential, secret = credentials.create_credential(db, state.secret_key, owner, principal, label=body.label,
                                                       expires_at=expires_at, source=client_address(request))
    return created_response(request, credential, owner, secret)


@router.get("/credentials/{access_key}", response_model=CredentialOut)
def get_credential(access_key: str, principal: Authenticated, db: DB) -> CredentialOut:
    credential, owner = credentials.credential_for(db, principal, access_key)
    return CredentialOut(**credentials.CredentialView(credential, owner.username, owner.kind).as_dict())


@router.patch("/credentials/{access_key}", response_model=CredentialOut)
def relabel_credential(access_key: str, body: CredentialUpdate, principal: Authenticated, db: DB,
                       request: Request) -> CredentialOut:
    credentials.refuse_while_impersonating(principal)
    credential, owner = credentials.credential_for(db, principal, access_key)
    credentials.relabel(db, credential, body.label, principal, client_address(request))
    return CredentialOut(**credentials.CredentialView(credential, owner.username, owner.kind).as_dict())


@router.delete("/credentials/{access_key}", status_code=204)
def revoke_credential(access_key: str, principal: Authenticated, db: DB, request: Request) -> Response:
    """Revoke; it stops authenticating with the next request. Revoking twice is not an error."""
    credentials.refuse_while_impersonating(principal)
    credential, owner = credentials.credential_for(db, principal, access_key)
    credentials.revoke(db, credential, owner, principal, client_address(request))
    return Response(status_code=204)
