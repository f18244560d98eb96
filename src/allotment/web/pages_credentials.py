"""Credentials (ClearML's "App Credentials"): list, create (the secret is shown once), relabel, revoke.

Creating follows post/redirect/get: the POST keeps the new secret for one read and redirects, so a reload shows the
list and creates nothing. Platform admins also see everyone's keys (Backend.AI's Credentials tab) and may relabel or
revoke any of them. Everything goes through identity.credentials, which audits and marks identity data changed, so
a revoked key stops working on the next request.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from allotment.api.deps import DB, State, client_address, require
from allotment.api.fields import PageNumber
from allotment.core.permissions import AUTHENTICATED, Principal
from allotment.db import utcnow
from allotment.errors import ValidationFailed, invalid
from allotment.identity import credentials
from allotment.identity import service as identity
from allotment.web.console import field_errors, redirect, render, safe_next, stash_once, take_once
from allotment.web.paging import fetch_page

router = APIRouter()
Me = Annotated[Principal, require(AUTHENTICATED)]
EXPIRY_CHOICES = [("", "Never"), ("30d", "30 days"), ("90d", "90 days"), ("365d", "1 year"), ("12h", "12 hours")]
LABEL_MAX = 64


def created_view(request: Request, credential, secret: str) -> dict:
    """What the page shows once about a new credential (also used for service accounts' credentials)."""
    base_url = str(request.base_url).rstrip("/")
    return {"access_key": credential.access_key, "secret_key": secret, "label": credential.label,
            "expires_at": credential.expires_at.isoformat() if credential.expires_at else None,
            "cli_snippet": credentials.cli_snippet(base_url, credential.access_key)}


def _page(request: Request, principal: Principal, db, everyone: bool = False, page: int = 1, status: int = 200,
          **extra) -> Response:
    everyone = everyone and principal.is_platform_admin
    owner_id = None if everyone else principal.id
    views, paging = fetch_page(page, lambda limit, offset: credentials.list_credentials(
        db, owner_id, limit=limit, offset=offset))
    now = utcnow()
    query = urlencode({"owner": "all"} if everyone else {})
    context = {"credentials": [v.as_dict(now) for v in views], "page": paging, "expiry_choices": EXPIRY_CHOICES,
               "everyone": everyone, "errors": {}, "values": {}, "label_max": LABEL_MAX,
               "here": "/ui/credentials" + (f"?{query}" if query else ""),
               "pager_base": f"/ui/credentials?{query}&" if query else "/ui/credentials?"}
    context.update(extra)
    response = render(request, "credentials.html", context, status=status)
    response.headers["Cache-Control"] = "no-store"  # the page may carry a secret shown once
    return response


@router.get("/ui/credentials")
def credentials_page(request: Request, principal: Me, db: DB, owner: str = "", shown: str = "",
                     page: PageNumber = 1) -> Response:
    return _page(request, principal, db, everyone=owner == "all", page=page,
                 created=take_once(request, principal.id, shown))


def _check_label(label: str) -> None:
    if len(label.strip()) > LABEL_MAX:
        raise invalid("label", f"must be at most {LABEL_MAX} characters")


@router.post("/ui/credentials")
def create_credential(request: Request, principal: Me, db: DB, state: State,
                      label: Annotated[str, Form()] = "", expires_in: Annotated[str, Form()] = "") -> Response:
    credentials.refuse_while_impersonating(principal)
    try:
        _check_label(label)
        expires_at = credentials.resolve_expiry(expires_in.strip() or None, None, utcnow())
        credential, secret = credentials.create_credential(
            db, state.secret_key, identity.find_user(db, principal.id), principal, label=label or None,
            expires_at=expires_at, source=client_address(request))
    except ValidationFailed as exc:
        return _page(request, principal, db, status=422, errors=field_errors(exc.errors),
                     values={"label": label, "expires_in": expires_in})
    token = stash_once(request, principal.id, created_view(request, credential, secret))
    return redirect(f"/ui/credentials?shown={token}")


@router.post("/ui/credentials/{access_key}/label")
def relabel_credential(request: Request, principal: Me, db: DB, access_key: str,
                       label: Annotated[str, Form()] = "", back: Annotated[str, Form()] = "") -> Response:
    credentials.refuse_while_impersonating(principal)
    credential, owner = credentials.credential_for(db, principal, access_key)
    try:
        _check_label(label)
    except ValidationFailed as exc:
        return _page(request, principal, db, everyone=owner.id != principal.id, status=422,
                     errors={f"label-{access_key}": field_errors(exc.errors)["label"]},
                     values={f"label-{access_key}": label})
    credentials.relabel(db, credential, label, principal, client_address(request))
    shown = f"“{credential.label}”" if credential.label else "no label"
    return redirect(safe_next(back or "/ui/credentials"), notice=f"Credential {access_key} now has {shown}.",
                    request=request)


@router.post("/ui/credentials/{access_key}/revoke")
def revoke_credential(request: Request, principal: Me, db: DB, access_key: str,
                      back: Annotated[str, Form()] = "") -> Response:
    credentials.refuse_while_impersonating(principal)
    credential, owner = credentials.credential_for(db, principal, access_key)
    credentials.revoke(db, credential, owner, principal, source=client_address(request))
    return redirect(safe_next(back or "/ui/credentials"),
                    notice=f"Credential {access_key} revoked: it stops working immediately.", request=request)
