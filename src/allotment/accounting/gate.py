"""The scheduler gate of hour budgets (scheduler/gates.py states the contract): a queued job waits with reason
`budget_exhausted`, naming the budget and the numbers, while it would overrun a budget on its path:
- its owner's GPU- or CPU-hour quota on the cluster (Neu.ro; the built-in default is 100 GPU hours), and
- the GPU- or CPU-hour budget of its quota and of every ancestor (the current period's; core/budgets.py).

Safe mode (Slurm's `safe`, on by default): the job's request times its time limit, or the default time limit for
jobs without one, must fit in what is left. Without any horizon, or with safe mode off, only a budget already spent
holds a job. The decision is core.budgets.first_overrun (pure, table-tested).

What counts as used: every interval recorded so far (running ones up to the refresh), plus, for each job let
through, what its time limit may still add. `refresh` reads the records at most every `refresh_s` seconds, and then
only those written or closed since the last read (Ledger); between refreshes a job let through adds its whole horizon, and a job that ended
keeps counting what it reserved until the next refresh reads its closed interval, so the view errs on the safe side.
"""

from __future__ import annotations

import time
from collections import defaultdict

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from allotment.accounting import budgets as hour_quotas
from allotment.accounting.models import QuotaBudget, UsageRecord, UserQuota
from allotment.accounting.service import _held_seconds
from allotment.core import budgets as core
from allotment.core.budgets import overrun
from allotment.core.model import Wait
from allotment.identity.models import User
from allotment.quotas.models import Quota
from allotment.scheduler.gates import GateJob

BUDGET_EXHAUSTED = "budget_exhausted"
R = UsageRecord

# A budget's key: ("user", cluster id, owner id, resource) or ("quota", quota id, resource).
Key = tuple
ROW = (R.id, R.cluster_id, R.job_id, R.owner_id, R.quota_id, R.gpu_milli, R.cpu_milli, R.start_s, R.end_s)
# Which usage records the ledger reads (BudgetGate._scope): every one, those of GPU jobs, or none.
ALL, GPU, NOTHING = "all", "gpu", "none"


class Cell:
    """One limited budget as the gate keeps it between reads: its amount and what is used of it (records read at the
    last refresh plus what the jobs let through since may add). Each quota's chain of cells and each user's cells
    are built once per refresh, so a check compares numbers along the job's path and a reservation adds to them:
    no key is built and nothing is summed per decision."""

    __slots__ = ("amount", "gpu", "key", "period", "used")

    def __init__(self, key: Key, amount: int, period: str, used: float) -> None:
        self.key, self.amount, self.period, self.used = key, amount, period, used
        self.gpu = key[-1] == "gpu"


