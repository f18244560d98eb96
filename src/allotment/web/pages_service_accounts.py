"""Service accounts (ClearML): API-only principals that never sign in here. List, create, delete. Admins only."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from allotment.api.deps import DB, client_address, require
from allotment.core.permissions import PLATFORM_ADMIN, Principal
from allotment.errors import DomainError
from allotment.identity import service_accounts
from allotment.web.console import field_errors, redirect, render

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
    return redirect("/ui/service-accounts", notice=f"Service account {account.username} created. Give it a "
                    "credential with `allot admin service-accounts` or the API.")


@router.post("/ui/service-accounts/{name}/delete")
def delete_service_account(request: Request, principal: Admin, db: DB, name: str) -> Response:
    account = service_accounts.find_service_account(db, name)
    revoked = service_accounts.delete_service_account(db, account, principal, client_address(request))
    return redirect("/ui/service-accounts", request=request,
                    notice=f"Service account {account.username} deleted; {len(revoked)} credential(s) revoked. "
                    "Its jobs are kept.")
