"""Access rules: create, edit, delete and list them; each workspace's default; and the checks other domains ask
(through core.permissions.resource_refusal, the one decision point).

A rule names a resource type and, optionally, one object of it: a project (by path in the rule's workspace, or id),
a job, a model or dataset entry (by id), or a quota (by name: quotas belong to a cluster, so their rules have no
workspace and are the platform's). Its grantees are users, service accounts and groups. Checks load only the rules
that can cover the object (its own, its ancestors' and its type's), so their cost does not grow with the number of
rules elsewhere. Functions take a session and never commit.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, delete, or_, select
from sqlalchemy.orm import Session

from allotment.access.models import AccessRule, AccessRuleGrantee, WorkspaceAccessDefault
from allotment.core import access
from allotment.core.permissions import Principal, resource_refusal
from allotment.errors import Conflict, DomainError, FieldError, Forbidden, NotFound, ValidationFailed, invalid

DEFAULTS = ("modify", "read", "none")
# Rules on folders wait for folders: a rule that could name nothing would be a stub.
CREATABLE_TYPES = tuple(t for t in access.RESOURCE_TYPES if t != "folder")


@dataclass(frozen=True)
class Grantee:
    kind: str  # user | service_account | group
    name: str


@dataclass(frozen=True)
class Target:
    """A rule's resource, resolved: its type, object id (None: the whole type), workspace and a label to show."""

    resource_type: str
    resource_id: int | None
    workspace_id: int | None
    label: str


# --- checks ---------------------------------------------------------------------------------------------------------

def admin_group_ids(session: Session) -> set[int]:
    from allotment.identity.groups import builtin_group_ids

    return builtin_group_ids(session, "admins")


def project_chain(session: Session, project_id: int | None) -> tuple[access.ObjectKey, ...]:
    """("project", id) of the project and its ancestors, nearest first (the chain inheritance walks)."""
    if project_id is None:
        return ()
    from allotment.projects.service import ancestor_ids

    return tuple(("project", i) for i in ancestor_ids(session, project_id))


def resource(session: Session, resource_type: str, object_id: int, workspace_id: int | None,
             project_id: int | None = None) -> access.Resource:
    """The object as core.access sees it. For a project, `project_id` is its parent; for a job, model or dataset,
    the project it belongs to."""
    return access.Resource(resource_type, object_id, workspace_id, project_chain(session, project_id))


def _rules_covering(session: Session, resources: Sequence[access.Resource]) -> list[access.Rule]:
    objects = {(r.type, r.id) for r in resources} | {a for r in resources for a in r.ancestors}
    types = {r.type for r in resources}
    workspaces = {r.workspace_id for r in resources if r.workspace_id is not None}
    by_object = [and_(AccessRule.resource_type == t, AccessRule.resource_id.in_(sorted(i for k, i in objects if k == t)))
                 for t in {k for k, _ in objects}]
    by_type = and_(AccessRule.resource_id.is_(None), AccessRule.resource_type.in_(sorted(types)),
                   or_(AccessRule.workspace_id.is_(None), AccessRule.workspace_id.in_(sorted(workspaces))))
    rules = list(session.scalars(select(AccessRule).where(or_(by_type, *by_object))))
    return _as_core(session, rules)


def _as_core(session: Session, rules: Sequence[AccessRule]) -> list[access.Rule]:
    grantees: dict[int, list[tuple[str, int]]] = {}
    if rules:
        for row in session.scalars(select(AccessRuleGrantee).where(
                AccessRuleGrantee.rule_id.in_([r.id for r in rules]))):
            grantees.setdefault(row.rule_id, []).append(
                ("group", row.group_id) if row.group_id is not None else ("user", row.user_id))
    return [access.Rule(r.id, r.resource_type, r.level, tuple(grantees.get(r.id, ())), r.resource_id, r.workspace_id)
            for r in rules]


