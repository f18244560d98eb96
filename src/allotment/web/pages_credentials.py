"""The signed-in user's credentials (ClearML's "App Credentials"): list, create (the secret is shown once), revoke.

Everything goes through identity.credentials, which audits and marks identity data changed, so a revoked key stops
working on the next request.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from allotment.api.deps import DB, State, client_address, require
from allotment.core.permissions import AUTHENTICATED, Principal
from allotment.db import utcnow
from allotment.errors import ValidationFailed
from allotment.identity import credentials
from allotment.identity import service as identity
from allotment.web.console import field_errors, redirect, render

router = APIRouter()
Me = Annotated[Principal, require(AUTHENTICATED)]
EXPIRY_CHOICES = [("", "Never"), ("30d", "30 days"), ("90d", "90 days"), ("365d", "1 year"), ("12h", "12 hours")]


def _page(request: Request, principal: Principal, db, status: int = 200, **extra) -> Response:
    views, total = credentials.list_credentials(db, principal.id, limit=200)
    now = utcnow()
    context = {"credentials": [v.as_dict(now) for v in views], "total": total, "expiry_choices": EXPIRY_CHOICES,
               "errors": {}, "values": {}}
    context.update(extra)
    response = render(request, "credentials.html", context, status=status)
    response.headers["Cache-Control"] = "no-store"  # the page may carry a secret shown once
    return response


@router.get("/ui/credentials")
def credentials_page(request: Request, principal: Me, db: DB) -> Response:
    return _page(request, principal, db)


@router.post("/ui/credentials")
def create_credential(request: Request, principal: Me, db: DB, state: State,
                      label: Annotated[str, Form()] = "", expires_in: Annotated[str, Form()] = "") -> Response:
    try:
        expires_at = credentials.resolve_expiry(expires_in.strip() or None, None, utcnow())
        credential, secret = credentials.create_credential(
            db, state.secret_key, identity.find_user(db, principal.id), principal, label=label or None,
            expires_at=expires_at, source=client_address(request))
    except ValidationFailed as exc:
        return _page(request, principal, db, status=422, errors=field_errors(exc.errors),
                     values={"label": label, "expires_in": expires_in})
    base_url = str(request.base_url).rstrip("/")
    created = {"access_key": credential.access_key, "secret_key": secret, "label": credential.label,
               "expires_at": credential.expires_at,
               "cli_snippet": credentials.cli_snippet(base_url, credential.access_key)}
    return _page(request, principal, db, status=201, created=created)


@router.post("/ui/credentials/{access_key}/revoke")
def revoke_credential(request: Request, principal: Me, db: DB, access_key: str) -> Response:
    credential, owner = credentials.credential_for(db, principal, access_key)
    credentials.revoke(db, credential, owner, principal, source=client_address(request))
    return redirect("/ui/credentials", notice=f"Credential {access_key} revoked: it stops working immediately.",
                    request=request)
