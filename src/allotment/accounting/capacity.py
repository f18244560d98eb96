"""Pool capacity over time: the history of each pool's device count, so that utilisation over a past period is
measured against what the pool held then rather than what it holds today.

The inventory service calls `record` wherever it changes devices, nodes or pools (it bumps the cluster's
configuration version there); a row is written only for a pool whose count changed. The usage recalculation (at
start-up and on request) gives each pool without rows one from its creation with its current count (`baseline`), so
history kept from an upgrade on still knows what older pools held before their first change. A pool without any row
has had its current count all along.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from allotment.accounting.models import PoolCapacityChange
from allotment.inventory.models import Device, Pool

Steps = list[tuple[float, int]]  # (from when, devices), in time order


def _counts(session: Session, cluster_id: int) -> dict[int, int]:
    pools = session.scalars(select(Pool.id).where(Pool.cluster_id == cluster_id)).all()
    counts = dict(session.execute(
        select(Device.pool_id, func.count()).join(Pool, Pool.id == Device.pool_id)
        .where(Pool.cluster_id == cluster_id).group_by(Device.pool_id)).all())
    return {pool_id: counts.get(pool_id, 0) for pool_id in pools}


def _latest(session: Session, cluster_id: int) -> dict[int, int]:
    last = select(func.max(PoolCapacityChange.id)).where(PoolCapacityChange.cluster_id == cluster_id) \
        .group_by(PoolCapacityChange.pool_id)
    return dict(session.execute(select(PoolCapacityChange.pool_id, PoolCapacityChange.devices)
                                .where(PoolCapacityChange.id.in_(last))).all())


def record(session: Session, cluster_id: int, now: float) -> int:
    """Write a row for each of the cluster's pools whose device count differs from its latest row (a removed pool
    goes to 0; a pool without rows starts at its creation). Returns how many rows were written."""
    current = _counts(session, cluster_id)
    latest = _latest(session, cluster_id)
    created = _created(session, [p for p in current if p not in latest])
    written = 0
    for pool_id in sorted(set(current) | set(latest)):
        devices = current.get(pool_id, 0)
        if latest.get(pool_id) != devices:
            at = min(created.get(pool_id, now), now)
            session.add(PoolCapacityChange(cluster_id=cluster_id, pool_id=pool_id, at_s=at, devices=devices))
            written += 1
    return written


def baseline(session: Session, now: float, cluster_id: int | None = None) -> list[str]:
    """Pools without any row (their inventory has not changed since history was kept) get one from their creation
    with their current count, so that a later change does not erase what they held before it. Run with the usage
    recalculation (at start-up and on request); a sentence per pool."""
    known = select(PoolCapacityChange.pool_id).distinct()
    q = select(Pool.id, Pool.cluster_id).where(Pool.id.not_in(known))
    if cluster_id is not None:
        q = q.where(Pool.cluster_id == cluster_id)
    rows = session.execute(q).all()
    if not rows:
        return []
    names = {pool_id: name for pool_id, name in session.execute(select(Pool.id, Pool.name)
                                                                 .where(Pool.id.in_([r[0] for r in rows])))}
    created = _created(session, [r[0] for r in rows])
    out = []
    for pool_id, cid in rows:
        devices = _counts(session, cid).get(pool_id, 0)
        session.add(PoolCapacityChange(cluster_id=cid, pool_id=pool_id, devices=devices,
                                       at_s=min(created.get(pool_id, now), now)))
        out.append(f"pool {names.get(pool_id, pool_id)}: its capacity history starts at its creation with "
                   f"{devices} device(s)")
    session.flush()
    return out


def _created(session: Session, pool_ids: list[int]) -> dict[int, float]:
    if not pool_ids:
        return {}
    return {pool_id: _epoch(at) for pool_id, at in session.execute(
        select(Pool.id, Pool.created_at).where(Pool.id.in_(pool_ids))) if at is not None}


def _epoch(value: datetime) -> float:
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


def history(session: Session, before: float) -> dict[int, tuple[int, Steps]]:
    """Each pool's cluster and steps up to `before`; a pool without any row at its current count from always."""
    q = select(PoolCapacityChange.pool_id, PoolCapacityChange.cluster_id, PoolCapacityChange.at_s,
               PoolCapacityChange.devices).where(PoolCapacityChange.at_s < before) \
        .order_by(PoolCapacityChange.pool_id, PoolCapacityChange.at_s, PoolCapacityChange.id)
    known = set(session.scalars(select(PoolCapacityChange.pool_id).distinct()))
    out: dict[int, tuple[int, Steps]] = {}
    for pool_id, cluster_id, at_s, devices in session.execute(q):
        out.setdefault(pool_id, (cluster_id, []))[1].append((at_s, devices))
    counts = dict(session.execute(select(Device.pool_id, func.count()).group_by(Device.pool_id)).all())
    for pool_id, cluster_id in session.execute(select(Pool.id, Pool.cluster_id)):
        if pool_id not in known:
            out[pool_id] = (cluster_id, [(float("-inf"), counts.get(pool_id, 0))])
    return out


def device_seconds(steps: Steps, start: float, end: float) -> float:
    """Device-seconds a pool offered in [start, end): the integral of its step function (0 before its first step)."""
    total = 0.0
    for i, (at, devices) in enumerate(steps):
        until = steps[i + 1][0] if i + 1 < len(steps) else float("inf")
        lo, hi = max(at, start), min(until, end)
        if hi > lo:
            total += devices * (hi - lo)
    return total