def index_for(session: Session, resources: Sequence[access.Resource]) -> access.RuleIndex:
    """The rules that can cover these resources, indexed."""
    return access.RuleIndex(_rules_covering(session, resources), admin_groups=admin_group_ids(session))


def index_for_type(session: Session, resource_type: str) -> access.RuleIndex:
    """The rules that can cover any object of a type that lives outside workspaces (quotas): those on its objects
    and its type-wide ones, in one query whatever the number of objects to check (a batch of jobs names hundreds of
    quotas; a list of their ids cost more to send than the few rules there are)."""
    rules = session.scalars(select(AccessRule).where(
        AccessRule.resource_type == resource_type,
        or_(AccessRule.resource_id.is_not(None), AccessRule.workspace_id.is_(None))))
    return access.RuleIndex(_as_core(session, list(rules)), admin_groups=admin_group_ids(session))


def default_level(session: Session, workspace_id: int | None) -> int:
    if workspace_id is None:
        return access.MODIFY
    row = session.get(WorkspaceAccessDefault, workspace_id)
    return access.LEVELS[row.level] if row is not None else access.MODIFY


def refusal(session: Session, principal: Principal | None, target: access.Resource, action: str,
            label: str | None = None, role_level: int = access.MODIFY, role_refusal: str | None = None,
            cluster_id: int | None = None) -> str | None:
    """Why the principal may not `action` (read | modify) the object; None when it may (see
    core.permissions.resource_refusal for what `role_level`, `role_refusal` and `cluster_id` say)."""
    index = index_for(session, [target])
    return resource_refusal(principal, index, target, action, default_level(session, target.workspace_id), label,
                            role_level, role_refusal, cluster_id)


def check(session: Session, principal: Principal | None, target: access.Resource, action: str,
          label: str | None = None, role_level: int = access.MODIFY, role_refusal: str | None = None,
          cluster_id: int | None = None) -> None:
    why = refusal(session, principal, target, action, label, role_level, role_refusal, cluster_id)
    if why:
        raise Forbidden(why)


def allowed_many(session: Session, principal: Principal, targets: Sequence[access.Resource], action: str = "read",
                 role_levels: dict[int | None, int] | None = None,
                 clusters: dict[int | None, int] | None = None) -> list[bool]:
    """For lists: whether the principal may `action` each object, with one query for all their rules.
    `role_levels` maps a workspace id to what the principal's role there allows (MODIFY when absent), `clusters` a
    workspace id to its cluster's."""
    if not targets:
        return []
    index = index_for(session, targets)
    defaults = {w: default_level(session, w) for w in {t.workspace_id for t in targets}}
    levels, clusters = role_levels or {}, clusters or {}
    return [resource_refusal(principal, index, t, action, defaults[t.workspace_id],
                             role_level=levels.get(t.workspace_id, access.MODIFY),
                             cluster_id=clusters.get(t.workspace_id)) is None for t in targets]


def readable_quotas(session: Session, principal: Principal, quotas: Sequence[tuple[int, int]]) -> set[int]:
    """Of (quota id, cluster id) pairs, the ids of the quotas the principal may read under the access rules."""
    if not quotas:
        return set()
    targets = [access.Resource("quota", quota_id) for quota_id, _ in quotas]
    index = index_for(session, targets)
    return {quota_id for (quota_id, cluster_id), target in zip(quotas, targets, strict=True)
            if resource_refusal(principal, index, target, "read", cluster_id=cluster_id) is None}


def rules_granting_group(session: Session, group_id: int) -> list[str]:
    """The rules that name the group, in words ("rule 3: read on project 7"), for its deletion's refusal."""
    rows = session.scalars(select(AccessRule).where(AccessRule.id.in_(
        select(AccessRuleGrantee.rule_id).where(AccessRuleGrantee.group_id == group_id))).order_by(AccessRule.id))
    return [f"rule {r.id}: {r.level} on {r.resource_type}" + (f" {r.resource_id}" if r.resource_id else "s")
            for r in rows]


