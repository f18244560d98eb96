"""Access rules API (ClearML): /access-rules (list with filters, create, show, edit, delete) and each workspace's
default for objects no rule covers (/clusters/{cluster}/workspaces/{workspace}/access-default).

Who may see and grant is decided by core.permissions.access_rules_refusal: platform admins everywhere (and alone for
platform rules: those without a workspace, quotas' included); owners and admins of a workspace for its rules; any
member reads its workspace's rules. Every change is audited."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy.orm import Session

from allotment.access import service as rules
from allotment.access.models import AccessRule
from allotment.access.schemas import DefaultIn, DefaultOut, ResourceType, RuleCreate, RuleList, RuleOut, RuleUpdate
from allotment.api.deps import DB, client_address, require
from allotment.api.fields import IdPath
from allotment.audit import service as audit
from allotment.core import access
from allotment.core.names import as_id
from allotment.core.permissions import AUTHENTICATED, Principal, access_rules_refusal
from allotment.errors import DomainError, Forbidden, NotFound, invalid
from allotment.inventory.service import find_cluster
from allotment.workspaces import service as workspaces
from allotment.workspaces.models import Workspace

router = APIRouter(tags=["access rules"])
Authenticated = Annotated[Principal, require(AUTHENTICATED)]
DEFAULT_CLUSTER = "local"


def _refuse(db: Session, principal: Principal, workspace: Workspace | None, action: str) -> None:
    role = workspaces.role_of(db, principal, workspace) if workspace is not None else None
    why = access_rules_refusal(principal, action, role, global_rule=workspace is None,
                               cluster_id=workspace.cluster_id if workspace is not None else None)
    if why:
        raise Forbidden(why)


def _workspace(db: Session, cluster: str | None, workspace: str | None) -> tuple[int, Workspace | None]:
    found = find_cluster(db, cluster or DEFAULT_CLUSTER)
    if not workspace:
        return found.id, None
    try:
        return found.id, workspaces.find_workspace(db, found.id, workspace)
    except NotFound as exc:
        raise rules._missing("workspace", exc.detail) from None


def _label(db: Session, rule: AccessRule) -> str:
    if rule.resource_id is None:
        return f"every {rule.resource_type}" + (" of the workspace" if rule.workspace_id else "")
    try:
        if rule.resource_type == "project":
            from allotment.projects import service as projects

            return f"project {projects.path(db, projects.get_project(db, rule.resource_id))}"
        if rule.resource_type in ("model", "dataset"):
            from allotment.projects import artifacts

            entry = artifacts.get(db, rule.resource_type, rule.resource_id)
            return f"{rule.resource_type} {entry.name} v{entry.version}"
        if rule.resource_type == "quota":
            from allotment.quotas.service import find_quota

            return f"quota {find_quota(db, rule.resource_id).name}"
    except NotFound:
        return f"{rule.resource_type} {rule.resource_id} (deleted)"
    return f"{rule.resource_type} {rule.resource_id}"


def _out(db: Session, rule: AccessRule, grantees: dict[int, list[dict[str, Any]]] | None = None) -> RuleOut:
    grantees = grantees if grantees is not None else rules.grantees_of(db, [rule.id])
    workspace = db.get(Workspace, rule.workspace_id) if rule.workspace_id is not None else None
    cluster = find_cluster(db, workspace.cluster_id).name if workspace is not None else None
    return RuleOut(id=rule.id, cluster=cluster, workspace=workspace.name if workspace else None,
                   resource_type=rule.resource_type, resource_id=rule.resource_id, resource=_label(db, rule),
                   level=rule.level, grantees=grantees.get(rule.id, []), created_at=rule.created_at,
                   updated_at=rule.updated_at)


def _state(db: Session, rule: AccessRule) -> dict[str, Any]:
    out = _out(db, rule)
    return {"workspace": out.workspace, "resource": out.resource, "level": out.level,
            "grantees": [f"{g.kind}:{g.name}" for g in out.grantees]}


def _grantee_filter(db: Session, text: str) -> tuple[str, int]:
    """`group:NAME`, `user:NAME`, `service_account:NAME`, or a bare name (a user or service account, else a group)."""
    kind, sep, name = text.partition(":")
    if not sep:
        kind, name = "", text
    kinds = [kind.strip().lower().replace("-", "_")] if kind else ["user", "service_account", "group"]
    for each in kinds:
        try:
            resolved = rules.resolve_grantees(db, [rules.Grantee(each, name.strip())])
        except DomainError:  # not this kind: try the next, reported below
            continue
        return ("group" if each == "group" else "user"), resolved[0][1]
    raise rules._missing("grantee", f"no user, service account or group '{text.strip()}'")


@router.get("/access-rules", response_model=RuleList)
def list_rules(principal: Authenticated, db: DB,
               cluster: Annotated[str | None, Query(max_length=64, description="default: local")] = None,
               workspace: Annotated[str | None, Query(max_length=64, description="one workspace's rules")] = None,
               resource_type: Annotated[ResourceType | None, Query(description="the View filter")] = None,
               resource: Annotated[str | None, Query(max_length=255, description="one object (with "
                                                                                 "resource_type)")] = None,
               grantee: Annotated[str | None, Query(max_length=200, description="kind:name or a name")] = None,
               ) -> RuleList:
    """The rules the caller may see: a platform admin every rule, others their workspaces' rules; filtered by
    workspace, resource type (ClearML's View), one resource, and grantee."""
    cluster_id, target = _workspace(db, cluster, workspace)
    if target is not None:
        _refuse(db, principal, target, "read")
        ids: set[int] | None = {target.id}
    elif principal.is_platform_admin:
        ids = None
    else:
        ids = set(workspaces.member_roles(db, principal.id, principal.kind, set(principal.group_ids)))
    rtype = None
    if resource_type:
        rtype = resource_type.strip().lower()
        if rtype not in access.RESOURCE_TYPES:
            raise invalid("resource_type", f"must be one of {', '.join(access.RESOURCE_TYPES)}, not "
                                           f"'{resource_type}'")
    resource_id = None
    if resource:
        if rtype is None:
            raise invalid("resource", "give resource_type with resource")
        if rtype == "quota" or target is not None:
            resource_id = rules.resolve_target(db, principal, rtype, resource, target.id if target else None,
                                               cluster_id).resource_id
        elif as_id(resource) is not None:
            resource_id = as_id(resource)
        else:
            raise invalid("resource", f"name the workspace to find {rtype} '{resource}' by name, or give its id")
    found = rules.list_rules(db, ids, include_global=principal.is_platform_admin and target is None,
                             resource_type=rtype, resource_id=resource_id,
                             grantee=_grantee_filter(db, grantee) if grantee else None)
    names = rules.grantees_of(db, [r.id for r in found])
    return RuleList(items=[_out(db, r, names) for r in found], total=len(found))


@router.post("/access-rules", response_model=RuleOut, status_code=201)
def create_rule(body: RuleCreate, principal: Authenticated, db: DB, request: Request) -> RuleOut:
    """Grant `level` on a resource type or one object to users, service accounts and groups."""
    cluster_id, target_ws = _workspace(db, body.cluster, body.workspace)
    _refuse(db, principal, target_ws, "manage")
    target = rules.resolve_target(db, principal, body.resource_type, body.resource,
                                  target_ws.id if target_ws else None, cluster_id)
    if target.workspace_id is None and target_ws is not None:
        raise invalid("workspace", "rules on quotas belong to the platform: leave the workspace out")
    _refuse(db, principal, target_ws if target.workspace_id else None, "manage")
    rule = rules.create_rule(db, target, body.level, [rules.Grantee(g.kind, g.name) for g in body.grantees],
                             principal.id)
    audit.record(db, principal, "access_rule.create", "access_rule", target.label, rule.id,
                 changes={"after": _state(db, rule)}, source=client_address(request))
    return _out(db, rule)


def _load(db: Session, principal: Principal, rule_id: int, action: str) -> AccessRule:
    rule = rules.find_rule(db, rule_id)
    workspace = db.get(Workspace, rule.workspace_id) if rule.workspace_id is not None else None
    try:
        _refuse(db, principal, workspace, action)
    except Forbidden:
        if action == "read" or access_rules_refusal(principal, "read", workspaces.role_of(db, principal, workspace)
                                                    if workspace else None, workspace is None,
                                                    workspace.cluster_id if workspace else None):
            raise NotFound(f"no access rule {rule_id}") from None  # not even its existence for outsiders
        raise
    return rule


@router.get("/access-rules/{rule}", response_model=RuleOut)
def show_rule(rule: IdPath, principal: Authenticated, db: DB) -> RuleOut:
    return _out(db, _load(db, principal, rule, "read"))


@router.patch("/access-rules/{rule}", response_model=RuleOut)
def update_rule(rule: IdPath, body: RuleUpdate, principal: Authenticated, db: DB, request: Request) -> RuleOut:
    """Change the resource, the level and/or the grantees (the list given replaces them)."""
    found = _load(db, principal, rule, "manage")
    before = _state(db, found)
    target = None
    if body.resource_type is not None or "resource" in body.model_fields_set:
        workspace = db.get(Workspace, found.workspace_id) if found.workspace_id is not None else None
        target = rules.resolve_target(db, principal, body.resource_type or found.resource_type, body.resource,
                                      found.workspace_id, workspace.cluster_id if workspace else None)
        if (target.workspace_id is None) != (found.workspace_id is None):
            raise invalid("resource_type", "a rule cannot move between a workspace and the platform: delete it and "
                                           "create another")
    grantees = [rules.Grantee(g.kind, g.name) for g in body.grantees] if body.grantees is not None else None
    rules.update_rule(db, found, target, body.level, grantees)
    after = _state(db, found)
    diff = audit.diff(before, after)
    if diff["after"]:
        audit.record(db, principal, "access_rule.update", "access_rule", after["resource"], found.id, changes=diff,
                     source=client_address(request))
    return _out(db, found)


@router.delete("/access-rules/{rule}", status_code=204)
def delete_rule(rule: IdPath, principal: Authenticated, db: DB, request: Request) -> Response:
    """Its grantees lose what it granted, and only that (other rules' grants stay)."""
    found = _load(db, principal, rule, "manage")
    before = _state(db, found)
    rules.delete_rule(db, found)
    audit.record(db, principal, "access_rule.delete", "access_rule", before["resource"], rule,
                 changes={"before": before, "after": None}, source=client_address(request))
    return Response(status_code=204)


@router.get("/clusters/{cluster}/workspaces/{workspace}/access-default", response_model=DefaultOut)
def show_default(cluster: str, workspace: str, principal: Authenticated, db: DB) -> DefaultOut:
    """What objects no rule covers grant the workspace's members (ClearML's default: modify)."""
    found = find_cluster(db, cluster)
    target = workspaces.find_workspace(db, found.id, workspace)
    _refuse(db, principal, target, "read")
    return DefaultOut(cluster=found.name, workspace=target.name, default=rules.default_name(db, target.id))


@router.put("/clusters/{cluster}/workspaces/{workspace}/access-default", response_model=DefaultOut)
def set_default(cluster: str, workspace: str, body: DefaultIn, principal: Authenticated, db: DB,
                request: Request) -> DefaultOut:
    found = find_cluster(db, cluster)
    target = workspaces.find_workspace(db, found.id, workspace)
    _refuse(db, principal, target, "manage")
    before = rules.set_default(db, target.id, body.default)
    after = rules.default_name(db, target.id)
    if before != after:
        audit.record(db, principal, "workspace.access_default", "workspace", f"{found.name}/{target.name}", target.id,
                     changes={"before": {"default": before}, "after": {"default": after}},
                     source=client_address(request))
    return DefaultOut(cluster=found.name, workspace=target.name, default=after)
