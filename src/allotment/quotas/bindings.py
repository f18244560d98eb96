"""Who may submit to a quota: users, groups and workspaces bound to it (PAI workspace -> quota: the workspace's
members, DKube group -> pool, ClearML user group -> policy), plus platform admins and the admins of the quota's
cluster ("an admin anywhere"). Membership is read at each submission, so removing a member revokes at once (jobs
already submitted stay, as with an unbound user or group)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from allotment.core.names import as_id
from allotment.core.permissions import Principal, bound_to
from allotment.core.permissions import may_submit as may_submit_to_cluster
from allotment.errors import NotFound
from allotment.identity.models import USERS_GROUP, Group, User
from allotment.quotas.models import Quota, QuotaBinding

if TYPE_CHECKING:
    from allotment.workspaces.models import Workspace


def list_bindings(session: Session, quota_id: int) -> list[dict]:
    from allotment.workspaces import service as workspaces

    rows = session.execute(
        select(QuotaBinding, User.username, Group.name)
        .outerjoin(User, User.id == QuotaBinding.user_id).outerjoin(Group, Group.id == QuotaBinding.group_id)
        .where(QuotaBinding.quota_id == quota_id).order_by(QuotaBinding.id)
    ).all()
    names = workspaces.names_by_id(session, {b.workspace_id for b, _, _ in rows if b.workspace_id})
    return [{"kind": "user" if b.user_id else "group" if b.group_id else "workspace",
             "name": user or group or names.get(b.workspace_id), "created_at": b.created_at}
            for b, user, group in rows]


def _target(user: User | None, group: Group | None, workspace: Workspace | None):
    """(column, id, label) of the one principal a binding is about."""
    if user is not None:
        return QuotaBinding.user_id, user.id, f"user {user.username}"
    if group is not None:
        return QuotaBinding.group_id, group.id, f"group {group.name}"
    assert workspace is not None
    return QuotaBinding.workspace_id, workspace.id, f"workspace {workspace.name}"


def bind(session: Session, quota: Quota, user: User | None = None, group: Group | None = None,
         workspace: Workspace | None = None) -> bool:
    """Bind a user, a group or a workspace; returns False when the binding existed already (idempotent)."""
    column, value, _ = _target(user, group, workspace)
    exists = session.scalar(select(QuotaBinding.id).where(QuotaBinding.quota_id == quota.id, column == value))
    if exists is not None:
        return False
    session.add(QuotaBinding(quota_id=quota.id, user_id=user.id if user else None,
                             group_id=group.id if group else None, workspace_id=workspace.id if workspace else None))
    session.flush()
    return True


def unbind(session: Session, quota: Quota, user: User | None = None, group: Group | None = None,
           workspace: Workspace | None = None) -> None:
    column, value, label = _target(user, group, workspace)
    binding = session.scalar(select(QuotaBinding).where(QuotaBinding.quota_id == quota.id, column == value))
    if binding is None:
        raise NotFound(f"{label} is not bound to quota {quota.name}")
    session.delete(binding)
    session.flush()


def find_group(session: Session, ref: str) -> Group:
    text = str(ref).strip()
    group = session.scalar(select(Group).where(Group.name == text))
    if group is None and as_id(text):
        group = session.get(Group, as_id(text))
    if group is None:
        raise NotFound(f"no group '{text}'")
    return group


def is_quota_admin(principal: Principal, quota: Quota) -> bool:
    return principal.is_platform_admin or principal.role_on(quota.cluster_id) == "admin"


def _groups_of(session: Session, principal: Principal) -> set[int]:
    """The principal's groups, with the built-in `users` group everyone is implicitly in."""
    everyone = session.scalar(select(Group.id).where(Group.name == USERS_GROUP))
    return set(principal.group_ids) | ({everyone} if everyone is not None else set())


def workspace_ids(session: Session, principal: Principal, groups: set[int] | None = None) -> set[int]:
    """The workspaces the principal is a member of: directly, or through one of its groups."""
    from allotment.workspaces import service as workspaces  # workspaces name the quotas bound to them: no cycle

    groups = _groups_of(session, principal) if groups is None else groups
    return workspaces.workspace_ids_of(session, principal.id, principal.kind, groups)


def quotas_bound_to_workspace(session: Session, workspace_id: int) -> list[str]:
    """Names of the quotas bound to the workspace (its members may submit to them)."""
    return list(session.scalars(select(Quota.name).join(QuotaBinding, QuotaBinding.quota_id == Quota.id)
                                .where(QuotaBinding.workspace_id == workspace_id).order_by(Quota.name)).all())


def quotas_bound_to_workspace_by_id(session: Session, workspace_id: int) -> dict[int, str]:
    return dict(session.execute(select(Quota.id, Quota.name).join(QuotaBinding, QuotaBinding.quota_id == Quota.id)
                                .where(QuotaBinding.workspace_id == workspace_id)).all())


def may_submit(session: Session, principal: Principal, quota: Quota) -> bool:
    """Whether the quota is bound to the principal: core.permissions.bound_to decides from its direct and group
    bindings and its seats in the workspaces bound to the quota (roles, submit rules, credential scope)."""
    from allotment.workspaces import submit_rules

    if is_quota_admin(principal, quota):
        return True
    rows = session.execute(select(QuotaBinding.user_id, QuotaBinding.group_id, QuotaBinding.workspace_id)
                           .where(QuotaBinding.quota_id == quota.id)).all()
    if not rows:
        return False
    groups = _groups_of(session, principal)
    direct = any(user_id == principal.id or (group_id is not None and group_id in groups)
                 for user_id, group_id, _ in rows)
    bound = [(quota.id, w) for _, _, w in rows if w is not None]
    seats = submit_rules.seats(session, principal, bound).get(quota.id, ()) if bound else ()
    return bound_to(principal, direct, seats)


def submittable_quota_ids(session: Session, principal: Principal) -> set[int] | None:
    """Quota ids the principal may submit to through bindings; None when it is a platform admin (all)."""
    from allotment.workspaces import submit_rules

    if principal.is_platform_admin:
        return None
    groups = _groups_of(session, principal)
    workspaces = workspace_ids(session, principal, groups)
    direct = set(session.scalars(select(QuotaBinding.quota_id).where(
        (QuotaBinding.user_id == principal.id) | (QuotaBinding.group_id.in_(groups)))).all())
    bound = [tuple(r) for r in session.execute(select(QuotaBinding.quota_id, QuotaBinding.workspace_id).where(
        QuotaBinding.workspace_id.in_(workspaces))).all()]
    seats = submit_rules.seats(session, principal, bound)
    ids = {q for q in direct | set(seats) if bound_to(principal, q in direct, seats.get(q, ()))}
    admin_clusters = [c for c, role in principal.cluster_roles.items() if role == "admin"]
    if admin_clusters:
        ids |= set(session.scalars(select(Quota.id).where(Quota.cluster_id.in_(admin_clusters))).all())
    # A binding counts only on a cluster the principal has access to (core.permissions.submit_refusal).
    return {qid for qid, cluster_id in session.execute(select(Quota.id, Quota.cluster_id).where(Quota.id.in_(ids)))
            if may_submit_to_cluster(principal, cluster_id, bound=True)} if ids else ids
