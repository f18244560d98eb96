"""Per-user resource policies (Backend.AI) and a user's remaining allowance. Policies are platform-wide: changing
them needs a platform admin; any signed-in principal may read them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request, Response

from allotment.api.deps import DB, State, client_address, require, self_scope
from allotment.core.permissions import AUTHENTICATED, PLATFORM_ADMIN, SELF_OR_ADMIN, Principal
from allotment.identity.service import find_user
from allotment.policies import service as policies
from allotment.policies.schemas import Allowance, PolicyBody, PolicyCreate, PolicyList, PolicyOut

router = APIRouter(tags=["policies"])
Admin = Annotated[Principal, require(PLATFORM_ADMIN)]


@router.get("/resource-policies", response_model=PolicyList, dependencies=[require(AUTHENTICATED)])
def list_policies(db: DB) -> PolicyList:
    items = [PolicyOut(**policies.policy_out(p)) for p in policies.list_policies(db)]
    return PolicyList(items=items, total=len(items))


@router.post("/resource-policies", response_model=PolicyOut, status_code=201)
def create_policy(body: PolicyCreate, principal: Admin, db: DB, request: Request) -> PolicyOut:
    values = body.model_dump(exclude={"name"}, exclude_unset=True)
    policy = policies.create_policy(db, body.name, values, principal, client_address(request))
    return PolicyOut(**policies.policy_out(policy))


@router.get("/resource-policies/{name}", response_model=PolicyOut, dependencies=[require(AUTHENTICATED)])
def get_policy(name: str, db: DB) -> PolicyOut:
    return PolicyOut(**policies.policy_out(policies.find_policy(db, name)))


@router.patch("/resource-policies/{name}", response_model=PolicyOut)
def update_policy(name: str, body: PolicyBody, principal: Admin, db: DB, state: State, request: Request) -> PolicyOut:
    """Every cap may change; the name may not (it is the key). The scheduler reads the caps afresh: a risen cap lets
    held jobs go."""
    policy = policies.find_policy(db, name)
    policies.update_policy(db, policy, body.model_dump(exclude_unset=True), principal, client_address(request))
    state.scheduler_wakeup.set()
    return PolicyOut(**policies.policy_out(policy))


@router.delete("/resource-policies/{name}", status_code=204)
def delete_policy(name: str, principal: Admin, db: DB, request: Request) -> Response:
    """Refused while any user (inactive ones included) follows the policy; the error lists them."""
    policies.delete_policy(db, policies.find_policy(db, name), principal, client_address(request))
    return Response(status_code=204)


@router.get("/users/{user}/allowance", response_model=Allowance,
            dependencies=[require(SELF_OR_ADMIN, scope=self_scope())])
def allowance(user: str, db: DB) -> Allowance:
    """What the user may still use under their resource policy, cap by cap."""
    return Allowance(**policies.allowance(db, find_user(db, user)))
