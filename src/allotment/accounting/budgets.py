"""Hour budgets: users' GPU/CPU-hour quotas per cluster (Neu.ro) and budgets on nodes of the quota tree.

A user's quota counts everything the user ran on the cluster (Neu.ro's quotas are totals that an admin sets or adds
to); a quota-tree budget counts its period (core/budgets.py) over the quota's whole subtree, so a team's budget bounds
every sub-team. Both include running jobs up to now. Amounts are seconds; None is unlimited.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from allotment.accounting import service
from allotment.accounting.models import QuotaBudget, UserQuota
from allotment.core import budgets as core
from allotment.core.permissions import USAGE_READER, Principal, Scope, allowed
from allotment.errors import DomainError, FieldError, Forbidden, ValidationFailed
from allotment.quotas.models import Quota

DEFAULT_GPU_S: int | None = 100 * 3600  # Neu.ro's out-of-the-box quota: 100 GPU hours
DEFAULT_CPU_S: int | None = None  # and unlimited CPU hours


@dataclass(frozen=True)
class HourQuota:
    gpu_s: int | None
    cpu_s: int | None
    source: str  # user | cluster default | built-in default


def amount(field: str, text: str | int | None) -> int | None:
    """Seconds from `50h`, `3.5h`, `30m`, 'infinity'; a number is seconds. A bad one is a 422 naming the field."""
    if text is None:
        return None
    if isinstance(text, int | float) and not isinstance(text, bool):
        if not 0 <= text <= core.MAX_AMOUNT_S:
            raise ValidationFailed(f"{field} is out of range", [FieldError(field, f"between 0 and "
                                                                               f"{core.MAX_AMOUNT_S} seconds")])
        return int(text)
    try:
        return core.parse_amount(str(text))
    except core.BadAmount as exc:
        raise ValidationFailed(f"{field}: {exc}", [FieldError(field, str(exc))]) from None


def _row(session: Session, cluster_id: int, user_id: int | None) -> UserQuota | None:
    cond = UserQuota.user_id.is_(None) if user_id is None else UserQuota.user_id == user_id
    return session.scalars(select(UserQuota).where(UserQuota.cluster_id == cluster_id, cond)
                           .order_by(UserQuota.id)).first()


def user_quota(session: Session, cluster_id: int, user_id: int) -> HourQuota:
    """The quota that applies: the user's own, else the cluster's default, else the built-in default."""
    row = _row(session, cluster_id, user_id)
    if row is not None:
        return HourQuota(row.gpu_s, row.cpu_s, "user")
    default = _row(session, cluster_id, None)
    if default is not None:
        return HourQuota(default.gpu_s, default.cpu_s, "cluster default")
    return HourQuota(DEFAULT_GPU_S, DEFAULT_CPU_S, "built-in default")


def set_user_quota(session: Session, cluster_id: int, user_id: int | None, gpu_s: int | None,
                   cpu_s: int | None) -> HourQuota:
    """Set a user's quota (user_id None: the cluster's default); None is unlimited, as Neu.ro's omitted option."""
    row = _row(session, cluster_id, user_id)
    if row is None:
        row = UserQuota(cluster_id=cluster_id, user_id=user_id)
        session.add(row)
    row.gpu_s, row.cpu_s = gpu_s, cpu_s
    session.flush()
    return HourQuota(gpu_s, cpu_s, "user" if user_id is not None else "cluster default")


def add_user_quota(session: Session, cluster_id: int, user_id: int, gpu_s: int | None,
                   cpu_s: int | None) -> HourQuota:
    """Add to the quota that applies now (an unlimited one stays unlimited); the result becomes the user's own."""
    current = user_quota(session, cluster_id, user_id)

    def plus(have: int | None, more: int | None, field: str) -> int | None:
        if have is None or more is None:
            return have
        total = have + more
        if total > core.MAX_AMOUNT_S:
            raise ValidationFailed(f"{field}: the quota would exceed {core.MAX_AMOUNT_S // 3600} hours",
                                   [FieldError(field, "the sum is too large")])
        return total

    return set_user_quota(session, cluster_id, user_id, plus(current.gpu_s, gpu_s, "gpu"),
                          plus(current.cpu_s, cpu_s, "cpu"))


def check_reader(principal: Principal, cluster_id: int, user_id: int) -> None:
    if not allowed(principal, USAGE_READER, Scope(cluster_id=cluster_id, owner_id=user_id)):
        raise Forbidden("only the user, the cluster's managers and admins, and platform admins may see a user's "
                        "quota")


def user_quota_report(session: Session, cluster_id: int, user_id: int, now: float) -> dict:
    quota = user_quota(session, cluster_id, user_id)
    gpu, cpu = service.spent(session, 0.0, now, cluster_id=cluster_id, owner_id=user_id)
    return {"gpu": _numbers(gpu, quota.gpu_s), "cpu": _numbers(cpu, quota.cpu_s), "source": quota.source,
            "lines": [core.spent_line("GPU", gpu, quota.gpu_s), core.spent_line("CPU", cpu, quota.cpu_s)]}


def _numbers(spent_s: float, amount_s: int | None) -> dict:
    left = core.left(spent_s, amount_s)
    return {"spent_hours": round(spent_s / 3600, 6), "quota_hours": None if amount_s is None else amount_s / 3600,
            "left_hours": None if left is None else round(left / 3600, 6), "quota": core.minutes_text(amount_s)}


