"""GPU- and CPU-hour budgets of the quota tree in a replay: what each budget's subtree spends in virtual time, and the
admission gate the real loop applies (accounting/gate.py over core.budgets).

A `Spend` integrates the usage of a quota's subtree exactly (its rate changes only when a job starts or stops), resets
at the start of each period (core.budgets.period_end) and says when it will run out at the current rate, so the replay
can stop admitting at that instant rather than at its next event. As the real gate, a spent budget holds the jobs of
its subtree that ask for its resource (queued ones as well as new ones; running jobs go on) until its period ends.
Trace jobs have no time limit, so the gate's safe mode (request x time limit must fit) does not apply: only a spent
budget holds a job, which is what the real gate does for a job without a time limit.
"""

from __future__ import annotations

from dataclasses import dataclass

from allotment.core.budgets import ONCE, period_end


@dataclass(frozen=True, slots=True)
class BudgetSpec:
    """A budget of ``amount_s`` seconds of one GPU (or CPU core) per ``period`` (monthly, weekly, once)."""

    resource: str
    period: str
    amount_s: int
    granted_at: float = 0.0


class Spend:
    """One budget during a replay. Amounts inside are milli-unit seconds (milli-GPU x s)."""

    __slots__ = ("base", "budget", "closed", "end", "held", "jobs_held", "max_spent", "quota", "ran_out", "rate", "t",
                 "total")

    def __init__(self, quota: str, budget: BudgetSpec, start: float) -> None:
        self.quota, self.budget = quota, budget
        self.rate = 0  # milli-units in use by the subtree's running jobs
        self.t = start
        self.end = period_end(budget.period, start) if budget.period != ONCE else None
        self.base = 0.0  # spent since the period began, up to self.t (the replay starts with nothing spent)
        self.total = self.max_spent = 0.0
        self.ran_out = 0  # periods in which it ran out
        self.held: list[int] = []  # jobs held by it, in the order they were held
        self.jobs_held = 0
        self.closed = False  # spent, and its subtree's queued jobs already taken out of the core

    @property
    def limit(self) -> float:
        return self.budget.amount_s * 1000.0

    def advance(self, now: float) -> None:
        """Account for the time up to ``now``, through any period boundaries on the way."""
        while self.end is not None and self.end <= now:
            self._close(self.end)
            self.end = period_end(self.budget.period, self.end)
        spent = self.rate * (now - self.t)
        self.base += spent
        self.total += spent
        self.t = now

    def _close(self, at: float) -> None:
        spent = self.rate * (at - self.t)
        self.total += spent
        self.max_spent = max(self.max_spent, self.base + spent)
        if self.base + spent >= self.limit:
            self.ran_out += 1
        self.base, self.t = 0.0, at

    def change(self, now: float, delta: int) -> None:
        self.advance(now)
        self.rate += delta

    def spent(self) -> bool:
        return self.base >= self.limit - 1e-6 * max(self.limit, 1.0)  # at runs_out_at() despite float rounding

    def runs_out_at(self) -> float | None:
        """When the budget will be spent at the current rate (None: not before something changes)."""
        if self.rate <= 0 or self.base >= self.limit:
            return None
        at = self.t + (self.limit - self.base) / self.rate
        return at if self.end is None or at < self.end else None

    def report(self, end: float) -> dict:
        self.advance(end)
        peak = max(self.max_spent, self.base)
        out_now = 1 if self.base >= self.limit else 0
        hour = 3600 * 1000.0
        return {"resource": self.budget.resource, "period": self.budget.period,
                "budget_hours": round(self.budget.amount_s / 3600, 1), "spent_hours": round(self.total / hour, 1),
                "most_spent_in_a_period_hours": round(peak / hour, 1), "periods_run_out": self.ran_out + out_now,
                "jobs_held": self.jobs_held}
