"""The scheduler gate of hour budgets (scheduler/gates.py states the contract): a queued job waits with reason
`budget_exhausted`, naming the budget and the numbers, while it would overrun a budget on its path:
- its owner's GPU- or CPU-hour quota on the cluster (Neu.ro; the built-in default is 100 GPU hours), and
- the GPU- or CPU-hour budget of its quota and of every ancestor (the current period's; core/budgets.py).

Safe mode (Slurm's `safe`, on by default): the job's request times its time limit, or the default time limit for
jobs without one, must fit in what is left. Without any horizon, or with safe mode off, only a budget already spent
holds a job. The decision is core.budgets.first_overrun (pure, table-tested).

What counts as used: every interval recorded so far (running ones up to the refresh), plus, for each job let
through, what its time limit may still add. `refresh` reads the records at most every `refresh_s` seconds (the
sums scan the period's records); between refreshes a job let through adds its whole horizon, and a job that ended
keeps counting what it reserved until the next refresh reads its closed interval, so the view errs on the safe side.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from allotment.accounting import budgets as hour_quotas
from allotment.accounting.models import QuotaBudget, UsageRecord, UserQuota
from allotment.accounting.service import _held_seconds
from allotment.core import budgets as core
from allotment.core.model import Wait
from allotment.identity.models import User
from allotment.quotas.models import Quota
from allotment.scheduler.gates import GateJob

BUDGET_EXHAUSTED = "budget_exhausted"
R = UsageRecord

# A budget's key: ("user", cluster id, owner id, resource) or ("quota", quota id, resource).
Key = tuple


class BudgetGate:
    def __init__(self, safe: bool = True, default_time_limit_s: int | None = None, refresh_s: float = 5.0) -> None:
        self.safe = safe
        self.default_time_limit_s = default_time_limit_s
        self.refresh_s = refresh_s
        self._read_at: float | None = None
        self.parents: dict[int, int | None] = {}
        self.quota_names: dict[int, str] = {}
        self.usernames: dict[int, str] = {}
        self.amounts: dict[Key, tuple[int, str]] = {}  # key -> (amount in seconds, period); limited budgets only
        self.user_limits: dict[tuple[int, int], tuple[int | None, int | None]] = {}
        self.defaults: dict[int, tuple[int | None, int | None]] = {}  # cluster -> its default user quota
        self.used: dict[Key, float] = defaultdict(float)
        self.reserved: dict[tuple[int, int], tuple[tuple[Key, ...], float, float]] = {}  # job -> (keys, gpu, cpu)
        self.ended: set[tuple[int, int]] = set()  # released, still counted until the next refresh

    # -- what applies to a job ----------------------------------------------------------------------------------------
    def _user_limit(self, cluster_id: int, owner_id: int) -> tuple[int | None, int | None]:
        found = self.user_limits.get((cluster_id, owner_id))
        if found is not None:
            return found
        return self.defaults.get(cluster_id, (hour_quotas.DEFAULT_GPU_S, hour_quotas.DEFAULT_CPU_S))

    def _keys(self, job: GateJob) -> list[Key]:
        keys: list[Key] = []
        if job.owner_id is not None:
            gpu_s, cpu_s = self._user_limit(job.cluster_id, job.owner_id)
            if gpu_s is not None and job.gpu_milli:
                keys.append(("user", job.cluster_id, job.owner_id, "gpu"))
            if cpu_s is not None and job.cpu_milli:
                keys.append(("user", job.cluster_id, job.owner_id, "cpu"))
        node, seen = job.quota_id, set()
        while node is not None and node not in seen:
            seen.add(node)
            for resource in core.RESOURCES:
                if ("quota", node, resource) in self.amounts:
                    keys.append(("quota", node, resource))
            node = self.parents.get(node)
        return keys

    def _amount(self, key: Key) -> tuple[int, str]:
        if key[0] == "user":
            gpu_s, cpu_s = self._user_limit(key[1], key[2])
            return (gpu_s if key[3] == "gpu" else cpu_s) or 0, core.ONCE
        return self.amounts[key]

    def _owner(self, key: Key) -> str:
        if key[0] == "user":
            return f"user {self.usernames.get(key[2], key[2])}'s quota"
        return f"quota {self.quota_names.get(key[1], key[1])}"

    def _horizon(self, job: GateJob) -> float | None:
        limit = job.time_limit_s
        return float(limit) if limit else (float(self.default_time_limit_s) if self.default_time_limit_s else None)

    # -- the gate contract --------------------------------------------------------------------------------------------
    def hold(self, job: GateJob) -> Wait | None:
        if job.key in self.reserved:
            return None
        keys = self._keys(job)
        if not keys:
            return None
        horizon = self._horizon(job)
        candidates = []
        for key in keys:
            amount, period = self._amount(key)
            candidates.append(core.Budget(self._owner(key), key[-1], period, amount, self.used[key]))
        over = core.first_overrun(candidates, job.gpu_milli, job.cpu_milli, horizon, self.safe)
        if over is not None:
            return Wait(str(job.job_id), BUDGET_EXHAUSTED, over.message)
        self._reserve(job, keys, horizon if self.safe else None)
        return None

    def reserve(self, job: GateJob) -> None:
        if job.key not in self.reserved:
            self._reserve(job, self._keys(job), self._horizon(job))

    def _reserve(self, job: GateJob, keys: Iterable[Key], horizon: float | None) -> None:
        gpu = job.gpu_milli / 1000.0 * (horizon or 0.0)
        cpu = job.cpu_milli / 1000.0 * (horizon or 0.0)
        keys = tuple(keys)
        for key in keys:
            self.used[key] += gpu if key[-1] == "gpu" else cpu
        self.reserved[job.key] = (keys, gpu, cpu)
        self.ended.discard(job.key)

    def released(self, job: GateJob) -> bool:
        if job.key in self.reserved:
            self.ended.add(job.key)  # its interval is read at the next refresh; until then its reservation counts
        return False

    def forget_cluster(self, cluster_id: int) -> None:
        for key in [k for k in self.reserved if k[0] == cluster_id]:
            self._unreserve(key)

    def _unreserve(self, job_key: tuple[int, int]) -> None:
        keys, gpu, cpu = self.reserved.pop(job_key)
        self.ended.discard(job_key)
        for key in keys:
            self.used[key] -= gpu if key[-1] == "gpu" else cpu

    def refresh(self, session: Session) -> bool:
        """Budgets, limits and what was spent, read at most every refresh_s seconds; each read re-examines the held
        jobs (jobs ended, a period began or a budget changed since the last one)."""
        now = time.time()
        if self._read_at is not None and 0 <= now - self._read_at < self.refresh_s:
            return False
        self._read_at = now
        self.parents, self.quota_names = {}, {}
        for qid, name, parent in session.execute(select(Quota.id, Quota.name, Quota.parent_id)):
            self.parents[qid], self.quota_names[qid] = parent, name
        rows = session.scalars(select(QuotaBudget)).all()
        self.amounts = {("quota", b.quota_id, b.resource): (b.amount_s, b.period) for b in rows}
        grants = {("quota", b.quota_id, b.resource): b.granted_at for b in rows}
        self.user_limits, self.defaults = {}, {}
        for row in session.scalars(select(UserQuota)):
            if row.user_id is None:
                self.defaults[row.cluster_id] = (row.gpu_s, row.cpu_s)
            else:
                self.user_limits[(row.cluster_id, row.user_id)] = (row.gpu_s, row.cpu_s)
        self.usernames = dict(session.execute(select(User.id, User.username)).all())
        for job_key in list(self.ended):
            self._unreserve(job_key)
        used: dict[Key, float] = defaultdict(float)
        self._spent_by_user(session, now, used)
        self._spent_by_quota(session, now, grants, used)
        open_jobs = {(c, j): (start, g, cpu) for c, j, start, g, cpu in session.execute(
            select(R.cluster_id, R.job_id, R.start_s, R.gpu_milli, R.cpu_milli).where(R.end_s.is_(None)))}
        for job_key, (keys, gpu, cpu) in self.reserved.items():
            running = open_jobs.get(job_key)
            elapsed = max(now - running[0], 0.0) if running else 0.0
            for key in keys:
                share = (running[1] if key[-1] == "gpu" else running[2]) / 1000.0 if running else 0.0
                reserved = gpu if key[-1] == "gpu" else cpu
                used[key] += max(reserved - share * elapsed, 0.0)  # what its time limit may still add
        self.used = used
        return True  # ended jobs, a new period or a changed budget may let held jobs pass: examine them again

    def _spent_by_user(self, session: Session, now: float, used: dict[Key, float]) -> None:
        seconds = _held_seconds(0.0, now)
        for cluster_id, owner_id, gpu, cpu in session.execute(
                select(R.cluster_id, R.owner_id, func.sum(R.gpu_milli * seconds), func.sum(R.cpu_milli * seconds))
                .group_by(R.cluster_id, R.owner_id)):
            used[("user", cluster_id, owner_id, "gpu")] += (gpu or 0.0) / 1000.0
            used[("user", cluster_id, owner_id, "cpu")] += (cpu or 0.0) / 1000.0

    def _spent_by_quota(self, session: Session, now: float, grants: dict[Key, float],
                        used: dict[Key, float]) -> None:
        """Each budget counts its subtree's records since its period began; one grouped query per period start."""
        by_start: dict[float, list[Key]] = defaultdict(list)
        for key, (_, period) in self.amounts.items():
            by_start[core.period_start(period, now, grants[key])].append(key)
        for since, keys in by_start.items():
            seconds = _held_seconds(since, now)
            per_quota = {qid: ((g or 0.0) / 1000.0, (c or 0.0) / 1000.0) for qid, g, c in session.execute(
                select(R.quota_id, func.sum(R.gpu_milli * seconds), func.sum(R.cpu_milli * seconds))
                .where((R.end_s.is_(None)) | (R.end_s > since)).group_by(R.quota_id))}
            wanted = set(keys)
            for qid, (gpu, cpu) in per_quota.items():
                node, seen = qid, set()
                while node is not None and node not in seen:
                    seen.add(node)
                    for resource, amount in (("gpu", gpu), ("cpu", cpu)):
                        if ("quota", node, resource) in wanted:
                            used[("quota", node, resource)] += amount
                    node = self.parents.get(node)
