"""Users API: list, create, detail, update, deactivate / activate, unlock, CSV import, and changing one's own password.

There is no DELETE: accounts are deactivated, never removed (their jobs and usage stay attributable).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import Field
from sqlalchemy.orm import Session

from allotment.api.deps import DB, State, client_address, require
from allotment.api.fields import Offset
from allotment.core.permissions import AUTHENTICATED, PLATFORM_ADMIN, SELF_OR_ADMIN, Principal, Scope
from allotment.errors import NotFound
from allotment.identity import lockout, service, throttle, user_import
from allotment.identity.models import User
from allotment.identity.schemas import (
    ImportReport,
    PasswordChange,
    UserCreate,
    UserDetail,
    UserList,
    UserOut,
    UserUpdate,
)

router = APIRouter(tags=["users"])


def target_user_scope(request: Request, session: Session) -> Scope:
    """The account named in the path. An unknown one gives an empty scope, so that only admins get as far as the
    404 and other callers cannot probe which accounts exist."""
    try:
        return Scope(user_id=service.find_user(session, request.path_params["user"]).id)
    except NotFound:
        return Scope()


target_user_scope.kind, target_user_scope.param = "self", "user"  # type: ignore[attr-defined] - read by the matrix


Admin = Annotated[Principal, require(PLATFORM_ADMIN)]
# service.SORTS, in both directions (tests/integration/test_contract_fixes.py keeps the two in step).
UserSort = Literal["username", "-username", "email", "-email", "created_at", "-created_at"]
SelfOrAdmin = Annotated[Principal, require(SELF_OR_ADMIN, scope=target_user_scope)]


def detail(db: Session, user: User) -> UserDetail:
    info = service.user_detail(db, user)
    base = UserOut.model_validate(info.pop("user")).model_dump()
    return UserDetail(**base, **info)


async def csv_body(request: Request) -> bytes:
    return await request.body()


@router.get("/users", response_model=UserList)
def list_users(
    principal: Admin,
    db: DB,
    active: bool | None = None,
    search: Annotated[str | None, Query(max_length=64, description="substring of e-mail or username")] = None,
    sort: Annotated[UserSort, Query(description="a sort key, '-' first for descending order")] = "username",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Offset = 0,
) -> UserList:
    users, total = service.list_users(db, active, search, sort, limit, offset)
    return UserList(items=[UserOut.model_validate(u) for u in users], total=total)


@router.post("/users", status_code=201, response_model=UserOut)
def create_user(body: UserCreate, principal: Admin, db: DB, request: Request) -> UserOut:
    user = service.register_user(db, principal, client_address(request), **body.model_dump())
    return UserOut.model_validate(user)


@router.post(
    "/users/import",
    response_model=ImportReport,
    openapi_extra={"requestBody": {"required": True, "content": {"text/csv": {"schema": user_import.BODY_SCHEMA}}}},
    responses={
        200: {"description": "every row was created"},
        207: {"model": ImportReport, "description": "a row failed: `rows` gives each row's status and errors; the "
                                                   "other rows were created with continue_on_error, else skipped "
                                                   "(nothing was imported)"},
    },
)
def import_users(
    principal: Admin,
    db: DB,
    request: Request,
    response: Response,
    body: Annotated[bytes, Depends(csv_body)],
    continue_on_error: bool = False,
) -> ImportReport:
    text = user_import.decode(body)
    report = ImportReport(**user_import.import_users(db, principal, text, continue_on_error,
                                                     client_address(request)))
    if report.failed:
        response.status_code = 207
    return report


@router.get("/users/{user}", response_model=UserDetail)
def get_user(user: str, principal: SelfOrAdmin, db: DB) -> UserDetail:
    return detail(db, service.find_person(db, user))


@router.patch("/users/{user}", response_model=UserDetail)
def update_user(user: str, body: UserUpdate, principal: SelfOrAdmin, db: DB, state: State,
                request: Request) -> UserDetail:
    target = service.find_person(db, user)
    changes = body.model_dump(exclude_unset=True)
    try:
        service.update_user(db, principal, target, changes, client_address(request),
                            throttle.password_confirmations(state))
    except service.WrongPassword:
        db.commit()  # keep the audit of the wrong current password although the request fails
        raise
    return detail(db, target)


class UserDeactivated(UserDetail):
    jobs_cancelled: list[int] = Field(description="the jobs this deactivation cancelled: with stop_jobs every "
                                                  "unfinished one, otherwise those still waiting for admission")


@router.post("/users/{user}/deactivate", response_model=UserDeactivated)
def deactivate_user(
    user: str, principal: Admin, db: DB, state: State, request: Request,
    stop_jobs: Annotated[bool, Query(description="cancel the user's unfinished jobs (the engines stop the running "
                                                 "ones); without it, running or admitted jobs refuse the request")]
    = False,
) -> UserDeactivated:
    """Refused (409, listing them) while the user has admitted or running jobs, unless stop_jobs."""
    target = service.find_person(db, user)
    cancelled = service.deactivate_user(db, principal, target, client_address(request), stop_jobs=stop_jobs)
    if cancelled:
        state.scheduler_wakeup.set()
    return UserDeactivated(**detail(db, target).model_dump(), jobs_cancelled=cancelled)


@router.post("/users/{user}/activate", response_model=UserDetail)
def activate_user(user: str, principal: Admin, db: DB, request: Request) -> UserDetail:
    target = service.find_person(db, user)
    service.activate_user(db, principal, target, client_address(request))
    return detail(db, target)


@router.post("/users/{user}/unlock", response_model=UserDetail)
def unlock_user(user: str, principal: Admin, db: DB, request: Request) -> UserDetail:
    """Lift a password lock (and forget earlier failed sign-ins) before its time; audited when there was one."""
    target = service.find_person(db, user)
    lockout.unlock_user(db, principal, target, client_address(request))
    return detail(db, target)


@router.post("/auth/password", status_code=204, tags=["auth"])
def change_password(body: PasswordChange, principal: Annotated[Principal, require(AUTHENTICATED)], db: DB,
                    state: State, request: Request) -> Response:
    try:
        service.change_own_password(db, principal, body.current_password, body.new_password,
                                    client_address(request), throttle.password_confirmations(state))
    except service.WrongPassword:
        db.commit()  # keep the audit of the wrong current password although the request fails
        raise
    return Response(status_code=204)
