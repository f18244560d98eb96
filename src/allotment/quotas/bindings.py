"""Who may submit to a quota: users and groups bound to it (PAI workspace -> quota, DKube group -> pool, ClearML
user group -> policy), plus platform admins and the admins of the quota's cluster ("an admin anywhere")."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from allotment.core.permissions import Principal
from allotment.errors import NotFound
from allotment.identity.models import USERS_GROUP, Group, User
from allotment.quotas.models import Quota, QuotaBinding


def list_bindings(session: Session, quota_id: int) -> list[dict]:
    rows = session.execute(
        select(QuotaBinding, User.username, Group.name)
        .outerjoin(User, User.id == QuotaBinding.user_id).outerjoin(Group, Group.id == QuotaBinding.group_id)
        .where(QuotaBinding.quota_id == quota_id).order_by(QuotaBinding.id)
    ).all()
    return [{"kind": "user" if b.user_id else "group", "name": user or group, "created_at": b.created_at}
            for b, user, group in rows]


def bind(session: Session, quota: Quota, user: User | None = None, group: Group | None = None) -> bool:
    """Bind a user or a group; returns False when the binding existed already (idempotent)."""
    column, value = (QuotaBinding.user_id, user.id) if user is not None else (QuotaBinding.group_id, group.id)
    exists = session.scalar(select(QuotaBinding.id).where(QuotaBinding.quota_id == quota.id, column == value))
    if exists is not None:
        return False
    session.add(QuotaBinding(quota_id=quota.id, user_id=user.id if user else None,
                             group_id=group.id if group else None))
    session.flush()
    return True


def unbind(session: Session, quota: Quota, user: User | None = None, group: Group | None = None) -> None:
    column, value, label = ((QuotaBinding.user_id, user.id, f"user {user.username}") if user is not None
                            else (QuotaBinding.group_id, group.id, f"group {group.name}"))
    binding = session.scalar(select(QuotaBinding).where(QuotaBinding.quota_id == quota.id, column == value))
    if binding is None:
        raise NotFound(f"{label} is not bound to quota {quota.name}")
    session.delete(binding)
    session.flush()


def find_group(session: Session, ref: str) -> Group:
    text = str(ref).strip()
    group = session.scalar(select(Group).where(Group.name == text))
    if group is None and text.isdigit():
        group = session.get(Group, int(text))
    if group is None:
        raise NotFound(f"no group '{text}'")
    return group


def is_quota_admin(principal: Principal, quota: Quota) -> bool:
    return principal.is_platform_admin or principal.role_on(quota.cluster_id) == "admin"


def may_submit(session: Session, principal: Principal, quota: Quota) -> bool:
    if is_quota_admin(principal, quota):
        return True
    rows = session.execute(select(QuotaBinding.user_id, QuotaBinding.group_id)
                           .where(QuotaBinding.quota_id == quota.id)).all()
    if not rows:
        return False
    everyone = session.scalar(select(Group.id).where(Group.name == USERS_GROUP))
    return any(user_id == principal.id or (group_id is not None and
                                          (group_id in principal.group_ids or group_id == everyone))
               for user_id, group_id in rows)


def submittable_quota_ids(session: Session, principal: Principal) -> set[int] | None:
    """Quota ids the principal may submit to through bindings; None when it is a platform admin (all)."""
    if principal.is_platform_admin:
        return None
    everyone = session.scalar(select(Group.id).where(Group.name == USERS_GROUP))
    groups = set(principal.group_ids) | ({everyone} if everyone is not None else set())
    rows = session.execute(select(QuotaBinding.quota_id).where(
        (QuotaBinding.user_id == principal.id) | (QuotaBinding.group_id.in_(groups)))).all()
    ids = {r[0] for r in rows}
    admin_clusters = [c for c, role in principal.cluster_roles.items() if role == "admin"]
    if admin_clusters:
        ids |= set(session.scalars(select(Quota.id).where(Quota.cluster_id.in_(admin_clusters))).all())
    return ids
