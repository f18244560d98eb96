"""GPU- and CPU-hour budgets: amounts, periods and the words Neu.ro uses for them. Pure: the clock is passed in.

Amounts are whole seconds of one GPU (or one CPU core); None is unlimited ("infinity"). Neu.ro takes them in hours or
minutes (`50h`, `3.5h`, `30m`) and answers a change in minutes (`GPU: 3000m`), a report in hours and minutes
(`GPU: spent: 91h 37m (quota: 200h 00m, left: 108h 23m)`).

A budget on the quota tree has a period: `monthly` and `weekly` reset at the start of each calendar month or ISO week
(UTC), `once` is a grant that never replenishes (counted from when it was granted).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

MONTHLY, WEEKLY, ONCE = "monthly", "weekly", "once"
PERIODS = (MONTHLY, WEEKLY, ONCE)
RESOURCES = ("gpu", "cpu")
INFINITY = "infinity"
MAX_AMOUNT_S = 10**6 * 3600  # a million hours: far above any real grant, small enough for every integer column

_AMOUNT = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?|\.[0-9]+)\s*([hm])\s*$", re.IGNORECASE)


class BadAmount(ValueError):
    """The text is not an amount of hours or minutes; the message says what is expected."""


def parse_amount(text: str) -> int | None:
    """Seconds of `50h`, `3.5h` or `30m`; `infinity` (or `unlimited`) is None."""
    value = str(text).strip()
    if value.lower() in (INFINITY, "unlimited", "inf"):
        return None
    match = _AMOUNT.match(value)
    if match is None:
        raise BadAmount(f"{text!r} is not an amount of hours or minutes: write a number followed by h or m "
                        f"(50h, 3.5h, 30m) or 'infinity'")
    seconds = round(float(match.group(1)) * (3600 if match.group(2).lower() == "h" else 60))
    if seconds > MAX_AMOUNT_S:
        raise BadAmount(f"{text!r} is more than {MAX_AMOUNT_S // 3600} hours")
    return seconds


def minutes_text(seconds: int | None) -> str:
    """Neu.ro's reply to a change: whole minutes (`3000m`), or `infinity`."""
    if seconds is None:
        return INFINITY
    return f"{int(seconds // 60)}m"


def hours_text(seconds: float | None) -> str:
    """`91h 37m` (whole minutes, rounded down), or `infinity`."""
    if seconds is None:
        return INFINITY
    minutes = int(max(seconds, 0) // 60)
    return f"{minutes // 60}h {minutes % 60:02d}m"


def left(spent_s: float, amount_s: int | None) -> float | None:
    """What is left of a budget (never below zero); None when unlimited."""
    if amount_s is None:
        return None
    return max(amount_s - spent_s, 0.0)


def spent_line(label: str, spent_s: float, amount_s: int | None) -> str:
    """`GPU: spent: 91h 37m (quota: 200h 00m, left: 108h 23m)`, or `(quota: infinity)`. The minutes left are the
    quota's minutes less the spent minutes shown, so the three numbers always add up."""
    spent_min = int(max(spent_s, 0) // 60)
    if amount_s is None:
        return f"{label}: spent: {hours_text(spent_min * 60)} (quota: {INFINITY})"
    left_min = max(int(amount_s // 60) - spent_min, 0)
    return f"{label}: spent: {hours_text(spent_min * 60)} (quota: {hours_text(amount_s)}, left: " \
           f"{hours_text(left_min * 60)})"


def period_start(period: str, now: float, granted_at: float) -> float:
    """Epoch seconds where the current period of a budget began: the first of the month or the Monday of the week
    (00:00 UTC), or the grant itself for a one-off budget."""
    if period == ONCE:
        return granted_at
    day = datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if period == MONTHLY:
        return day.replace(day=1).timestamp()
    if period == WEEKLY:
        return (day - timedelta(days=day.weekday())).timestamp()
    raise ValueError(f"unknown budget period {period!r}; one of {', '.join(PERIODS)}")


def period_end(period: str, now: float) -> float | None:
    """When the current period ends (the budget is whole again); None for a one-off grant."""
    if period == ONCE:
        return None
    start = datetime.fromtimestamp(period_start(period, now, now), UTC)
    if period == WEEKLY:
        return (start + timedelta(days=7)).timestamp()
    month = start.month % 12 + 1
    return start.replace(year=start.year + (start.month == 12), month=month).timestamp()


class Budget(NamedTuple):
    """One budget as admission sees it: `amount_s` of `resource` (gpu or cpu) per `period`, `spent_s` of it used in
    the current period (running jobs included), on the quota or user named `owner` (for messages; a caller on a hot
    path may pass a key and name it only when the budget blocks). A NamedTuple: one is built per budget per check."""

    owner: object
    resource: str
    period: str
    amount_s: int
    spent_s: float


@dataclass(frozen=True)
class Overrun:
    """Why a job may not start: the budget and the numbers."""

    budget: Budget
    needed_s: float

    @property
    def message(self) -> str:
        b = self.budget
        unit = "GPU" if b.resource == "gpu" else "CPU"
        period = {MONTHLY: "monthly ", WEEKLY: "weekly ", ONCE: ""}.get(b.period, "")
        return (f"{b.owner}: {period}{unit}-hour budget {hours_text(b.amount_s)} has "
                f"{hours_text(left(b.spent_s, b.amount_s))} left (spent {hours_text(b.spent_s)}); this job may use {hours_text(self.needed_s)} "
                f"({unit.lower()} x time limit)")


def overrun(remaining_s: float, share: float, horizon_s: float | None, safe: bool = True) -> float | None:
    """One budget with `remaining_s` left against a job using `share` of its resource (GPUs or cores): None when
    the job fits, else what the job may use (0.0 when the budget is merely spent). The rule of `first_overrun`, for
    callers that keep what is left of each budget current themselves (the scheduler's gate)."""
    if share <= 0:
        return None
    if not safe or horizon_s is None:
        return 0.0 if remaining_s <= 0 else None
    needed = share * horizon_s
    return needed if remaining_s <= 0 or needed > remaining_s else None


def first_overrun(budgets: list[Budget], gpu_milli: int, cpu_milli: int, horizon_s: float | None,
                  safe: bool = True) -> Overrun | None:
    """The first budget on a job's path the job would overrun, or None.

    In safe mode (Slurm's `safe`) the job's request times its time limit (`horizon_s`) must fit in what is left of
    every budget; otherwise, and for a job with no time limit at all (`horizon_s` None: nothing bounds what it may
    use), only a budget already spent stops it."""
    for budget in budgets:
        share = (gpu_milli if budget.resource == "gpu" else cpu_milli) / 1000.0
        needed = overrun(budget.amount_s - budget.spent_s, share, horizon_s, safe)
        if needed is not None:
            return Overrun(budget, needed)
    return None