def remove_group_everywhere(session: Session, group_id: int) -> None:
    """The group is being deleted: it leaves every rule's grantees (the other grantees keep what the rules give)."""
    session.execute(delete(AccessRuleGrantee).where(AccessRuleGrantee.group_id == group_id))


def forget_object(session: Session, resource_type: str, object_ids: Iterable[int]) -> None:
    """The objects are being deleted: their rules go with them (a later object with the same id gets none)."""
    ids = list(object_ids)
    if ids:
        session.execute(delete(AccessRule).where(AccessRule.resource_type == resource_type,
                                                 AccessRule.resource_id.in_(ids)))


# --- workspace defaults ---------------------------------------------------------------------------------------------

def set_default(session: Session, workspace_id: int, level: str) -> str:
    """Set the workspace's default; returns the one it had."""
    key = (level or "").strip().lower()
    if key not in DEFAULTS:
        raise invalid("default", f"must be one of {', '.join(DEFAULTS)}, not '{level}'")
    row = session.get(WorkspaceAccessDefault, workspace_id)
    before = row.level if row is not None else "modify"
    if key == "modify":
        if row is not None:
            session.delete(row)
    elif row is None:
        session.add(WorkspaceAccessDefault(workspace_id=workspace_id, level=key))
    else:
        row.level = key
    session.flush()
    return before


def default_name(session: Session, workspace_id: int) -> str:
    return access.LEVEL_NAMES[default_level(session, workspace_id)]


# --- resolving names ------------------------------------------------------------------------------------------------

def resolve_target(session: Session, principal: Principal, resource_type: str, ref: str | None,
                   workspace_id: int | None, cluster_id: int | None) -> Target:
    """The rule's resource from its type, an optional object reference and the workspace it is created in."""
    rtype = (resource_type or "").strip().lower()
    if rtype not in access.RESOURCE_TYPES:
        raise invalid("resource_type", f"must be one of {', '.join(CREATABLE_TYPES)}, not '{resource_type}'")
    if rtype not in CREATABLE_TYPES:
        raise invalid("resource_type", f"there are no {rtype}s to grant access to yet")
    text = (ref or "").strip()
    if rtype == "quota":
        if not text:
            return Target(rtype, None, None, "every quota")
        from allotment.quotas.service import find_quota

        try:
            quota = find_quota(session, text)
        except NotFound as exc:
            raise _missing("resource", exc.detail) from None
        if cluster_id is not None and quota.cluster_id != cluster_id:
            raise _missing("resource", f"no quota '{text}' in this cluster")
        return Target(rtype, quota.id, None, f"quota {quota.name}")
    if not text:
        label = f"every {rtype}" + (" of the workspace" if workspace_id is not None else " in every workspace")
        return Target(rtype, None, workspace_id, label)
    if workspace_id is None:
        raise invalid("workspace", f"a rule on one {rtype} is created in the {rtype}'s workspace: name it")
    return _object_target(session, principal, rtype, text, workspace_id)


def _object_target(session: Session, principal: Principal, rtype: str, text: str, workspace_id: int) -> Target:
    from allotment.core.names import as_id
    from allotment.projects import service as projects

    if rtype == "project":
        project = projects.find_by_path(session, workspace_id, text)
        if project is None and as_id(text) is not None:
            try:
                project = projects.get_project(session, as_id(text))
            except NotFound:
                project = None
            project = project if project is not None and project.workspace_id == workspace_id else None
        if project is None:
            raise _missing("resource", f"no project '{text}' in this workspace")
        return Target(rtype, project.id, workspace_id, f"project {projects.path(session, project)}")
    object_id = as_id(text)
    if object_id is None:
        raise invalid("resource", f"a {rtype} is named by its id, not '{text}'")
    if rtype == "job":
        from allotment.workloads.service import find_job

        try:
            project_id = find_job(session, principal, object_id).project_id
        except NotFound:
            raise _missing("resource", f"no job {object_id}") from None
        label = f"job {object_id}"
    else:
        from allotment.projects import artifacts

        try:
            entry = artifacts.get(session, rtype, object_id)
        except NotFound:
            raise _missing("resource", f"no {rtype} {object_id}") from None
        project_id = entry.project_id
        label = f"{rtype} {entry.name} v{entry.version}"
    if project_id is None or projects.get_project(session, project_id).workspace_id != workspace_id:
        raise _missing("resource", f"{label} is not in this workspace's projects")
    return Target(rtype, object_id, workspace_id, label)


