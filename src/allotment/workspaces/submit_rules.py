"""PAI's resource user roles: per workspace, which roles or named members may submit to each quota bound to it.

With no rule for a (workspace, quota), every member from `member` up may submit; with rules, only the roles and the
members they name may. The decision is core.permissions.seat_may_submit's; this module stores the rules and builds
the seats it judges."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from allotment.core.permissions import Principal, WorkspaceSeat
from allotment.identity.models import User
from allotment.workspaces import service
from allotment.workspaces.models import Workspace, WorkspaceSubmitRule


def rules(session: Session, workspace_ids: set[int]) -> dict[tuple[int, int], tuple[frozenset[str], frozenset[int]]]:
    """(workspace id, quota id) -> (roles, user ids) that may submit, for the workspaces given."""
    found: dict[tuple[int, int], tuple[set[str], set[int]]] = defaultdict(lambda: (set(), set()))
    if workspace_ids:
        for ws, quota, role, user_id in session.execute(
                select(WorkspaceSubmitRule.workspace_id, WorkspaceSubmitRule.quota_id, WorkspaceSubmitRule.role,
                       WorkspaceSubmitRule.user_id).where(WorkspaceSubmitRule.workspace_id.in_(workspace_ids))):
            roles, users = found[(ws, quota)]
            (roles.add(role) if role else users.add(user_id))
    return {k: (frozenset(r), frozenset(u)) for k, (r, u) in found.items()}


def seats(session: Session, principal: Principal, bound: list[tuple[int, int]]) -> dict[int, tuple[WorkspaceSeat, ...]]:
    """Quota id -> the principal's seats in the workspaces bound to it, from (quota id, workspace id) bindings."""
    roles = service.member_roles(session, principal.id, principal.kind, set(principal.group_ids))
    mine = [(q, w) for q, w in bound if w in roles]
    rule_map = rules(session, {w for _, w in mine})
    out: dict[int, list[WorkspaceSeat]] = defaultdict(list)
    for quota_id, ws in mine:
        rule = rule_map.get((ws, quota_id))
        out[quota_id].append(WorkspaceSeat(ws, roles[ws], rule[0] if rule else None,
                                           bool(rule and principal.id in rule[1])))
    return {q: tuple(s) for q, s in out.items()}


def describe(session: Session, workspace: Workspace, quota_names: dict[int, str]) -> list[dict]:
    """The workspace's rules per bound quota (quota id -> name given), for the API and console."""
    rule_map = rules(session, {workspace.id})
    names = dict(session.execute(select(User.id, User.username).where(
        User.id.in_({u for _, users in rule_map.values() for u in users}))).all()) if rule_map else {}
    return [{"quota": name, "roles": sorted(rule_map[(workspace.id, qid)][0]) if (workspace.id, qid) in rule_map
             else None, "users": sorted(names[u] for u in rule_map.get((workspace.id, qid), ((), ()))[1])}
            for qid, name in sorted(quota_names.items(), key=lambda kv: kv[1])]


def set_rules(session: Session, workspace: Workspace, quota_id: int, roles: list[str], users: list[User]) -> None:
    """Replace the rules of one bound quota; no roles and no users restores the default (member and up)."""
    session.execute(delete(WorkspaceSubmitRule).where(WorkspaceSubmitRule.workspace_id == workspace.id,
                                                      WorkspaceSubmitRule.quota_id == quota_id))
    for role in dict.fromkeys(service.check_role(r, "roles") for r in roles):
        session.add(WorkspaceSubmitRule(workspace_id=workspace.id, quota_id=quota_id, role=role))
    for user in {u.id: u for u in users}.values():
        session.add(WorkspaceSubmitRule(workspace_id=workspace.id, quota_id=quota_id, user_id=user.id))
    session.flush()
