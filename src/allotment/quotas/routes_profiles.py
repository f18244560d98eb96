"""Profiles API (ClearML resource profiles): per-job allotment, ordered pool links, policy order; and a pool's
execution order of profiles. Reading needs the cluster user role, changing the cluster admin role."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request, Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from allotment.api.deps import DB, State, client_address, cluster_scope, require
from allotment.audit import service as audit
from allotment.core.permissions import QUOTA_ADMIN, Principal, cluster
from allotment.core.quantity import format_raw
from allotment.inventory.pools import find_pool
from allotment.inventory.service import find_cluster
from allotment.quotas import profiles as service
from allotment.quotas.models import Profile
from allotment.quotas.schemas import (
    NameOrder,
    PoolLinkIn,
    PoolLinkOut,
    ProfileCreate,
    ProfileList,
    ProfileOut,
    ProfileUpdate,
)
from allotment.workloads.models import HOLDING_STATES, QUEUED, Job

router = APIRouter(tags=["profiles"])
ADMIN = cluster("admin")
USER = cluster("user")
Admin = Annotated[Principal, require(ADMIN, scope=cluster_scope())]
# Creating, changing and deleting profiles: cluster admins and the built-in queue-admins group.
QuotaAdmin = Annotated[Principal, require(QUOTA_ADMIN, scope=cluster_scope())]


def profile_out(db: Session, profile: Profile, cluster_name: str) -> ProfileOut:
    counts = dict(db.execute(select(Job.state, func.count()).where(Job.profile_id == profile.id)
                             .group_by(Job.state)).all())
    return ProfileOut(
        id=profile.id, name=profile.name, cluster=cluster_name, description=profile.description,
        gpu=format_raw(profile.gpu_milli, "gpu"), cpu=format_raw(profile.cpu_milli, "cpu"),
        memory=format_raw(profile.memory_bytes, "memory"), unordered=bool(profile.unordered),
        pools=[PoolLinkOut(pool=name, name=link.name, position=link.position)
               for link, name in service.profile_links(db, profile.id)],
        policies=service.profile_policies(db, profile.id),
        queued_jobs=counts.get(QUEUED, 0), running_jobs=sum(counts.get(s, 0) for s in HOLDING_STATES),
    )


def _links(items: list[PoolLinkIn]) -> list[service.PoolLink]:
    return [service.PoolLink(pool=i.pool, name=i.name) for i in items]


@router.get("/clusters/{cluster}/profiles", response_model=ProfileList,
            dependencies=[require(USER, scope=cluster_scope())])
def list_profiles(cluster: str, db: DB) -> ProfileList:
    found = find_cluster(db, cluster)
    items = [profile_out(db, p, found.name) for p in service.list_profiles(db, found.id)]
    return ProfileList(items=items, total=len(items))


@router.post("/clusters/{cluster}/profiles", response_model=ProfileOut, status_code=201)
def create_profile(cluster: str, body: ProfileCreate, principal: QuotaAdmin, db: DB, state: State,
                   request: Request) -> ProfileOut:
    found = find_cluster(db, cluster)
    profile = service.create_profile(db, found.id, body.name, body.gpu, body.cpu, body.memory, body.description,
                                     _links(body.pools), body.unordered)
    out = profile_out(db, profile, found.name)
    audit.record(db, principal, "profile.create", "profile", f"{found.name}/{profile.name}", profile.id,
                 changes={"after": out.model_dump(include={"gpu", "cpu", "memory", "pools", "unordered"})},
                 source=client_address(request))
    state.scheduler_wakeup.set()
    return out


@router.get("/clusters/{cluster}/profiles/{profile}", response_model=ProfileOut,
            dependencies=[require(USER, scope=cluster_scope())])
def get_profile(cluster: str, profile: str, db: DB) -> ProfileOut:
    found = find_cluster(db, cluster)
    return profile_out(db, service.find_profile(db, found.id, profile), found.name)


@router.patch("/clusters/{cluster}/profiles/{profile}", response_model=ProfileOut)
def update_profile(cluster: str, profile: str, body: ProfileUpdate, principal: QuotaAdmin, db: DB, state: State,
                   request: Request) -> ProfileOut:
    found = find_cluster(db, cluster)
    target = service.find_profile(db, found.id, profile)
    fields = {"name", "description", "gpu", "cpu", "memory", "unordered"}
    before = profile_out(db, target, found.name).model_dump(include=fields)
    service.update_profile(db, target, body.name, body.gpu, body.cpu, body.memory, body.description, body.unordered)
    out = profile_out(db, target, found.name)
    audit.record(db, principal, "profile.update", "profile", f"{found.name}/{target.name}", target.id,
                 changes=audit.diff(before, out.model_dump(include=fields)), source=client_address(request))
    state.scheduler_wakeup.set()
    return out


@router.delete("/clusters/{cluster}/profiles/{profile}", status_code=204)
def delete_profile(cluster: str, profile: str, principal: QuotaAdmin, db: DB, state: State,
                   request: Request) -> Response:
    found = find_cluster(db, cluster)
    target = service.find_profile(db, found.id, profile)
    service.delete_profile(db, target)
    audit.record(db, principal, "profile.delete", "profile", f"{found.name}/{target.name}", target.id,
                 source=client_address(request))
    state.scheduler_wakeup.set()
    return Response(status_code=204)


@router.put("/clusters/{cluster}/profiles/{profile}/pools", response_model=ProfileOut)
def set_profile_pools(cluster: str, profile: str, body: list[PoolLinkIn], principal: QuotaAdmin, db: DB, state: State,
                      request: Request) -> ProfileOut:
    """Replace the profile's pool links; the list order is the order in which pools are tried."""
    found = find_cluster(db, cluster)
    target = service.find_profile(db, found.id, profile)
    before = [name for _, name in service.profile_links(db, target.id)]
    service.set_pools(db, target, _links(body))
    out = profile_out(db, target, found.name)
    audit.record(db, principal, "profile.pools", "profile", f"{found.name}/{target.name}", target.id,
                 changes={"before": {"pools": before}, "after": {"pools": [p.pool for p in out.pools]}},
                 source=client_address(request))
    state.scheduler_wakeup.set()
    return out


