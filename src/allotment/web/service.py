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
from allotment.inventory.models import Cluster, Device, Pool
from allotment.quotas.models import Quota
from allotment.workloads.models import STATES, Job


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
        {"label": "Devices", "value": _count(session, select(func.count()).select_from(Device)),
         "note": "GPUs reported by nodes", "href": "/ui/clusters"},
        {"label": "Quotas", "value": _count(session, select(func.count()).select_from(Quota)), "note": "",
         "href": "/ui/quotas"},
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



def jobs_by_state(session: Session, principal: Principal) -> dict[str, int]:
    """Job counts per state: every job for a platform admin, one's own otherwise (the dashboard's summary)."""
    query = select(Job.state, func.count()).group_by(Job.state)
    if not principal.is_platform_admin:
        query = query.where(Job.owner_id == principal.id)
    counts = dict(session.execute(query).all())
    return {state: int(counts.get(state, 0)) for state in STATES}
