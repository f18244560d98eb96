"""Read models that only the console needs (the dashboard's counts). Functions take a session and never write.

Everything a page changes, and every list the API also serves, goes through the owning domain's service instead.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from allotment.audit.models import AuditEvent
from allotment.core.permissions import Principal
from allotment.core.quantity import format_raw
from allotment.identity.models import SERVICE_ACCOUNT, USER, Credential, Group, User
from allotment.inventory.models import HEALTHY, NODE_READY, Cluster, Device, Node, Pool
from allotment.quotas.models import Quota
from allotment.workloads.models import HOLDING_STATES, QUEUED, STATES, Job, active


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


def _cluster_ids(session: Session, cluster_ids: set[int] | None) -> list[int]:
    """The clusters to read, as a list the jobs indexes (cluster, state, ...) can be searched with."""
    if cluster_ids is None:
        return list(session.scalars(select(Cluster.id)).all())
    return sorted(cluster_ids)


def _cluster_filter(column, cluster_ids: list[int]):
    return column.in_(cluster_ids or [-1])


def pool_gpus(session: Session, cluster_ids: set[int] | None) -> list[dict]:
    """Per pool of the given clusters (None: all): usable GPUs (healthy, on ready nodes), how many running and
    admitted jobs hold there, how many are free, and the devices' mean utilisation as the engines report it."""
    cluster_ids = _cluster_ids(session, cluster_ids)
    pools = session.execute(select(Pool.id, Pool.name, Cluster.name).join(Cluster, Cluster.id == Pool.cluster_id)
                            .where(_cluster_filter(Pool.cluster_id, cluster_ids))
                            .order_by(Cluster.name, Pool.name)).all()
    usable = dict(session.execute(
        select(Device.pool_id, func.count()).join(Node, Node.id == Device.node_id)
        .where(_cluster_filter(Node.cluster_id, cluster_ids), Device.health == HEALTHY, Node.status == NODE_READY)
        .group_by(Device.pool_id)).all())
    utilisation = dict(session.execute(
        select(Device.pool_id, func.avg(Device.utilisation)).join(Node, Node.id == Device.node_id)
        .where(_cluster_filter(Node.cluster_id, cluster_ids)).group_by(Device.pool_id)).all())
    placed = func.coalesce(Job.placed_pool_id, Job.pool_id)
    held = dict(session.execute(
        select(placed, func.sum(Job.gpu_milli)).where(active(*HOLDING_STATES),
                                                      _cluster_filter(Job.cluster_id, cluster_ids))
        .group_by(placed)).all())
    rows = []
    for pool_id, pool, cluster in pools:
        total_milli = int(usable.get(pool_id, 0)) * 1000
        held_milli = int(held.get(pool_id) or 0)
        rows.append({
            "cluster": cluster, "pool": pool, "gpus": format_raw(total_milli, "gpu"),
            "allocated": format_raw(held_milli, "gpu"), "free": format_raw(max(0, total_milli - held_milli), "gpu"),
            "allocated_percent": round(100 * held_milli / total_milli) if total_milli else 0,
            "utilisation": None if utilisation.get(pool_id) is None else round(float(utilisation[pool_id])),
        })
    return rows


def longest_waits(session: Session, principal: Principal, now: datetime, limit: int = 5) -> list[dict]:
    """The queued jobs that have waited longest (everyone's for platform admins, one's own otherwise), with why."""
    rows = []
    # Per cluster, the active-jobs index (cluster_id, seq) gives the oldest active jobs at once; seq is submission order.
    for cluster_id in _cluster_ids(session, None):
        query = (select(Job.id, Job.name, Job.submitted_at, Job.reason, User.username, Cluster.name)
                 .join(User, User.id == Job.owner_id).join(Cluster, Cluster.id == Job.cluster_id)
                 .where(Job.cluster_id == cluster_id, active(QUEUED)).order_by(Job.seq).limit(limit))
        if not principal.is_platform_admin:
            query = query.where(Job.owner_id == principal.id)
        rows.extend(session.execute(query).all())
    rows.sort(key=lambda row: (row[2], row[0]))
    out = []
    for job_id, name, submitted_at, reason, owner, cluster in rows[:limit]:
        out.append({"id": job_id, "name": name, "owner": owner, "cluster": cluster, "reason": reason,
                    "waited": duration_text(now - submitted_at)})
    return out


def duration_text(span: timedelta) -> str:
    """"3 d 4 h", "2 h 5 min", "7 min", "40 s": the two largest units, for waits and run times."""
    seconds = max(0, int(span.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min"
    return f"{secs} s"


def unhealthy_nodes(session: Session, cluster_ids: set[int] | None, limit: int = 20) -> list[dict]:
    """Nodes that are down, draining or unhealthy, or hold an unhealthy device, with how many of their GPUs are."""
    cluster_ids = _cluster_ids(session, cluster_ids)
    bad_devices = dict(session.execute(
        select(Device.node_id, func.count()).join(Node, Node.id == Device.node_id)
        .where(_cluster_filter(Node.cluster_id, cluster_ids), Device.health != HEALTHY)
        .group_by(Device.node_id)).all())
    rows = session.execute(
        select(Node, Cluster.name).join(Cluster, Cluster.id == Node.cluster_id)
        .where(_cluster_filter(Node.cluster_id, cluster_ids),
               (Node.health != HEALTHY) | (Node.status != NODE_READY) | Node.id.in_(list(bad_devices) or [-1]))
        .order_by(Cluster.name, Node.name).limit(limit)).all()
    return [{"cluster": cluster, "node": node.name, "status": node.status, "health": node.health,
             "bad_devices": int(bad_devices.get(node.id, 0)), "last_seen_at": node.last_seen_at}
            for node, cluster in rows]
