"""Per-user resource policies (Backend.AI), a user's remaining allowance, and priority classes. Policies and
classes are platform-wide: changing them needs a platform admin; any signed-in principal may read them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request, Response

from allotment.api.deps import DB, State, client_address, require, self_scope
from allotment.audit import service as audit
from allotment.core.permissions import AUTHENTICATED, PLATFORM_ADMIN, SELF_OR_ADMIN, Principal
from allotment.identity.service import find_user
from allotment.quotas import policies, priorities
from allotment.quotas.schemas import (
    Allowance,
    PolicyBody,
    PolicyCreate,
    PolicyList,
    PolicyOut,
    PriorityClassIn,
    PriorityClassList,
    PriorityClassOut,
    PriorityClassUpdate,
)

router = APIRouter(tags=["policies"])
Admin = Annotated[Principal, require(PLATFORM_ADMIN)]


@router.get("/resource-policies", response_model=PolicyList, dependencies=[require(AUTHENTICATED)])
def list_policies(db: DB) -> PolicyList:
    items = [PolicyOut(**policies.policy_out(p)) for p in policies.list_policies(db)]
    return PolicyList(items=items, total=len(items))


@router.post("/resource-policies", response_model=PolicyOut, status_code=201)
def create_policy(body: PolicyCreate, principal: Admin, db: DB, request: Request) -> PolicyOut:
    values = body.model_dump(exclude={"name"}, exclude_unset=True)
    policy = policies.create_policy(db, body.name, values)
    out = policies.policy_out(policy)
    audit.record(db, principal, "resource_policy.create", "resource_policy", policy.name, policy.name,
                 changes={"after": {k: v for k, v in out.items() if k not in ("created_at", "updated_at")}},
                 source=client_address(request))
    return PolicyOut(**out)


@router.get("/resource-policies/{name}", response_model=PolicyOut, dependencies=[require(AUTHENTICATED)])
def get_policy(name: str, db: DB) -> PolicyOut:
    return PolicyOut(**policies.policy_out(policies.find_policy(db, name)))


@router.patch("/resource-policies/{name}", response_model=PolicyOut)
def update_policy(name: str, body: PolicyBody, principal: Admin, db: DB, request: Request) -> PolicyOut:
    """Every cap may change; the name may not (it is the key)."""
    policy = policies.find_policy(db, name)
    before = policies.policy_out(policy)
    policies.update_policy(db, policy, body.model_dump(exclude_unset=True))
    after = policies.policy_out(policy)
    skip = ("created_at", "updated_at")
    audit.record(db, principal, "resource_policy.update", "resource_policy", policy.name, policy.name,
                 changes=audit.diff({k: v for k, v in before.items() if k not in skip},
                                    {k: v for k, v in after.items() if k not in skip}),
                 source=client_address(request))
    return PolicyOut(**after)


@router.delete("/resource-policies/{name}", status_code=204)
def delete_policy(name: str, principal: Admin, db: DB, request: Request) -> Response:
    """Refused while any user (inactive ones included) follows the policy; the error lists them."""
    policy = policies.find_policy(db, name)
    policies.delete_policy(db, policy)
    audit.record(db, principal, "resource_policy.delete", "resource_policy", name, name,
                 source=client_address(request))
    return Response(status_code=204)


@router.get("/users/{user}/allowance", response_model=Allowance,
            dependencies=[require(SELF_OR_ADMIN, scope=self_scope())])
def allowance(user: str, db: DB) -> Allowance:
    """What the user may still use under their resource policy, cap by cap."""
    return Allowance(**policies.allowance(db, find_user(db, user)))


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
