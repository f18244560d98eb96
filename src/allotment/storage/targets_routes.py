"""Storage targets API (/storage/targets): any signed-in principal lists and reads them (never their secrets);
platform admins register, change, test and remove them (core.permissions.storage_target_refusal, which the service
asks). A test tries the real service and records its answer on the target."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request, Response

from allotment.api.deps import DB, State, client_address, require
from allotment.audit import service as audit
from allotment.core.permissions import AUTHENTICATED, PLATFORM_ADMIN, Principal
from allotment.storage import targets
from allotment.storage.targets_schemas import TargetCreate, TargetList, TargetOut, TargetTest, TargetUpdate

router = APIRouter(tags=["storage targets"])
Signed = Annotated[Principal, require(AUTHENTICATED)]
# Registering, changing, testing and removing: what core.permissions.storage_target_refusal allows platform admins.
Admin = Annotated[Principal, require(PLATFORM_ADMIN)]


@router.get("/storage/targets", response_model=TargetList)
def list_targets(principal: Signed, db: DB) -> TargetList:
    targets.authorise(principal, "read")
    items = [TargetOut(**targets.out(t)) for t in targets.list_targets(db)]
    return TargetList(items=items, total=len(items))


@router.post("/storage/targets", response_model=TargetOut, status_code=201)
def create_target(body: TargetCreate, principal: Admin, db: DB, state: State, request: Request) -> TargetOut:
    target = targets.create_target(db, principal, state.secret_key, body.model_dump(exclude_none=True))
    audit.record(db, principal, "storage_target.create", "storage_target", target.name, target.id,
                 changes={"after": targets.audit_state(target)}, source=client_address(request))
    return TargetOut(**targets.out(target))


@router.get("/storage/targets/{name}", response_model=TargetOut)
def get_target(name: str, principal: Signed, db: DB) -> TargetOut:
    targets.authorise(principal, "read")
    return TargetOut(**targets.out(targets.find_target(db, name)))


@router.patch("/storage/targets/{name}", response_model=TargetOut)
def update_target(name: str, body: TargetUpdate, principal: Admin, db: DB, state: State,
                  request: Request) -> TargetOut:
    """Fields left out keep their values; a secret left out (or empty) keeps the stored one."""
    targets.authorise(principal, "manage")
    target = targets.find_target(db, name)
    before = targets.audit_state(target)
    targets.update_target(db, principal, state.secret_key, target, body.model_dump(exclude_unset=True))
    changes = audit.diff(before, targets.audit_state(target))
    if body.secret_key or body.service_account_json or body.token:
        changes.setdefault("after", {})["secret"] = "replaced"
    audit.record(db, principal, "storage_target.update", "storage_target", target.name, target.id, changes=changes,
                 source=client_address(request))
    return TargetOut(**targets.out(target))


@router.delete("/storage/targets/{name}", status_code=204)
def delete_target(name: str, principal: Admin, db: DB, request: Request) -> Response:
    targets.authorise(principal, "manage")
    target = targets.find_target(db, name)
    before = targets.audit_state(target)
    targets.delete_target(db, principal, target)
    audit.record(db, principal, "storage_target.delete", "storage_target", before["name"], None,
                 changes={"before": before}, source=client_address(request))
    return Response(status_code=204)


@router.post("/storage/targets/{name}/test", response_model=TargetTest)
def test_target(name: str, principal: Admin, db: DB, state: State, request: Request) -> TargetTest:
    """Try the real service with the target's credentials; the answer is kept on the target (last test)."""
    targets.authorise(principal, "manage")
    target = targets.find_target(db, name)
    problem = targets.test_connection(db, principal, state.secret_key, target)
    audit.record(db, principal, "storage_target.test", "storage_target", target.name, target.id,
                 changes={"after": {"ok": problem is None, "message": problem}}, source=client_address(request))
    return TargetTest(ok=problem is None, message=problem, target=TargetOut(**targets.out(target)))
