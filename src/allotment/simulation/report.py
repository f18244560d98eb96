"""A replay's measures as rows for people: per quota, per pool, and two configurations side by side with the
differences (against - config: a negative queueing difference means the other configuration queues less)."""

from __future__ import annotations

from typing import Any

QUOTA_COLUMNS = (
    ("jobs run", lambda q: q["jobs_run"]),
    ("queued at end", lambda q: q["queued_at_end"]),
    ("queue mean s", lambda q: q["queueing_s"]["mean"]),
    ("queue p50 s", lambda q: q["queueing_s"]["p50"]),
    ("queue p95 s", lambda q: q["queueing_s"]["p95"]),
    ("queue p99 s", lambda q: q["queueing_s"]["p99"]),
    ("JCT mean s", lambda q: q["jct_s"]["mean"]),
    ("preemptions", lambda q: q["preemptions"]),
    ("GPU-h lost", lambda q: q["gpu_hours_lost"]),
    ("GPU-h used", lambda q: q["gpu_hours_used"]),
    ("below guarantee s", lambda q: round(sum(b["seconds"] for b in q["below_guarantee"]), 1)),
)


def _num(value: Any) -> float:
    return value if isinstance(value, int | float) else 0.0


def quota_rows(result: dict) -> list[list[Any]]:
    """One row per quota: its name, then QUOTA_COLUMNS; a quota's refused jobs are named in a last column."""
    rows = []
    for name, q in result["quotas"].items():
        refused = ", ".join(f"{n} {code}" for code, n in sorted(q["refused"].items()))
        rows.append([name, *(f(q) for _, f in QUOTA_COLUMNS), refused])
    return rows


def pool_rows(result: dict) -> list[list[Any]]:
    return [[name, p["gpus"], f"{p['utilisation'] * 100:.1f} %"] for name, p in result["pools"].items()]


def differences(a: dict, b: dict) -> dict[str, Any]:
    """Per quota and in total, b - a for every measure of QUOTA_COLUMNS; per pool, the utilisation's."""
    quotas = {}
    for name in dict.fromkeys([*a["quotas"], *b["quotas"]]):
        qa, qb = a["quotas"].get(name), b["quotas"].get(name)
        if qa is None or qb is None:
            continue
        quotas[name] = {label: round(_num(f(qb)) - _num(f(qa)), 4) for label, f in QUOTA_COLUMNS}
    pools = {name: round(b["pools"][name]["utilisation"] - p["utilisation"], 4)
             for name, p in a["pools"].items() if name in b["pools"]}
    ta, tb = a["totals"], b["totals"]
    totals = {
        "queue mean s": round(tb["queueing_s"]["mean"] - ta["queueing_s"]["mean"], 1),
        "queue p95 s": round(tb["queueing_s"]["p95"] - ta["queueing_s"]["p95"], 1),
        "preemptions": tb["preemptions"] - ta["preemptions"],
        "GPU-h lost": round(tb["gpu_hours_lost"] - ta["gpu_hours_lost"], 1),
        "below guarantee beyond grace s": round(tb["below_guarantee_beyond_grace_s"]
                                                - ta["below_guarantee_beyond_grace_s"], 1),
    }
    return {"quotas": quotas, "pools": pools, "totals": totals}


def side_by_side(a: dict, b: dict) -> list[list[Any]]:
    """Rows (quota, measure, config, against, difference) for every quota and measure that differs, then pools."""
    diff = differences(a, b)
    rows: list[list[Any]] = []
    for name, changes in diff["quotas"].items():
        for label, f in QUOTA_COLUMNS:
            va, vb = f(a["quotas"][name]), f(b["quotas"][name])
            if va != vb:
                rows.append([name, label, va, vb, _signed(changes[label])])
    for name, delta in diff["pools"].items():
        rows.append([f"pool {name}", "utilisation", f"{a['pools'][name]['utilisation'] * 100:.1f} %",
                     f"{b['pools'][name]['utilisation'] * 100:.1f} %", f"{delta * 100:+.1f} pp"])
    return rows


def _signed(value: float) -> str:
    text = f"{value:+.1f}" if isinstance(value, float) and not value.is_integer() else f"{int(value):+d}"
    return text


def summary_line(result: dict) -> str:
    t = result["totals"]
    return (f"{t['jobs']} jobs, {t['jobs_run']} run, {t['queued_at_end']} never started, {t['refused']} refused; "
            f"mean queueing {t['queueing_s']['mean']:.0f} s (p95 {t['queueing_s']['p95']:.0f} s); "
            f"{t['preemptions']} preemptions (at most {t['max_preemptions_per_job']} of one job), "
            f"{t['gpu_hours_lost']:.1f} GPU-hours lost; below guarantee beyond 60 s: "
            f"{t['below_guarantee_beyond_grace_s']:.0f} s; replay {t['cpu_s']:.2f} s CPU")
