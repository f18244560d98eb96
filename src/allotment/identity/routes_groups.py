"""Groups API: any signed-in principal may list the groups; a group's members are shown to platform admins and to
its own members (never the built-in groups' to non-admins: see core.permissions.GROUP_MEMBER); admins change."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from allotment.api.deps import DB, client_address, group_scope, require
from allotment.core.permissions import AUTHENTICATED, GROUP_MEMBER, PLATFORM_ADMIN, Principal
from allotment.identity import groups, service
from allotment.identity.schemas import GroupCreate, GroupDetail, GroupList, GroupOut, GroupUpdate

router = APIRouter(tags=["groups"])

Admin = Annotated[Principal, require(PLATFORM_ADMIN)]


@router.get("/groups", response_model=GroupList, dependencies=[require(AUTHENTICATED)])
def list_groups(db: DB) -> GroupList:
    items = [GroupOut(**g) for g in groups.list_groups(db)]
    return GroupList(items=items, total=len(items))


@router.post("/groups", status_code=201, response_model=GroupDetail)
def create_group(body: GroupCreate, principal: Admin, db: DB, request: Request) -> GroupDetail:
    group = groups.create_group(db, principal, body.name, body.description, client_address(request))
    return GroupDetail(**groups.group_detail(db, group))


@router.get("/groups/{group}", response_model=GroupDetail, dependencies=[require(GROUP_MEMBER, scope=group_scope())])
def get_group(group: str, db: DB) -> GroupDetail:
    return GroupDetail(**groups.group_detail(db, groups.find_group(db, group)))


@router.patch("/groups/{group}", response_model=GroupDetail)
def update_group(group: str, body: GroupUpdate, principal: Admin, db: DB, request: Request) -> GroupDetail:
    target = groups.find_group(db, group)
    groups.update_group(db, principal, target, body.model_dump(exclude_unset=True), client_address(request))
    return GroupDetail(**groups.group_detail(db, target))


@router.delete("/groups/{group}", status_code=204)
def delete_group(
    group: str, principal: Admin, db: DB, request: Request,
    force: Annotated[bool, Query(description="delete a group that has members or grants: its members lose only what "
                                             "was granted through it")] = False,
) -> Response:
    """Refused (409, listing them) while the group has members, cluster roles, quota bindings or workspace
    memberships, unless force."""
    groups.delete_group(db, principal, groups.find_group(db, group), client_address(request), force=force)
    return Response(status_code=204)


@router.put("/groups/{group}/members/{user}", status_code=204)
def add_member(group: str, user: str, principal: Admin, db: DB, request: Request) -> Response:
    groups.add_member(db, principal, groups.find_group(db, group), service.find_user(db, user),
                      client_address(request))
    return Response(status_code=204)


@router.delete("/groups/{group}/members/{user}", status_code=204)
def remove_member(group: str, user: str, principal: Admin, db: DB, request: Request) -> Response:
    groups.remove_member(db, principal, groups.find_group(db, group), service.find_user(db, user),
                         client_address(request))
    return Response(status_code=204)