# -- budgets on the quota tree ---------------------------------------------------------------------------------------
def subtree(session: Session, quota: Quota) -> list[int]:
    """The quota and all its descendants (its budget counts their usage)."""
    rows = session.execute(select(Quota.id, Quota.parent_id).where(Quota.cluster_id == quota.cluster_id)).all()
    kids: dict[int, list[int]] = {}
    for qid, parent in rows:
        if parent is not None:
            kids.setdefault(parent, []).append(qid)
    out, todo = [], [quota.id]
    while todo:
        qid = todo.pop()
        if qid in out:
            continue
        out.append(qid)
        todo.extend(kids.get(qid, ()))
    return out


def set_budget(session: Session, quota: Quota, resource: str, period: str, amount_s: int, now: float) -> QuotaBudget:
    errors = []
    if resource not in core.RESOURCES:
        errors.append(FieldError("resource", f"one of {', '.join(core.RESOURCES)}"))
    if period not in core.PERIODS:
        errors.append(FieldError("period", f"one of {', '.join(core.PERIODS)}"))
    if errors:
        raise ValidationFailed("the budget is not valid", errors)
    row = session.scalars(select(QuotaBudget).where(QuotaBudget.quota_id == quota.id,
                                                    QuotaBudget.resource == resource)).first()
    if row is None:
        row = QuotaBudget(quota_id=quota.id, resource=resource)
        session.add(row)
    if row.period != period or row.amount_s != amount_s or row.granted_at is None:
        row.granted_at = now  # a new or changed grant counts from now (matters for one-off grants)
    row.period, row.amount_s = period, amount_s
    session.flush()
    return row


def delete_budget(session: Session, quota: Quota, resource: str) -> bool:
    row = session.scalars(select(QuotaBudget).where(QuotaBudget.quota_id == quota.id,
                                                    QuotaBudget.resource == resource)).first()
    if row is None:
        return False
    session.delete(row)
    session.flush()
    return True


def budgets_of(session: Session, quota_ids: list[int]) -> dict[int, list[QuotaBudget]]:
    out: dict[int, list[QuotaBudget]] = {}
    if quota_ids:
        for row in session.scalars(select(QuotaBudget).where(QuotaBudget.quota_id.in_(quota_ids))
                                   .order_by(QuotaBudget.resource)):
            out.setdefault(row.quota_id, []).append(row)
    return out


def budget_status(session: Session, quota: Quota, row: QuotaBudget, now: float) -> dict:
    """One budget with what its subtree spent in the current period and what is left."""
    since = core.period_start(row.period, now, row.granted_at)
    gpu, cpu = service.spent(session, since, now, quota_ids=subtree(session, quota))
    used = gpu if row.resource == "gpu" else cpu
    left = core.left(used, row.amount_s) or 0.0
    resets = core.period_end(row.period, now)
    return {"resource": row.resource, "period": row.period, "budget_hours": row.amount_s / 3600,
            "spent_hours": round(used / 3600, 6), "left_hours": round(left / 3600, 6),
            "period_start": since, "resets_at": resets,
            "text": f"{row.resource.upper()}: spent {core.hours_text(used)} / budget {core.hours_text(row.amount_s)}"
                    f" / left {core.hours_text(left)} ({row.period})"}


def quota_budgets(session: Session, quota: Quota, now: float) -> list[dict]:
    return [budget_status(session, quota, row, now) for row in budgets_of(session, [quota.id]).get(quota.id, [])]


def refuse_if_spent(session: Session, job_ids: list[int], now: float) -> None:
    """When the server refuses jobs whose budget is spent (settings.budget_when_spent = "refuse"): raise a 409
    naming the first spent budget on a new job's path (its owner's hour quota on the cluster, its quota's and every
    ancestor's budget), instead of letting the job wait. The caller's transaction then creates none of the jobs."""
    from allotment.workloads.models import Job

    combos = session.execute(select(Job.cluster_id, Job.owner_id, Job.quota_id, func.max(Job.gpu_milli),
                                    func.max(Job.cpu_milli)).where(Job.id.in_(job_ids))
                             .group_by(Job.cluster_id, Job.owner_id, Job.quota_id)).all()
    for cluster_id, owner_id, quota_id, gpu, cpu in combos:
        limits = user_quota(session, cluster_id, owner_id)
        spent_gpu, spent_cpu = service.spent(session, 0.0, now, cluster_id=cluster_id, owner_id=owner_id)
        for unit, asked, used, amount in (("GPU", gpu, spent_gpu, limits.gpu_s), ("CPU", cpu, spent_cpu, limits.cpu_s)):
            if asked and amount is not None and used >= amount:
                _refuse(f"the user's {unit}-hour quota on this cluster is spent: {core.spent_line(unit, used, amount)}")
        node = session.get(Quota, quota_id) if quota_id is not None else None
        seen: set[int] = set()
        while node is not None and node.id not in seen:
            seen.add(node.id)
            for status in quota_budgets(session, node, now):
                asked = gpu if status["resource"] == "gpu" else cpu
                if asked and status["left_hours"] <= 0:
                    _refuse(f"quota {node.name}'s {status['period']} budget is spent: {status['text']}")
            node = session.get(Quota, node.parent_id) if node.parent_id is not None else None


def _refuse(message: str) -> None:
    raise DomainError(message, [FieldError("quota", message)], 409, "Budget exhausted", "budget_exhausted")
