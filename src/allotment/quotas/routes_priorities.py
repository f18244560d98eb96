"""Priority classes. They are platform-wide: changing them needs a platform admin; any signed-in principal may read
them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request, Response

from allotment.api.deps import DB, State, client_address, require
from allotment.audit import service as audit
from allotment.core.permissions import AUTHENTICATED, PLATFORM_ADMIN, Principal
from allotment.quotas import priorities
from allotment.quotas.schemas import PriorityClassIn, PriorityClassList, PriorityClassOut, PriorityClassUpdate

router = APIRouter(tags=["policies"])
Admin = Annotated[Principal, require(PLATFORM_ADMIN)]


@router.get("/priority-classes", response_model=PriorityClassList, dependencies=[require(AUTHENTICATED)])
def list_classes(db: DB) -> PriorityClassList:
    items = [PriorityClassOut.model_validate(c) for c in priorities.list_classes(db)]
    return PriorityClassList(items=items, total=len(items))


@router.post("/priority-classes", response_model=PriorityClassOut, status_code=201)
def create_class(body: PriorityClassIn, principal: Admin, db: DB, request: Request) -> PriorityClassOut:
    created = priorities.create_class(db, body.name, body.value, body.description, body.is_default)
    audit.record(db, principal, "priority_class.create", "priority_class", created.name, created.name,
                 changes={"after": {"value": created.value, "is_default": created.is_default}},
                 source=client_address(request))
    return PriorityClassOut.model_validate(created)


@router.patch("/priority-classes/{name}", response_model=PriorityClassOut)
def update_class(name: str, body: PriorityClassUpdate, principal: Admin, db: DB, state: State,
                 request: Request) -> PriorityClassOut:
    found = priorities.find_class(db, name)
    before = {"value": found.value, "description": found.description, "is_default": found.is_default}
    priorities.update_class(db, found, body.value, body.description, body.is_default)
    after = {"value": found.value, "description": found.description, "is_default": found.is_default}
    audit.record(db, principal, "priority_class.update", "priority_class", name, name,
                 changes=audit.diff(before, after), source=client_address(request))
    state.scheduler_wakeup.set()
    return PriorityClassOut.model_validate(found)


@router.delete("/priority-classes/{name}", status_code=204)
def delete_class(name: str, principal: Admin, db: DB, request: Request) -> Response:
    priorities.delete_class(db, priorities.find_class(db, name))
    audit.record(db, principal, "priority_class.delete", "priority_class", name, name,
                 source=client_address(request))
    return Response(status_code=204)