def _missing(field: str, message: str) -> NotFound:
    error = NotFound(f"{field}: {message}")
    error.errors = [FieldError(field, message)]
    return error


def resolve_grantees(session: Session, grantees: Sequence[Grantee]) -> list[tuple[str, int, str]]:
    """(kind, id, name) of each grantee; every problem is reported at once, naming its position."""
    from allotment.identity.groups import find_group
    from allotment.identity.service import find_person
    from allotment.identity.service_accounts import find_service_account

    out: list[tuple[str, int, str]] = []
    errors: list[FieldError] = []
    missing: list[FieldError] = []
    if not grantees:
        errors.append(FieldError("grantees", "must name at least one user, group or service account"))
    finders = {"user": find_person, "service_account": find_service_account, "group": find_group}
    for position, grantee in enumerate(grantees):
        kind = (grantee.kind or "").strip().lower().replace("-", "_")
        if kind not in finders:
            errors.append(FieldError(f"grantees.{position}.kind",
                                     f"must be one of {', '.join(access.GRANTEE_KINDS)}, not '{grantee.kind}'"))
            continue
        try:
            found = finders[kind](session, grantee.name)
        except NotFound as exc:
            missing.append(FieldError(f"grantees.{position}.name", exc.detail))
            continue
        if (kind, found.id) in {(k, i) for k, i, _ in out}:
            continue  # named twice: once is enough
        out.append((kind, found.id, found.username if kind != "group" else found.name))
    if errors:
        raise ValidationFailed("; ".join(f"{e.field} {e.message}" for e in errors + missing), errors + missing)
    if missing:  # names that name nothing: a reference to nothing, not a malformed request
        raise DomainError("; ".join(f"{e.field}: {e.message}" for e in missing), missing, 404, "Not found",
                          "not_found")
    return out


# --- rules ----------------------------------------------------------------------------------------------------------

def check_level(level: str | None) -> str:
    key = (level or "").strip().lower()
    if key not in access.RULE_LEVELS:
        raise invalid("level", f"must be one of {', '.join(access.RULE_LEVELS)} (read-only or read-and-modify), "
                               f"not '{level}'")
    return key


def _set_grantees(session: Session, rule: AccessRule, grantees: list[tuple[str, int, str]]) -> None:
    session.execute(delete(AccessRuleGrantee).where(AccessRuleGrantee.rule_id == rule.id))
    for kind, grantee_id, _ in grantees:
        session.add(AccessRuleGrantee(rule_id=rule.id, group_id=grantee_id if kind == "group" else None,
                                      user_id=None if kind == "group" else grantee_id))


def _refuse_duplicate(session: Session, target: Target, level: str, own_id: int | None = None) -> None:
    """One rule per (resource, level): a second one would be the same rule with more grantees: edit that one."""
    query = select(AccessRule.id).where(AccessRule.resource_type == target.resource_type, AccessRule.level == level,
                                        AccessRule.resource_id.is_(None) if target.resource_id is None
                                        else AccessRule.resource_id == target.resource_id,
                                        AccessRule.workspace_id.is_(None) if target.workspace_id is None
                                        else AccessRule.workspace_id == target.workspace_id)
    other = session.scalar(query)
    if other is not None and other != own_id:
        raise Conflict(f"rule {other} already grants {level} on {target.label}: edit its grantees instead",
                       [FieldError("resource", f"rule {other} covers it")])


