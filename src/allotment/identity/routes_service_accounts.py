"""Service accounts API (platform admins): create, list, change, delete, and their credentials."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from allotment.api.deps import DB, State, client_address, require
from allotment.core.permissions import PLATFORM_ADMIN, Principal
from allotment.db import utcnow
from allotment.identity import credentials, service_accounts
from allotment.identity.access_schemas import (
    CredentialCreate,
    CredentialCreated,
    CredentialList,
    CredentialOut,
    ServiceAccountCreate,
    ServiceAccountCreated,
    ServiceAccountList,
    ServiceAccountOut,
    ServiceAccountUpdate,
)
from allotment.identity.routes_credentials import created_response

router = APIRouter(tags=["service accounts"])

Admin = Annotated[Principal, require(PLATFORM_ADMIN)]


def _out(db, account) -> ServiceAccountOut:
    return ServiceAccountOut(**service_accounts.describe(db, [account])[0].as_dict())


@router.get("/service-accounts", response_model=ServiceAccountList)
def list_service_accounts(_: Admin, db: DB,
                          include_deleted: Annotated[bool, Query()] = False) -> ServiceAccountList:
    views = service_accounts.list_service_accounts(db, include_deleted)
    return ServiceAccountList(items=[ServiceAccountOut(**v.as_dict()) for v in views], total=len(views))


@router.post("/service-accounts", status_code=201, response_model=ServiceAccountCreated)
def create_service_account(body: ServiceAccountCreate, principal: Admin, db: DB, state: State,
                           request: Request) -> ServiceAccountCreated:
    """Create it and, unless with_credential is false, its first credential, whose secret is shown only here."""
    source = client_address(request)
    account = service_accounts.create_service_account(db, body.name, principal, description=body.description,
                                                      allow_impersonation=body.allow_impersonation, source=source)
    created = None
    if body.with_credential:
        credential, secret = credentials.create_credential(db, state.secret_key, account, principal,
                                                           label="initial", source=source)
        created = created_response(request, credential, account, secret)
    return ServiceAccountCreated(**_out(db, account).model_dump(), credential=created)


@router.get("/service-accounts/{name}", response_model=ServiceAccountOut)
def get_service_account(name: str, _: Admin, db: DB) -> ServiceAccountOut:
    return _out(db, service_accounts.find_service_account(db, name))


@router.patch("/service-accounts/{name}", response_model=ServiceAccountOut)
def update_service_account(name: str, body: ServiceAccountUpdate, principal: Admin, db: DB,
                           request: Request) -> ServiceAccountOut:
    account = service_accounts.find_service_account(db, name)
    service_accounts.update_service_account(db, account, principal, description=body.description,
                                            allow_impersonation=body.allow_impersonation,
                                            fields=body.model_fields_set, source=client_address(request))
    return _out(db, account)


@router.delete("/service-accounts/{name}", status_code=204)
def delete_service_account(name: str, principal: Admin, db: DB, request: Request) -> Response:
    """Revokes its credentials; its jobs and history stay, and the name may be used again."""
    account = service_accounts.find_service_account(db, name)
    service_accounts.delete_service_account(db, account, principal, client_address(request))
    return Response(status_code=204)


@router.get("/service-accounts/{name}/credentials", response_model=CredentialList)
def list_service_account_credentials(name: str, _: Admin, db: DB) -> CredentialList:
    account = service_accounts.find_service_account(db, name)
    views, total = credentials.list_credentials(db, account.id, limit=1000)
    return CredentialList(items=[CredentialOut(**v.as_dict()) for v in views], total=total)


@router.post("/service-accounts/{name}/credentials", status_code=201, response_model=CredentialCreated)
def create_service_account_credential(name: str, principal: Admin, db: DB, state: State, request: Request,
                                      body: CredentialCreate | None = None) -> CredentialCreated:
    body = body or CredentialCreate()
    credentials.refuse_while_impersonating(principal)
    account = service_accounts.find_service_account(db, name)
    expires_at = credentials.resolve_expiry(body.expires_in, body.expires_at, utcnow(), body.both_expiries())
    credential, secret = credentials.create_credential(db, state.secret_key, account, principal, label=body.label,
                                                       expires_at=expires_at, source=client_address(request))
    return created_response(request, credential, account, secret)
