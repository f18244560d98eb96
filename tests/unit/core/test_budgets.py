"""core/budgets.py: Neu.ro's amounts and words, budget periods, and the safe-mode admission check."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from allotment.core import budgets as b


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


@pytest.mark.parametrize(("text", "seconds"), [
    ("50h", 180000), ("3.5h", 12600), ("30m", 1800), (" 2H ", 7200), (".5h", 1800), ("infinity", None),
    ("unlimited", None),
])
def test_amounts_in_hours_and_minutes(text, seconds):
    assert b.parse_amount(text) == seconds


@pytest.mark.parametrize("text", ["50", "h", "-1h", "3d", "1e3h", "", "50 hours", "2000000h"])
def test_bad_amounts_say_what_is_expected(text):
    with pytest.raises(b.BadAmount, match="hours|more than"):
        b.parse_amount(text)


def test_neuro_words():
    assert b.minutes_text(b.parse_amount("50h")) == "3000m"
    assert b.minutes_text(b.parse_amount("30m")) == "30m"
    assert b.minutes_text(None) == "infinity"
    spent = 91 * 3600 + 37 * 60 + 59  # the 59 seconds do not make a minute
    assert b.spent_line("GPU", spent, 200 * 3600) == "GPU: spent: 91h 37m (quota: 200h 00m, left: 108h 23m)"
    assert b.spent_line("CPU", 1036 * 3600, None) == "CPU: spent: 1036h 00m (quota: infinity)"
    assert b.spent_line("GPU", 300 * 3600, 200 * 3600) == "GPU: spent: 300h 00m (quota: 200h 00m, left: 0h 00m)"


@pytest.mark.parametrize(("period", "now", "start", "end"), [
    ("monthly", "2026-11-17T13:05:00", "2026-11-01T00:00:00", "2026-12-01T00:00:00"),
    ("monthly", "2026-12-31T23:59:00", "2026-12-01T00:00:00", "2027-01-01T00:00:00"),
    ("weekly", "2026-11-19T08:00:00", "2026-11-16T00:00:00", "2026-11-23T00:00:00"),  # a Thursday; Monday starts
    ("weekly", "2026-11-16T00:00:00", "2026-11-16T00:00:00", "2026-11-23T00:00:00"),
])
def test_periods_reset_at_month_and_week_starts(period, now, start, end):
    assert b.period_start(period, ts(now), 0.0) == ts(start)
    assert b.period_end(period, ts(now)) == ts(end)


def test_a_one_off_grant_counts_from_when_it_was_granted_and_never_resets():
    assert b.period_start("once", ts("2026-11-17T00:00:00"), ts("2026-10-02T10:00:00")) == ts("2026-10-02T10:00:00")
    assert b.period_end("once", ts("2026-11-17T00:00:00")) is None


TEAM = b.Budget("quota team", "gpu", "monthly", 10 * 3600, 8 * 3600)  # 2 GPU-hours left
ORG = b.Budget("quota org", "gpu", "monthly", 100 * 3600, 10 * 3600)
CPU = b.Budget("quota team", "cpu", "weekly", 3600, 3600)  # spent


@pytest.mark.parametrize(("budgets", "gpu", "cpu", "horizon", "safe", "blocked_by"), [
    ([TEAM, ORG], 1000, 0, 3600, True, None),  # 1 GPU x 1 h fits in 2 h left
    ([TEAM, ORG], 2000, 0, 3600, True, None),  # exactly what is left
    ([TEAM, ORG], 3000, 0, 3600, True, "quota team"),  # 3 GPU-hours > 2 left
    ([ORG, TEAM], 500, 0, 5 * 3600, True, "quota team"),  # half a GPU counts as half: 2.5 h > 2 h
    ([TEAM], 1000, 0, None, True, None),  # no time limit at all: only a spent budget holds it
    ([CPU], 0, 1000, None, True, "quota team"),
    ([TEAM], 3000, 0, 3600, False, None),  # not safe: only a spent budget stops a job
    ([CPU], 1000, 0, 3600, True, None),  # a GPU job does not draw on a CPU budget... no cpu asked
    ([CPU], 0, 2000, 60, False, "quota team"),  # spent: stops even outside safe mode
    ([], 8000, 64000, None, True, None),
])
def test_first_overrun(budgets, gpu, cpu, horizon, safe, blocked_by):
    found = b.first_overrun(budgets, gpu, cpu, horizon, safe)
    assert (found.budget.owner if found else None) == blocked_by


def test_the_overrun_message_names_the_budget_and_the_numbers():
    found = b.first_overrun([TEAM], 3000, 0, 3600)
    assert found.message == ("quota team: monthly GPU-hour budget 10h 00m has 2h 00m left (spent 8h 00m); this job "
                             "may use 3h 00m (gpu x time limit)")


@pytest.mark.parametrize(("remaining", "share", "horizon", "safe", "expected"), [
    (7200.0, 1.0, 3600.0, True, None),  # fits
    (7200.0, 2.0, 3600.0, True, None),  # exactly fits
    (7200.0, 4.0, 3600.0, True, 14400.0),  # would overrun: what it may use
    (0.0, 1.0, 3600.0, True, 3600.0),  # spent
    (-5.0, 1.0, None, True, 0.0),  # no horizon: only a spent budget stops it
    (10.0, 8.0, None, True, None),
    (10.0, 8.0, 3600.0, False, None),  # safe mode off: likewise
    (0.0, 8.0, 3600.0, False, 0.0),
    (0.0, 0.0, 3600.0, True, None),  # the job does not use this resource
])
def test_one_budget_against_one_job(remaining, share, horizon, safe, expected):
    assert b.overrun(remaining, share, horizon, safe) == expected