def create_rule(session: Session, target: Target, level: str, grantees: Sequence[Grantee],
                created_by_id: int | None) -> AccessRule:
    level = check_level(level)
    resolved = resolve_grantees(session, grantees)
    _refuse_duplicate(session, target, level)
    rule = AccessRule(workspace_id=target.workspace_id, resource_type=target.resource_type,
                      resource_id=target.resource_id, level=level, created_by_id=created_by_id)
    session.add(rule)
    session.flush()
    _set_grantees(session, rule, resolved)
    session.flush()
    return rule


def update_rule(session: Session, rule: AccessRule, target: Target | None, level: str | None,
                grantees: Sequence[Grantee] | None) -> None:
    """Change the resource, the level and/or the grantees (the list replaces the old one)."""
    level = check_level(level) if level is not None else rule.level
    resolved = resolve_grantees(session, grantees) if grantees is not None else None
    label = f"{rule.resource_type} {rule.resource_id}" if rule.resource_id else f"every {rule.resource_type}"
    target = target or Target(rule.resource_type, rule.resource_id, rule.workspace_id, label)
    _refuse_duplicate(session, target, level, own_id=rule.id)
    rule.resource_type, rule.resource_id, rule.workspace_id = target.resource_type, target.resource_id, \
        target.workspace_id
    rule.level = level
    if resolved is not None:
        _set_grantees(session, rule, resolved)
    session.flush()


def delete_rule(session: Session, rule: AccessRule) -> None:
    """The rule's grantees lose what it granted, and only that."""
    session.delete(rule)
    session.flush()


def find_rule(session: Session, rule_id: int) -> AccessRule:
    rule = session.get(AccessRule, rule_id)
    if rule is None:
        raise NotFound(f"no access rule {rule_id}")
    return rule


def list_rules(session: Session, workspace_ids: set[int] | None, include_global: bool,
               resource_type: str | None = None, resource_id: int | None = None,
               grantee: tuple[str, int] | None = None) -> list[AccessRule]:
    """Rules of these workspaces (every workspace: None) and, with `include_global`, the platform's; filtered."""
    query = select(AccessRule)
    scopes = []
    if workspace_ids is None:
        scopes.append(AccessRule.workspace_id.is_not(None))
    elif workspace_ids:
        scopes.append(AccessRule.workspace_id.in_(sorted(workspace_ids)))
    if include_global:
        scopes.append(AccessRule.workspace_id.is_(None))
    if not scopes:
        return []
    query = query.where(or_(*scopes))
    if resource_type:
        query = query.where(AccessRule.resource_type == resource_type)
    if resource_id is not None:
        query = query.where(AccessRule.resource_id == resource_id)
    if grantee is not None:
        kind, grantee_id = grantee
        column = AccessRuleGrantee.group_id if kind == "group" else AccessRuleGrantee.user_id
        query = query.where(AccessRule.id.in_(select(AccessRuleGrantee.rule_id).where(column == grantee_id)))
    return list(session.scalars(query.order_by(AccessRule.id)))


def grantees_of(session: Session, rule_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    from allotment.identity.groups import names_of_groups
    from allotment.identity.service import names_of_users

    rows = list(session.scalars(select(AccessRuleGrantee).where(AccessRuleGrantee.rule_id.in_(rule_ids))
                                .order_by(AccessRuleGrantee.id))) if rule_ids else []
    users = names_of_users(session, {r.user_id for r in rows if r.user_id is not None})
    groups = names_of_groups(session, {r.group_id for r in rows if r.group_id is not None})
    out: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        if row.group_id is not None:
            out.setdefault(row.rule_id, []).append({"kind": "group", "name": groups.get(row.group_id, "?")})
        else:
            kind, name = users.get(row.user_id, ("user", "?"))
            out.setdefault(row.rule_id, []).append({"kind": kind, "name": name})
    return out