class BudgetGate:
    def __init__(self, safe: bool = True, default_time_limit_s: int | None = None, refresh_s: float = 5.0,
                 stop_running: bool = True, grace_s: float = 0.0) -> None:
        self.safe = safe
        self.stop_running = stop_running  # False: running jobs finish and the overage shows in the budget's report
        self.grace_s = grace_s
        self.spent_since: dict[Key, float] = {}  # budgets found spent, and since when (for the grace)
        self.default_time_limit_s = default_time_limit_s
        self.refresh_s = refresh_s
        self._read_at: float | None = None
        self.parents: dict[int, int | None] = {}
        self.quota_names: dict[int, str] = {}
        self.usernames: dict[int, str] = {}
        self.amounts: dict[Key, tuple[int, str]] = {}  # key -> (amount in seconds, period); limited budgets only
        self.user_limits: dict[tuple[int, int], tuple[int | None, int | None]] = {}
        self.defaults: dict[int, tuple[int | None, int | None]] = {}  # cluster -> its default user quota
        self._base: dict[Key, float] = {}  # what each budget's records add up to at the last refresh
        self._cells: dict[Key, Cell] = {}
        self._chains: dict[int | None, tuple[Cell, ...]] = {}  # quota -> the cells of it and its ancestors
        self._user_cells: dict[tuple[int, int], tuple[Cell, ...]] = {}  # (cluster, owner) -> its hour-quota cells
        self._paths: dict[tuple, tuple[Cell, ...]] = {}  # (cluster, owner, quota, asks GPUs, asks CPUs) -> _path
        # Jobs let through: (cluster, job) -> (the job, the cells it counts on, GPU- and CPU-seconds it may use).
        # Each refresh counts them again on the budgets that apply then (a budget may be set after a job went in).
        self.reserved: dict[tuple[int, int], tuple[GateJob, tuple[Cell, ...], float, float]] = {}
        # The reserved jobs that count on at least one cell. The others (a CPU job whose owner has only a GPU-hour
        # quota, the usual case without budgets) need nothing at a refresh while the limits stay as they were: their
        # path is still empty. So a refresh's work follows the jobs that count, not every job let through.
        self.counting: set[tuple[int, int]] = set()
        self._limits: tuple | None = None  # the limits of the last refresh (budgets, hour quotas, the quota tree)
        self.ended: set[tuple[int, int]] = set()  # released, still counted until the next refresh
        self.ledger = Ledger()

    @property
    def used(self) -> dict[Key, float]:
        """Each limited budget's use as the gate counts it now (records and reservations)."""
        return {key: cell.used for key, cell in self._cells.items()}

    # -- what applies to a job ----------------------------------------------------------------------------------------
    def _user_limit(self, cluster_id: int, owner_id: int) -> tuple[int | None, int | None]:
        found = self.user_limits.get((cluster_id, owner_id))
        if found is not None:
            return found
        return self.defaults.get(cluster_id, (hour_quotas.DEFAULT_GPU_S, hour_quotas.DEFAULT_CPU_S))

    def _cell(self, key: Key, amount: int, period: str) -> Cell:
        cell = self._cells.get(key)
        if cell is None:
            cell = self._cells[key] = Cell(key, amount, period, self._base.get(key, 0.0))
        return cell

    def _chain(self, quota_id: int | None) -> tuple[Cell, ...]:
        """The cells of a quota's budgets and its ancestors', nearest first (built once per refresh)."""
        chain = self._chains.get(quota_id)
        if chain is None:
            cells, node, seen = [], quota_id, set()
            while node is not None and node not in seen:
                seen.add(node)
                for resource in core.RESOURCES:
                    key = ("quota", node, resource)
                    found = self.amounts.get(key)
                    if found is not None:
                        cells.append(self._cell(key, *found))
                node = self.parents.get(node)
            chain = self._chains[quota_id] = tuple(cells)
        return chain

    def _users(self, cluster_id: int, owner_id: int | None) -> tuple[Cell, ...]:
        """The cells of the owner's limited hour quotas on the cluster (built once per refresh)."""
        if owner_id is None:
            return ()
        cells = self._user_cells.get((cluster_id, owner_id))
        if cells is None:
            gpu_s, cpu_s = self._user_limit(cluster_id, owner_id)
            cells = self._user_cells[(cluster_id, owner_id)] = tuple(
                self._cell(("user", cluster_id, owner_id, resource), amount, core.ONCE)
                for resource, amount in (("gpu", gpu_s), ("cpu", cpu_s)) if amount is not None)
        return cells

    def _path(self, job: GateJob) -> tuple[Cell, ...]:
        """What a job counts on: its owner's hour quotas for the resources it asks for, and every budget on its quota's
        path. The same for every job of one owner, quota and kind, so it is built once per refresh for each."""
        kind = (job.cluster_id, job.owner_id, job.quota_id, job.gpu_milli > 0, job.cpu_milli > 0)
        path = self._paths.get(kind)
        if path is None:
            users = tuple(c for c in self._users(job.cluster_id, job.owner_id)
                          if (job.gpu_milli if c.gpu else job.cpu_milli))
            path = self._paths[kind] = users + self._chain(job.quota_id)
        return path

    def _keys(self, job: GateJob) -> list[Key]:
        return [cell.key for cell in self._path(job)]

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
        """One decision: the job's precomputed cells (its owner's, its quota chain's), each compared with what the
        job may use by core.budgets.overrun; a job let through adds its horizon to each. Constant work per budget on
        the job's path, whatever the number of quotas, jobs or records."""
        job_key = (job.cluster_id, job.job_id)
        reserved = self.reserved
        if job_key in reserved:
            return None
        path = self._paths.get((job.cluster_id, job.owner_id, job.quota_id, job.gpu_milli > 0, job.cpu_milli > 0))
        if path is None:
            path = self._path(job)
        if not path:
            if not self._users(job.cluster_id, job.owner_id):
                return None  # no budget applies to its owner or its quota
            # Reserved with nothing on its path (a CPU job of an owner with a GPU-hour quota): a budget set on its
            # quota later counts it from the next refresh on. It adds to no cell now.
            horizon = (self._horizon(job) if self.safe else None) or 0.0
            reserved[job_key] = (job, (), job.gpu_milli / 1000.0 * horizon, job.cpu_milli / 1000.0 * horizon)
            return None
        horizon = self._horizon(job)
        if path:
            gpu, cpu, safe = job.gpu_milli / 1000.0, job.cpu_milli / 1000.0, self.safe
            for cell in path:
                needed = overrun(cell.amount - cell.used, gpu if cell.gpu else cpu, horizon, safe)
                if needed is not None:  # named only now: formatting every owner on every check costs more than it
                    budget = core.Budget(self._owner(cell.key), cell.key[-1], cell.period, cell.amount, cell.used)
                    return Wait(str(job.job_id), BUDGET_EXHAUSTED, core.Overrun(budget, needed).message)
        self._reserve(job, path, horizon if self.safe else None)
        return None

    def reserve(self, job: GateJob) -> None:
        if job.key not in self.reserved:
            self._reserve(job, self._path(job), self._horizon(job))

    def _reserve(self, job: GateJob, cells: tuple[Cell, ...], horizon: float | None) -> None:
        gpu = job.gpu_milli / 1000.0 * (horizon or 0.0)
        cpu = job.cpu_milli / 1000.0 * (horizon or 0.0)
        for cell in cells:
            cell.used += gpu if cell.gpu else cpu
        job_key = (job.cluster_id, job.job_id)
        self.reserved[job_key] = (job, cells, gpu, cpu)
        if cells:
            self.counting.add(job_key)
        self.ended.discard(job_key)

    def released(self, job: GateJob) -> bool:
        key = (job.cluster_id, job.job_id)
        found = self.reserved.get(key)
        if found is not None:
            if found[1]:
                self.ended.add(key)  # its interval is read at the next refresh; until then its reservation counts
            else:
                del self.reserved[key]  # it counts on no budget: nothing to keep until the next refresh
        return False

    def forget_cluster(self, cluster_id: int) -> None:
        for key in [k for k in self.reserved if k[0] == cluster_id]:
            self._unreserve(key)

    def _unreserve(self, job_key: tuple[int, int]) -> None:
        _, cells, gpu, cpu = self.reserved.pop(job_key)
        self.ended.discard(job_key)
        self.counting.discard(job_key)
        for cell in cells:
            cell.used -= gpu if cell.gpu else cpu

    def refresh(self, session: Session) -> bool:
        """Budgets, limits and what was spent, read at most every refresh_s seconds; each read re-examines the held
        jobs (jobs ended, a period began or a budget changed since the last one) and builds the cells again."""
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
        sinces = {key: core.period_start(period, now, grants[key]) for key, (_, period) in self.amounts.items()}
        self.ledger.read(session, now, sinces, self.parents, self._scope())
        self._base = self.ledger.used(now)
        self._cells, self._chains, self._user_cells, self._paths = {}, {}, {}, {}
        running = self._running()
        let_through, counting = self.reserved, self.counting
        limits = (self.amounts, self.user_limits, self.defaults, self.parents, hour_quotas.DEFAULT_GPU_S,
                  hour_quotas.DEFAULT_CPU_S)
        # Limits as they were: a job with an empty path still has one, so only the counting jobs are counted again
        # (in the order they were let through, as before: the same sums to the last bit). Otherwise every job's path
        # is built again.
        again = [k for k in let_through if k in counting] if limits == self._limits else list(let_through)
        self._limits = limits
        for job_key in again:
            job, old, gpu, cpu = let_through[job_key]
            cells = self._path(job)
            if cells is not old:
                let_through[job_key] = (job, cells, gpu, cpu)
            if not cells:
                counting.discard(job_key)
                continue
            counting.add(job_key)
            row = running.get(job_key)
            elapsed = max(now - row.start_s, 0.0) if row is not None else 0.0
            for cell in cells:
                share = (row.gpu_milli if cell.gpu else row.cpu_milli) / 1000.0 if row is not None else 0.0
                reserved = gpu if cell.gpu else cpu
                cell.used += max(reserved - share * elapsed, 0.0)  # what its time limit may still add
        spent = self._base
        self.spent_since = {key: self.spent_since.get(key, now) for key in self._limited()
                            if spent.get(key, 0.0) >= self._amount(key)[0]}
        return True  # ended jobs, a new period or a changed budget may let held jobs pass: examine them again

    def _scope(self) -> str:
        """Which records can count on a limited budget now: all of them when a quota has a budget or a user a
        CPU-hour quota; with GPU-hour quotas alone only the records of GPU jobs; none when nothing is limited."""
        limits = [*self.user_limits.values(), *self.defaults.values(),
                  (hour_quotas.DEFAULT_GPU_S, hour_quotas.DEFAULT_CPU_S)]
        if self.amounts or any(cpu is not None for _, cpu in limits):
            return ALL
        return GPU if any(gpu is not None for gpu, _ in limits) else NOTHING

    def _limited(self) -> list[Key]:
        keys = [k for k in self.amounts]
        counting = self.counting
        for job_key, (_, cells, _, _) in self.reserved.items():
            if job_key in counting:
                keys.extend(c.key for c in cells if c.key[0] == "user")
        return list(dict.fromkeys(keys))

    def overdrawn(self, now: float) -> list[tuple[int, int, str]]:
        """Running jobs to stop: (cluster id, job id, why). A job drawing on a budget that has been spent for longer
        than the grace is stopped (Slurm and Neu.ro stop jobs whose budget is spent); none when stop_running is off."""
        if not self.stop_running or not self.spent_since:
            return []
        due = {k for k, since in self.spent_since.items() if now - since >= self.grace_s}
        out = []
        for cluster_id, job_id in self._running():
            cells = self.reserved.get((cluster_id, job_id), (None, (), 0.0, 0.0))[1]
            hit = next((c.key for c in cells if c.key in due), None)
            if hit is not None:
                amount, period = self._amount(hit)
                unit = "GPU" if hit[-1] == "gpu" else "CPU"
                why = (f"stopped by the scheduler: the {unit}-hour budget of {self._owner(hit)} "
                       f"({core.hours_text(amount)}, {period}) is spent and its grace of {int(self.grace_s)} s is over")
                out.append((cluster_id, job_id, why))
        return out

    def _running(self) -> dict[tuple[int, int], object]:
        return {(row.cluster_id, row.job_id): row for row in self.ledger.open.values()}


