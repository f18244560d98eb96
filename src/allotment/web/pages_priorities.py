"""Priority classes: platform-wide names for a job's priority value, one of them the default. Everyone signed in
reads them; platform admins create, change and delete them through the API's route functions
(quotas/routes_priorities.py), so the checks, audit records and authorisation are the API's."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError

from allotment.api.deps import DB, State, require
from allotment.core.permissions import AUTHENTICATED, PLATFORM_ADMIN, Principal
from allotment.errors import DomainError
from allotment.quotas import priorities
from allotment.quotas import routes_priorities as api
from allotment.quotas.schemas import PriorityClassIn, PriorityClassUpdate
from allotment.web.console import redirect, render
from allotment.web.form_rows import by_field, failure, number
from allotment.web.pages_cluster_settings import Form

router = APIRouter()
Reader = Annotated[Principal, require(AUTHENTICATED)]
Admin = Annotated[Principal, require(PLATFORM_ADMIN)]
PAGE = "/ui/priority-classes"


def page(request: Request, principal: Principal, db, status: int = 200, **state) -> Response:
    """The list; `state` reopens a form that failed: `create` or `edit` (the class name) with its input and errors,
    or a deletion's `refusal`."""
    classes = priorities.list_classes(db)
    return render(request, "priority_classes.html", {"classes": classes, "is_admin": principal.is_platform_admin,
                                                     "values": {}, "errors": {}, **state}, status=status)


@router.get(PAGE)
def classes_page(request: Request, principal: Reader, db: DB) -> Response:
    return page(request, principal, db)


def _refused(request: Request, principal: Principal, db, exc: Exception, form: dict, conflict_field: str | None,
             **state) -> Response:
    errors = failure(exc, conflict_field)
    if errors is None:
        raise exc
    db.rollback()
    status = 422 if isinstance(exc, ValidationError) else exc.status  # type: ignore[attr-defined]
    return page(request, principal, db, status, values=dict(form), errors=by_field(errors), **state)


@router.post(PAGE)
def create_class(request: Request, principal: Admin, db: DB, form: Form) -> Response:
    try:
        body = PriorityClassIn(name=form.get("name", "").strip(), value=number(form.get("value", "").strip(), int),
                               description=form.get("description", "").strip() or None,
                               is_default=bool(form.get("is_default")))
        api.create_class(body, principal, db, request)
    except (ValidationError, DomainError) as exc:
        return _refused(request, principal, db, exc, form, "name", create=True)
    return redirect(PAGE, notice=f"Priority class {body.name} created.", request=request)


@router.post(PAGE + "/{name}")
def update_class(request: Request, principal: Admin, db: DB, state: State, form: Form, name: str) -> Response:
    try:
        body = PriorityClassUpdate(value=number(form.get("value", "").strip(), int),
                                   description=form.get("description", "").strip() or None,
                                   is_default=bool(form.get("is_default")))
        api.update_class(name, body, principal, db, state, request)
    except (ValidationError, DomainError) as exc:
        return _refused(request, principal, db, exc, form, None, edit=name)
    return redirect(PAGE, notice=f"Priority class {name} saved.", request=request)


@router.post(PAGE + "/{name}/delete")
def delete_class(request: Request, principal: Admin, db: DB, name: str) -> Response:
    """Refused while jobs use it: the refusal is shown by the class, in the service's words."""
    try:
        api.delete_class(name, principal, db, request)
    except DomainError as exc:
        if exc.status != 409:
            raise
        db.rollback()
        return page(request, principal, db, 409, refusal={"name": name, "detail": exc.detail})
    return redirect(PAGE, notice=f"Priority class {name} deleted.", request=request)