@router.put("/clusters/{cluster}/profiles/{profile}/policies", response_model=ProfileOut)
def set_profile_policies(cluster: str, profile: str, body: NameOrder, principal: QuotaAdmin, db: DB, state: State,
                         request: Request) -> ProfileOut:
    """The queuing priority of the quotas (ClearML policies) using this profile: first listed, served first."""
    found = find_cluster(db, cluster)
    target = service.find_profile(db, found.id, profile)
    before = service.profile_policies(db, target.id)
    service.set_policy_order(db, target, body.names)
    audit.record(db, principal, "profile.policies", "profile", f"{found.name}/{target.name}", target.id,
                 changes={"before": {"policies": before}, "after": {"policies": body.names}},
                 source=client_address(request))
    state.scheduler_wakeup.set()
    return profile_out(db, target, found.name)


@router.put("/clusters/{cluster}/pools/{pool}/profile-order", response_model=NameOrder)
def set_pool_profile_order(cluster: str, pool: str, body: NameOrder, principal: Admin, db: DB, state: State,
                           request: Request) -> NameOrder:
    """The pool's execution priority over the profiles linked to it: list each linked profile once."""
    found = find_cluster(db, cluster)
    target = find_pool(db, found.id, pool)
    before = service.pool_profile_order(db, target.id)
    service.set_pool_profile_order(db, target, body.names)
    audit.record(db, principal, "pool.profile_order", "pool", f"{found.name}/{target.name}", target.id,
                 changes={"before": {"profiles": before}, "after": {"profiles": body.names}},
                 source=client_address(request))
    state.scheduler_wakeup.set()
    return NameOrder(names=service.pool_profile_order(db, target.id))