class Ledger:
    """What budgets' records add up to, kept current without summing every record at every read.

    The first read sums the closed records with grouped queries (once per process, and again after a recalculation
    marks the ledger stale). Later reads fetch only the records written since (id above the last seen) and those that
    were open, by id, adding each one that closed since; when a budget's period begins anew or the quota tree
    changes, the quota budgets alone are summed again over their periods' closed records. Open records count up to
    `now` at each read. The scheduler is the one writer that closes records, and it reads between its cycles."""

    BATCH = 500

    def __init__(self) -> None:
        self.closed: dict[Key, float] = defaultdict(float)
        self.open: dict[int, object] = {}  # record id -> row, for records still open at the last read
        self.max_id = self._seen = 0
        self._sinces: dict[Key, float] = {}
        self._parents: dict[int, int | None] = {}
        self.stale = True  # read everything at the next read (set by a recalculation)
        self.scope = ALL

    def read(self, session: Session, now: float, sinces: dict[Key, float], parents: dict[int, int | None],
             scope: str = ALL) -> None:
        """`scope`: the records that can count on a limited budget (ALL, GPU, NOTHING); when it changes, everything
        is read again within the new scope."""
        if scope != self.scope:
            self.scope, self.stale = scope, True
        if self.scope == NOTHING:  # no budget to count on: nothing to read (a scope that opens reads it all)
            self.closed, self.open, self.stale = defaultdict(float), {}, False
            self._sinces, self._parents = dict(sinces), dict(parents)
            return
        if self.stale:
            self._sinces, self._parents, self.stale = dict(sinces), dict(parents), False
            self._full(session)
            return
        self._delta(session)
        if sinces != self._sinces or parents != self._parents:
            self._sinces, self._parents = dict(sinces), dict(parents)
            for key in [k for k in self.closed if k[0] == "quota"]:
                del self.closed[key]
            self._sum_quotas(session, R.id <= self.max_id)

    def _within(self) -> list:
        return [R.gpu_milli > 0] if self.scope == GPU else []

    def _delta(self, session: Session) -> None:
        ids = sorted(self.open)
        top = session.scalar(select(func.max(R.id))) or 0
        rows = list(session.execute(select(*ROW).where(R.id > self.max_id, R.id <= top, *self._within())))
        for i in range(0, len(ids), self.BATCH):
            rows.extend(session.execute(select(*ROW).where(R.id.in_(ids[i:i + self.BATCH]))))
        self.max_id = max(self.max_id, top)
        for row in rows:
            if row.end_s is None:
                self.open[row.id] = row
            elif row.id in self.open or row.id > self._seen:
                self.open.pop(row.id, None)
                for key, seconds_share in self._shares(row, row.end_s):
                    self.closed[key] += seconds_share
        self._seen = self.max_id

    def _full(self, session: Session) -> None:
        self.closed = defaultdict(float)
        self.max_id = self._seen = session.scalar(select(func.max(R.id))) or 0
        seconds = _held_seconds(0.0, 0.0)
        for cluster_id, owner_id, gpu, cpu in session.execute(
                select(R.cluster_id, R.owner_id, func.sum(R.gpu_milli * seconds), func.sum(R.cpu_milli * seconds))
                .where(R.end_s.is_not(None), R.id <= self.max_id, *self._within())
                .group_by(R.cluster_id, R.owner_id)):
            self.closed[("user", cluster_id, owner_id, "gpu")] += (gpu or 0.0) / 1000.0
            self.closed[("user", cluster_id, owner_id, "cpu")] += (cpu or 0.0) / 1000.0
        self._sum_quotas(session, R.id <= self.max_id)
        self.open = {row.id: row for row in session.execute(select(*ROW).where(R.end_s.is_(None),
                                                                                R.id <= self.max_id,
                                                                                *self._within()))}

    def _sum_quotas(self, session: Session, upto) -> None:
        """Each quota budget: its subtree's closed records since its period began, one grouped query per start."""
        by_since: dict[float, set[Key]] = defaultdict(set)
        for key, since in self._sinces.items():
            by_since[since].add(key)
        for since, keys in by_since.items():
            seconds = _held_seconds(since, 0.0)
            for qid, gpu, cpu in session.execute(
                    select(R.quota_id, func.sum(R.gpu_milli * seconds), func.sum(R.cpu_milli * seconds))
                    .where(R.end_s.is_not(None), R.end_s > since, upto).group_by(R.quota_id)):
                for node in self._ancestry(qid):
                    for resource, amount in (("gpu", gpu), ("cpu", cpu)):
                        if ("quota", node, resource) in keys:
                            self.closed[("quota", node, resource)] += (amount or 0.0) / 1000.0

    def _ancestry(self, qid: int | None) -> list[int]:
        out, node = [], qid
        while node is not None and node not in out:
            out.append(node)
            node = self._parents.get(node)
        return out

    def _shares(self, row, end: float) -> list[tuple[Key, float]]:
        """(budget key, resource-seconds) that one record adds, each budget from its period's start."""
        out = []
        for resource, milli in (("gpu", row.gpu_milli), ("cpu", row.cpu_milli)):
            if milli:
                out.append((("user", row.cluster_id, row.owner_id, resource), milli / 1000.0 * max(end - row.start_s,
                                                                                                     0.0)))
        for node in self._ancestry(row.quota_id):
            for resource, milli in (("gpu", row.gpu_milli), ("cpu", row.cpu_milli)):
                since = self._sinces.get(("quota", node, resource))
                if since is not None and milli:
                    out.append((("quota", node, resource), milli / 1000.0 * max(end - max(row.start_s, since), 0.0)))
        return out

    def used(self, now: float) -> dict[Key, float]:
        used: dict[Key, float] = defaultdict(float, self.closed)
        for row in self.open.values():
            for key, amount in self._shares(row, now):
                used[key] += amount
        return used
