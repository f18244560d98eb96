"""Read models that only the console needs (the dashboard's counts). Functions take a session and never write.

Everything a page changes, and every list the API also serves, goes through the owning domain's service instead.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from allotment.audit.models import AuditEvent
from allotment.core.permissions import Principal
from allotment.identity.models import SERVICE_ACCOUNT, USER, Credential, Group, User
from allotment.inventory.models import Cluster, Pool


def _count(session: Session, stmt) -> int:
    return int(session.scalar(stmt) or 0)


def platform_counts(session: Session, now: datetime) -> list[dict]:
    """The admin dashboard's tiles: label, number, a short qualifier and where to click through."""
    users = dict(session.execute(
        select(User.is_active, func.count()).where(User.kind == USER).group_by(User.is_active)
    ).all())
    service_accounts = _count(session, select(func.count()).select_from(User).where(
        User.kind == SERVICE_ACCOUNT, User.deleted_at.is_(None)))
    active_credentials = _count(session, select(func.count()).select_from(Credential).where(
        Credential.revoked_at.is_(None), (Credential.expires_at.is_(None)) | (Credential.expires_at > now)))
    return [
        {"label": "Users", "value": users.get(True, 0), "note": f"{users.get(False, 0)} inactive",
         "href": "/ui/users"},
        {"label": "Service accounts", "value": service_accounts, "note": "API-only principals",
         "href": "/ui/service-accounts"},
        {"label": "Groups", "value": _count(session, select(func.count()).select_from(Group)), "note": "",
         "href": "/ui/groups"},
        {"label": "Clusters", "value": _count(session, select(func.count()).select_from(Cluster)),
         "note": f"{_count(session, select(func.count()).select_from(Pool))} pools", "href": "/ui/clusters"},
        {"label": "Active credentials", "value": active_credentials, "note": "access keys", "href": None},
        {"label": "Audit events", "value": _count(session, select(func.count()).select_from(AuditEvent).where(
            AuditEvent.at > now - timedelta(hours=24))), "note": "last 24 hours", "href": "/ui/audit"},
    ]


def own_counts(session: Session, principal: Principal, now: datetime) -> list[dict]:
    """A non-admin's dashboard: what they can use and hold."""
    credentials = _count(session, select(func.count()).select_from(Credential).where(
        Credential.user_id == principal.id, Credential.revoked_at.is_(None),
        (Credential.expires_at.is_(None)) | (Credential.expires_at > now)))
    return [
        {"label": "Clusters you can use", "value": len(principal.cluster_roles), "note": "", "href": "/ui/clusters"},
        {"label": "Your groups", "value": len(principal.group_ids), "note": "", "href": None},
        {"label": "Your active credentials", "value": credentials, "note": "access keys", "href": "/ui/credentials"},
    ]


def recent_events(session: Session, limit: int = 8) -> list[AuditEvent]:
    return list(session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)))


def clusters_with_pools(session: Session, principal: Principal) -> list[dict]:
    """Clusters the principal may use (all of them for a platform admin), each with its pools and the role held."""
    query = select(Cluster).order_by(Cluster.name)
    if not principal.is_platform_admin:
        query = query.where(Cluster.id.in_(list(principal.cluster_roles)))
    clusters = list(session.scalars(query))
    pools: dict[int, list[Pool]] = {}
    for pool in session.scalars(select(Pool).where(Pool.cluster_id.in_([c.id for c in clusters]))
                                .order_by(Pool.is_default.desc(), Pool.name)):
        pools.setdefault(pool.cluster_id, []).append(pool)
    return [{"cluster": c, "pools": pools.get(c.id, []),
             "role": "platform admin" if principal.is_platform_admin and c.id not in principal.cluster_roles
             else principal.cluster_roles.get(c.id)} for c in clusters]
