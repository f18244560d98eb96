"""Replay a scenario through the pure scheduler core in virtual time: no HTTP, no database, no engine, no overhead.

    python benchmarks/policy_replay.py benchmarks/scenarios/kueue-baseline.yaml [--cycle-ms 0]

It answers "what do the scheduling rules alone give on this scenario?": a cycle runs at every submission, every
finish and the core's next_due (or every --cycle-ms of virtual time), admitted jobs start at once and run exactly their runtime, preempted
jobs are re-queued with their original submission time (as the real loop does). The figures use the same measures as
`allot bench scenario` (time to admission = last admission - submission), so the difference between the two is the
cost of the real path.
"""

from __future__ import annotations

import argparse
import heapq
import json
import math
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from allotment.bench.report import admission_stats
from allotment.bench.scenario import load
from allotment.core.admission import SchedulerState
from allotment.core.model import Admit, Pool, Preempt, QueuedJob, SchedulerConfig
from allotment.core.quantity import UNLIMITED, parse_quantity
from allotment.core.quota_tree import QuotaLimits, QuotaSpec


def build_state(plan, preemption_delay_s: float) -> SchedulerState:
    res, pool = plan.resource, plan.pool

    def q(value):
        return UNLIMITED if value is None else parse_quantity(value, res)

    specs = [QuotaSpec(id=p.name, parent_id=p.parent, weight=p.weight, reclaim=p.reclaim,
                       within_quota_preemption=p.within_quota_preemption,
                       resources={(pool, res): QuotaLimits(q(p.guarantee), q(p.limit),
                                                           None if p.lending_limit is None else q(p.lending_limit))})
             for p in plan.quotas]
    if res != "cpu":
        raise SystemExit("policy_replay sizes CPU scenarios only")
    pools = [Pool(pool, cpu=parse_quantity(plan.capacity, res))]
    return SchedulerState(specs, pools, config=SchedulerConfig(starvation_age_s=None, preemption_delay_s=preemption_delay_s))


def replay(plan, cycle_ms: float = 0.0, preemption_delay_s: float = 1.0, jitter_ms: float = 0.0,
           seed: int = 1, overhead_ms: float = 0.0) -> dict:
    """``jitter_ms``: each submission and each end comes up to that much later than planned (uniformly, from
    ``seed``), as HTTP, the database and the engine's polling make them in the real path. ``overhead_ms``: every
    run holds its capacity that much longer than its runtime, the time the real loop takes from a job's end to the
    cycle that hands its capacity on."""
    state = build_state(plan, preemption_delay_s)
    rng = random.Random(seed)
    res, pool = plan.resource, plan.pool
    jobs = plan.jobs
    info = {}
    events: list[tuple[float, int, str, str]] = []  # (time, order, kind, job id)
    for i, j in enumerate(jobs):
        jid = f"j{i}"
        at = (j.at_ms + rng.uniform(0.0, jitter_ms)) / 1000.0
        info[jid] = {"plan": j, "submitted": at, "admitted": None, "preempted": 0, "epoch": 0}
        heapq.heappush(events, (at, 1, "submit", jid))
    seq = 0
    running_until: dict[str, tuple[float, int]] = {}
    now = 0.0
    decisions = 0
    cpu0 = time.process_time()
    busy = 0.0
    while events or state.next_due is not None:
        # the next event, or earlier the core's own next_due (a preemption delay ending, a job ageing): on a sparse
        # scenario they would otherwise fire only at the next submission or end
        now = events[0][0] if events else math.inf
        due = state.next_due
        if due is not None and due < now:
            now = due
        if cycle_ms > 0:  # the next tick at or after the first pending event
            now = math.ceil(round(now * 1000 / cycle_ms, 9)) * cycle_ms / 1000.0
        while events and events[0][0] <= now + 1e-12:
            at, _, kind, jid = heapq.heappop(events)
            rec = info[jid]
            if kind == "submit":
                seq += 1
                p = rec["plan"]
                state.add_job(QueuedJob(id=jid, quota=p.quota, priority=p.priority, seq=seq,
                                        submitted_at=rec["submitted"],
                                        requests={res: parse_quantity(p.request, res)}, pools=(pool,)))
            elif kind.startswith("finish"):
                epoch = int(kind.split(":")[1])
                if epoch == rec["epoch"] and jid in running_until:
                    del running_until[jid]
                    state.job_finished(jid)
                    rec["finished"] = at
        out = state.cycle(now)
        decisions += len(out)
        for d in out:
            if isinstance(d, Preempt):
                rec = info[d.victim_id]
                running_until.pop(d.victim_id)  # its work is lost: utilisation counts finished runs only
                rec["preempted"] += 1
                rec["epoch"] += 1
                p = rec["plan"]
                seq += 1
                state.add_job(QueuedJob(id=d.victim_id, quota=p.quota, priority=p.priority, seq=seq,
                                        submitted_at=rec["submitted"],
                                        requests={res: parse_quantity(p.request, res)}, pools=(pool,)))
            elif isinstance(d, Admit):
                rec = info[d.job_id]
                rec["admitted"] = now
                end = now + (rec["plan"].runtime_ms + overhead_ms + rng.uniform(0.0, jitter_ms)) / 1000.0
                running_until[d.job_id] = (now, rec["epoch"])
                heapq.heappush(events, (end, 0, f"finish:{rec['epoch']}", d.job_id))
    cpu = time.process_time() - cpu0
    classes: dict[str, list[float]] = {}
    preemptions: dict[str, int] = {}
    for rec in info.values():
        c = rec["plan"].job_class
        classes.setdefault(c, []).append((rec["admitted"] - rec["submitted"]) * 1000.0)
        preemptions[c] = preemptions.get(c, 0) + rec["preempted"]
        busy += rec["plan"].request * rec["plan"].runtime_ms / 1000.0
    wall = max(r["finished"] for r in info.values())
    out = {"scenario": plan.name, "wall_ms": round(wall * 1000, 1), "jobs": len(jobs),
           "utilisation": round(busy / (plan.capacity * wall), 4), "decisions": decisions,
           "core_cpu_s": round(cpu, 2), "preemptions": preemptions,
           "classes": {c: admission_stats(v) for c, v in sorted(classes.items())}}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scenario")
    ap.add_argument("--cycle-ms", type=float, default=0.0, help="cycle on a grid of N ms of virtual time (0: at every event)")
    ap.add_argument("--preemption-delay", type=float, default=1.0,
                    help="seconds a job waits before it may preempt (the server's default: 1)")
    ap.add_argument("--jitter-ms", type=float, default=0.0,
                    help="submissions and ends come up to N ms late, at random (the real path's timing noise)")
    ap.add_argument("--seed", type=int, default=1, help="of the jitter")
    ap.add_argument("--overhead-ms", type=float, default=0.0,
                    help="every run holds its capacity N ms past its runtime (the real path's end-to-reuse latency)")
    args = ap.parse_args()
    print(json.dumps(replay(load(args.scenario), args.cycle_ms, args.preemption_delay, args.jitter_ms, args.seed,
                            args.overhead_ms), indent=2))


if __name__ == "__main__":
    main()
