"""Service accounts (ClearML): API-only principals that never sign in here. List, create, delete, and on each one's
page create and revoke its credentials (the secret shown once, after a redirect). Admins only."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from allotment.api.deps import DB, State, client_address, require
from allotment.core.permissions import PLATFORM_ADMIN, Principal
from allotment.db import utcnow
from allotment.errors import DomainError, ValidationFailed, invalid
from allotment.identity import credentials, service_accounts
from allotment.web.console import field_errors, redirect, render, stash_once, take_once
from allotment.web.pages_credentials import EXPIRY_CHOICES, LABEL_MAX, created_view

router = APIRouter()
Admin = Annotated[Principal, require(PLATFORM_ADMIN)]


def _page(request: Request, db, status: int = 200, **extra) -> Response:
    context = {"accounts": [v.as_dict() for v in service_accounts.list_service_accounts(db)], "values": {},
               "errors": {}}
    context.update(extra)
    return render(request, "service_accounts.html", context, status=status)


@router.get("/ui/service-accounts")
def service_accounts_page(request: Request, principal: Admin, db: DB) -> Response:
    return _page(request, db)


@router.post("/ui/service-accounts")
def create_service_account(request: Request, principal: Admin, db: DB, name: Annotated[str, Form()] = "",
                           description: Annotated[str, Form()] = "",
                           allow_impersonation: Annotated[bool, Form()] = False) -> Response:
    try:
        account = service_accounts.create_service_account(
            db, name, principal, description=description.strip() or None, allow_impersonation=allow_impersonation,
            source=client_address(request))
    except DomainError as exc:
        if not exc.errors:
            raise
        values = {"name": name, "description": description, "allow_impersonation": allow_impersonation}
        return _page(request, db, status=exc.status, errors=field_errors(exc.errors), values=values)
    return redirect(f"/ui/service-accounts/{account.username}",
                    notice=f"Service account {account.username} created. Give it a credential below.")


@router.post("/ui/service-accounts/{name}/delete")
def delete_service_account(request: Request, principal: Admin, db: DB, name: str) -> Response:
    account = service_accounts.find_service_account(db, name)
    revoked = service_accounts.delete_service_account(db, account, principal, client_address(request))
    return redirect("/ui/service-accounts", request=request,
                    notice=f"Service account {account.username} deleted; {len(revoked)} credential(s) revoked. "
                    "Its jobs are kept.")


def _account_page(request: Request, db, account, status: int = 200, **extra) -> Response:
    views, total = credentials.list_credentials(db, account.id, limit=1000)
    now = utcnow()
    context = {"account": service_accounts.describe(db, [account])[0].as_dict(),
               "credentials": [v.as_dict(now) for v in views], "total": total, "expiry_choices": EXPIRY_CHOICES,
               "label_max": LABEL_MAX, "values": {}, "errors": {}}
    context.update(extra)
    response = render(request, "service_account.html", context, status=status)
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/ui/service-accounts/{name}")
def service_account_page(request: Request, principal: Admin, db: DB, name: str, shown: str = "") -> Response:
    account = service_accounts.find_service_account(db, name)
    return _account_page(request, db, account, created=take_once(request, principal.id, shown))


@router.post("/ui/service-accounts/{name}/credentials")
def create_credential(request: Request, principal: Admin, db: DB, state: State, name: str,
                      label: Annotated[str, Form()] = "", expires_in: Annotated[str, Form()] = "") -> Response:
    credentials.refuse_while_impersonating(principal)
    account = service_accounts.find_service_account(db, name)
    try:
        if len(label.strip()) > LABEL_MAX:
            raise invalid("label", f"must be at most {LABEL_MAX} characters")
        expires_at = credentials.resolve_expiry(expires_in.strip() or None, None, utcnow())
        credential, secret = credentials.create_credential(db, state.secret_key, account, principal,
                                                           label=label or None, expires_at=expires_at,
                                                           source=client_address(request))
    except ValidationFailed as exc:
        return _account_page(request, db, account, status=422, errors=field_errors(exc.errors),
                             values={"label": label, "expires_in": expires_in})
    view = created_view(request, credential, secret) | {"owner": account.username}
    token = stash_once(request, principal.id, view)
    return redirect(f"/ui/service-accounts/{account.username}?shown={token}")
