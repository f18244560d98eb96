"""Workspaces API (PAI, ClearML): /clusters/{cluster}/workspaces, their members and roles, and who may submit to
each bound quota (PAI resource user roles).

Users of the cluster may read workspaces and create them (becoming their owner); owners and admins of a workspace
manage it; admins of the cluster and platform admins manage every workspace. Every route asks
core.permissions.workspace_refusal. Binding a workspace to a quota is in quotas/routes.py, next to the other
bindings. Invitations, leaving and scoped credentials: routes_members.py."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request, Response
from sqlalchemy.orm import Session

from allotment.api.deps import DB, client_address, cluster_scope, require
from allotment.audit import service as audit
from allotment.core.permissions import AUTHENTICATED, Principal, cluster, workspace_refusal
from allotment.errors import Forbidden, NotFound, invalid
from allotment.identity.models import User
from allotment.identity.service import find_user
from allotment.inventory.models import Cluster
from allotment.inventory.service import find_cluster
from allotment.quotas import bindings
from allotment.workspaces import routes_members, submit_rules
from allotment.workspaces import service as workspaces
from allotment.workspaces.models import Workspace, WorkspaceMember
from allotment.workspaces.schemas import (
    MemberIn,
    RoleIn,
    SubmitRulesIn,
    SubmitRulesOut,
    WorkspaceCreate,
    WorkspaceList,
    WorkspaceOut,
    WorkspaceUpdate,
)

router = APIRouter(tags=["workspaces"])
READER = cluster("user")
Authenticated = Annotated[Principal, require(AUTHENTICATED)]
MEMBER_KINDS = {"users": "user", "service-accounts": "service_account", "groups": "group"}


def _out(db: Session, workspace: Workspace, found: Cluster, principal: Principal | None = None) -> WorkspaceOut:
    mine = workspaces.role_of(db, principal, workspace) if principal is not None else None
    return WorkspaceOut(**workspaces.snapshot(db, workspace, found.name), personal=workspace.personal_user_id
                        is not None, my_role=mine)


def _state(db: Session, workspace: Workspace) -> dict:
    """What audit records keep of a workspace."""
    return {"name": workspace.name, "description": workspace.description,
            "members": [f"{m['kind']}:{m['name']}={m['role']}" for m in workspaces.members(db, workspace.id)],
            "quotas": workspaces.bound_quotas(db, workspace.id)}


def load(db: Session, principal: Principal, cluster: str, workspace: str,
         action: str) -> tuple[Cluster, Workspace, str | None]:
    """The cluster and workspace a route is about, once core.permissions.workspace_refusal allows `action`."""
    found = find_cluster(db, cluster)
    target = workspaces.find_workspace(db, found.id, workspace)
    role = workspaces.role_of(db, principal, target)
    refusal = workspace_refusal(principal, found.id, role, action,
                                personal=target.personal_user_id is not None and target.personal_user_id == principal.id)
    if refusal:
        raise Forbidden(refusal)
    return found, target, role


@router.get("/clusters/{cluster}/workspaces", response_model=WorkspaceList)
def list_workspaces(cluster: str, principal: Annotated[Principal, require(READER, scope=cluster_scope())],
                    db: DB) -> WorkspaceList:
    """The cluster's shared workspaces, and the caller's own personal one (other people's stay out of the list)."""
    found = find_cluster(db, cluster)
    items = [_out(db, w, found, principal) for w in workspaces.list_workspaces(db, found.id)
             if w.personal_user_id is None or w.personal_user_id == principal.id]
    return WorkspaceList(items=items, total=len(items))


@router.post("/clusters/{cluster}/workspaces", response_model=WorkspaceOut, status_code=201)
def create_workspace(cluster: str, body: WorkspaceCreate, principal: Authenticated, db: DB,
                     request: Request) -> WorkspaceOut:
    """A user of the cluster becomes the owner of the workspace it creates; an admin of the cluster (who manages
    every workspace) is not made a member."""
    found = find_cluster(db, cluster)
    refusal = workspace_refusal(principal, found.id, None, "create")
    if refusal:
        raise Forbidden(refusal)
    users = [find_user(db, u) for u in body.users]
    groups = [bindings.find_group(db, g) for g in body.groups]
    admin = principal.is_platform_admin or principal.role_on(found.id) == "admin"
    owner = None if admin else db.get(User, principal.id)
    workspace = workspaces.create_workspace(db, found.id, body.name, body.description, users, groups, owner=owner)
    audit.record(db, principal, "workspace.create", "workspace", f"{found.name}/{workspace.name}", workspace.id,
                 changes={"after": _state(db, workspace)}, source=client_address(request))
    return _out(db, workspace, found, principal)


@router.get("/clusters/{cluster}/workspaces/{workspace}", response_model=WorkspaceOut)
def get_workspace(cluster: str, workspace: str, principal: Authenticated, db: DB) -> WorkspaceOut:
    found, target, _ = load(db, principal, cluster, workspace, "read")
    return _out(db, target, found, principal)


@router.patch("/clusters/{cluster}/workspaces/{workspace}", response_model=WorkspaceOut)
def update_workspace(cluster: str, workspace: str, body: WorkspaceUpdate, principal: Authenticated, db: DB,
                     request: Request) -> WorkspaceOut:
    found, target, _ = load(db, principal, cluster, workspace, "manage")
    before = _state(db, target)
    workspaces.update_workspace(db, target, body.name, body.description,
                                clear_description="description" in body.model_fields_set and body.description is None)
    audit.record(db, principal, "workspace.update", "workspace", f"{found.name}/{target.name}", target.id,
                 changes=audit.diff(before, _state(db, target)), source=client_address(request))
    return _out(db, target, found, principal)


@router.delete("/clusters/{cluster}/workspaces/{workspace}", status_code=204)
def delete_workspace(cluster: str, workspace: str, principal: Authenticated, db: DB, request: Request) -> Response:
    found, target, _ = load(db, principal, cluster, workspace, "own")
    before = _state(db, target)
    workspaces.delete_workspace(db, target)
    audit.record(db, principal, "workspace.delete", "workspace", f"{found.name}/{before['name']}", target.id,
                 changes={"before": before}, source=client_address(request))
    return Response(status_code=204)


def _subject(db: Session, kind: str, ref: str):
    """(user, group) named by a member path: /members/users|service-accounts|groups/{ref}."""
    if kind not in MEMBER_KINDS:
        raise NotFound(f"no member kind '{kind}': use users, service-accounts or groups")
    if kind == "groups":
        return None, bindings.find_group(db, ref)
    user = find_user(db, ref)
    if (user.kind == "service_account") != (kind == "service-accounts"):
        raise invalid(kind, f"{ref} is a {user.kind.replace('_', ' ')}: use /members/"
                            f"{'service-accounts' if user.kind == 'service_account' else 'users'}/{ref}")
    return user, None


def _label(user, group) -> str:
    return f"{'service_account' if user is not None and user.kind == 'service_account' else 'user'}:{user.username}" \
        if user is not None else f"group:{group.name}"


def _check_owner_change(principal: Principal, found: Cluster, role: str | None, *roles: str) -> None:
    """Making, unmaking or removing an owner takes an owner (or an admin of the cluster)."""
    if "owner" in roles:
        refusal = workspace_refusal(principal, found.id, role, "own")
        if refusal:
            raise Forbidden(refusal)


@router.put("/clusters/{cluster}/workspaces/{workspace}/members/{kind}/{ref}", status_code=204)
def add_member(cluster: str, workspace: str, kind: str, ref: str, principal: Authenticated, db: DB,
               request: Request, body: MemberIn | None = None) -> Response:
    """Add a user, service account or group directly (an invitation is the way for a person to join by e-mail)."""
    found, target, role = load(db, principal, cluster, workspace, "manage")
    user, group = _subject(db, kind, ref)
    new_role = workspaces.check_role((body or MemberIn()).role)
    _check_owner_change(principal, found, role, new_role)
    if workspaces.add_member(db, target, user=user, group=group, role=new_role):
        audit.record(db, principal, "workspace.member_add", "workspace", f"{found.name}/{target.name}", target.id,
                     changes={"after": {"member": _label(user, group), "role": new_role}},
                     source=client_address(request))
    return Response(status_code=204)


@router.patch("/clusters/{cluster}/workspaces/{workspace}/members/{kind}/{ref}", status_code=204)
def set_member_role(cluster: str, workspace: str, kind: str, ref: str, body: RoleIn, principal: Authenticated,
                    db: DB, request: Request) -> Response:
    found, target, role = load(db, principal, cluster, workspace, "manage")
    user, group = _subject(db, kind, ref)
    member: WorkspaceMember = workspaces.find_member(db, target, user=user, group=group)
    new_role = workspaces.check_role(body.role)
    _check_owner_change(principal, found, role, new_role, member.role)
    before = workspaces.set_role(db, target, member, new_role)
    audit.record(db, principal, "workspace.member_role", "workspace", f"{found.name}/{target.name}", target.id,
                 changes={"member": _label(user, group), "before": {"role": before}, "after": {"role": new_role}},
                 source=client_address(request))
    return Response(status_code=204)


@router.delete("/clusters/{cluster}/workspaces/{workspace}/members/{kind}/{ref}", status_code=204)
def remove_member(cluster: str, workspace: str, kind: str, ref: str, principal: Authenticated, db: DB,
                  request: Request) -> Response:
    """Remove a member: it loses the workspace's quotas, and credentials scoped to the workspace are revoked; its jobs
    stay. Rejoining takes a new invitation."""
    found, target, role = load(db, principal, cluster, workspace, "manage")
    user, group = _subject(db, kind, ref)
    member = workspaces.find_member(db, target, user=user, group=group)
    _check_owner_change(principal, found, role, member.role)
    revoked = workspaces.remove_member(db, target, member, principal, client_address(request))
    audit.record(db, principal, "workspace.member_remove", "workspace", f"{found.name}/{target.name}", target.id,
                 changes={"before": {"member": _label(user, group), "role": member.role},
                          "revoked_credentials": revoked}, source=client_address(request))
    return Response(status_code=204)


def _bound_quota_names(db: Session, workspace: Workspace) -> dict[int, str]:
    return bindings.quotas_bound_to_workspace_by_id(db, workspace.id)


@router.get("/clusters/{cluster}/workspaces/{workspace}/submit-rules", response_model=list[SubmitRulesOut])
def list_submit_rules(cluster: str, workspace: str, principal: Authenticated, db: DB) -> list[SubmitRulesOut]:
    """PAI resource user roles: per bound quota, the roles and members that may submit (null roles: member and up)."""
    _, target, _ = load(db, principal, cluster, workspace, "read")
    return [SubmitRulesOut(**r) for r in submit_rules.describe(db, target, _bound_quota_names(db, target))]


@router.put("/clusters/{cluster}/workspaces/{workspace}/submit-rules/{quota}", response_model=SubmitRulesOut)
def set_submit_rules(cluster: str, workspace: str, quota: str, body: SubmitRulesIn, principal: Authenticated,
                     db: DB, request: Request) -> SubmitRulesOut:
    """Replace who may submit to one bound quota; empty roles and users restore the default (member and up)."""
    found, target, _ = load(db, principal, cluster, workspace, "manage")
    bound = _bound_quota_names(db, target)
    quota_id = next((qid for qid, name in bound.items() if name == quota.strip()), None)
    if quota_id is None:
        raise invalid("quota", f"{quota} is not bound to workspace {target.name}")
    users = [find_user(db, u) for u in body.users]
    before = submit_rules.describe(db, target, {quota_id: bound[quota_id]})[0]
    submit_rules.set_rules(db, target, quota_id, list(body.roles), users)
    after = submit_rules.describe(db, target, {quota_id: bound[quota_id]})[0]
    audit.record(db, principal, "workspace.submit_rules", "workspace", f"{found.name}/{target.name}", target.id,
                 changes=audit.diff(before, after), source=client_address(request))
    return SubmitRulesOut(**after)


router.include_router(routes_members.router)
