"""The secret hide-list in the console: the platform's list (platform admins edit it or reset it to the defaults),
the user's own additions (each user edits theirs), and every name hidden in their jobs. Through
vaults.hide_lists, as the API; names are one per line (or separated by commas or spaces)."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from allotment.api.deps import DB, client_address, require
from allotment.audit import service as audit
from allotment.core import hide_list
from allotment.core.permissions import AUTHENTICATED, PLATFORM_ADMIN, Principal
from allotment.errors import DomainError
from allotment.vaults import hide_lists
from allotment.web.console import redirect, render

router = APIRouter()
Signed = Annotated[Principal, require(AUTHENTICATED)]
Admin = Annotated[Principal, require(PLATFORM_ADMIN)]  # hide_list_refusal: admins set the platform's list


def _names(text: str) -> list[str]:
    return [n for n in re.split(r"[\s,]+", text) if n]


def _page(request: Request, db, principal: Principal, status: int = 200, **extra) -> Response:
    context = {"platform": hide_lists.platform_names(db), "own": hide_lists.user_names(db, principal.id),
               "effective": sorted(hide_lists.names_for(db, principal.id)), "defaults": hide_list.DEFAULT_NAMES,
               "always": sorted(hide_list.ALWAYS),
               "errors": {}, "values": {}}
    context.update(extra)
    return render(request, "hide_list.html", context, status=status)


def _problems(exc: DomainError, field: str) -> dict[str, list[str]]:
    """The service names each bad name by position (names.N): shown under the form's one field, with the name."""
    return {field: [e.message + (f" ({e.field})" if e.field != "names" else "") for e in exc.errors]}


@router.get("/ui/hide-list")
def hide_list_page(request: Request, principal: Signed, db: DB) -> Response:
    return _page(request, db, principal)


@router.post("/ui/hide-list/mine")
def save_own(request: Request, principal: Signed, db: DB, names: Annotated[str, Form()] = "") -> Response:
    before = hide_lists.user_names(db, principal.id)
    try:
        after = hide_lists.set_names(db, principal, principal.id, _names(names))
    except DomainError as exc:
        if not exc.errors:
            raise
        return _page(request, db, principal, status=exc.status, errors=_problems(exc, "own"), values={"own": names})
    audit.record(db, principal, "hide_list.update", "hide_list", principal.username, principal.id,
                 changes=audit.diff({"names": before}, {"names": after}), source=client_address(request))
    return redirect("/ui/hide-list", notice="Your hide-list is saved.")


@router.post("/ui/hide-list/platform")
def save_platform(request: Request, principal: Admin, db: DB, names: Annotated[str, Form()] = "",
                  reset: Annotated[bool, Form()] = False) -> Response:
    before = hide_lists.platform_names(db)
    try:
        after = hide_lists.reset_platform(db, principal) if reset else \
            hide_lists.set_names(db, principal, None, _names(names))
    except DomainError as exc:
        if not exc.errors:
            raise
        return _page(request, db, principal, status=exc.status, errors=_problems(exc, "platform"),
                     values={"platform": names})
    audit.record(db, principal, "hide_list.reset" if reset else "hide_list.update", "hide_list", "platform", None,
                 changes=audit.diff({"names": before}, {"names": after}), source=client_address(request))
    return redirect("/ui/hide-list", notice="The platform's hide-list is reset to the defaults." if reset
                    else "The platform's hide-list is saved.")
