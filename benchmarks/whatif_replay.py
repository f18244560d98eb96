"""The what-if replay's targets on Microsoft's Philly trace (the simulation domain's driver, not a copy of it).

    python benchmarks/whatif_replay.py [--traces ../shared/data/traces] [--from 2017-10-01 --to 2017-11-30]
                                       [--share 0.25] [--full] [--json]

Jobs submitted in the period (the whole trace with --full) are replayed in virtual time through the scheduler core
(allotment.simulation.replay) against one GPU pool of the virtual clusters' summed capacity (2,816 GPUs):
- shared: each virtual cluster guarantees its capacity x share, borrows without limit and reclaims from any borrower;
  the four without a capacity row guarantee nothing;
- isolated: each virtual cluster is a partition (guarantee = limit = capacity); the jobs of those without capacity
  cannot run there and are left out.
Reported against the issue's targets: the time virtual clusters stayed below their guarantee with a fitting job
queued beyond 60 s per spell (target 0), mean queueing (target <= 600 s), the most preemptions of one job (target
<= 5 on the full trace) and GPU-hours lost, and the CPU time of the whole replay (target < 5 s).
The scheduler settings are the server's defaults (starvation age 3,600 s, preemption delay 1 s).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from allotment.core.model import SchedulerConfig
from allotment.scheduler.gcpause import gc_paused
from allotment.simulation.config import philly
from allotment.simulation.replay import replay
from allotment.simulation.traces import parse_period, read_capacities, read_philly

DEFAULT_TRACES = Path(__file__).resolve().parents[2] / "shared" / "data" / "traces"


def run(traces: Path, period: tuple[float, float] | None, share: float, isolated: bool) -> dict:
    with (traces / "philly_vc_nodes.csv").open(newline="") as f:
        capacities = read_capacities(f, "philly_vc_nodes.csv")
    with (traces / "philly_jobs.csv").open(newline="") as f:
        jobs = read_philly(f, "philly_jobs.csv", period, keep=capacities if isolated else None)
    vcs = sorted({j.quota for j in jobs} | set(capacities))
    cfg = philly(capacities, vcs, share, isolated,
                 SchedulerConfig(starvation_age_s=3600.0, preemption_delay_s=1.0))
    with gc_paused():
        out = replay(cfg, jobs)
    return out


def summary(out: dict) -> dict:
    t = out["totals"]
    worst = max(((q, w) for q, v in out["quotas"].items() for w in v["below_guarantee"]),
                key=lambda x: x[1]["longest_s"], default=(None, None))
    return {"jobs": t["jobs"], "jobs_run": t["jobs_run"], "queued_at_end": t["queued_at_end"],
            "mean_queueing_s": t["queueing_s"]["mean"], "p99_queueing_s": t["queueing_s"]["p99"],
            "below_guarantee_beyond_60s_s": t["below_guarantee_beyond_grace_s"],
            "longest_below_guarantee_s": t["below_guarantee_longest_s"],
            "longest_below_guarantee_quota": worst[0],
            "max_preemptions_per_job": t["max_preemptions_per_job"], "preemptions": t["preemptions"],
            "gpu_hours_lost": t["gpu_hours_lost"], "utilisation": out["pools"]["gpu"]["utilisation"],
            "cpu_s": t["cpu_s"], "wall_s": t["wall_s"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--traces", type=Path, default=DEFAULT_TRACES, help="folder of philly_jobs.csv and "
                    "philly_vc_nodes.csv (default: ../shared/data/traces from the repository)")
    ap.add_argument("--from", dest="start", default="2017-10-01")
    ap.add_argument("--to", dest="stop", default="2017-11-30")
    ap.add_argument("--share", type=float, default=0.25, help="guarantee = capacity x share (shared run)")
    ap.add_argument("--full", action="store_true", help="also replay the whole trace (the preemption target)")
    ap.add_argument("--json", action="store_true", help="one JSON object with the full measures")
    args = ap.parse_args()
    period = parse_period(f"{args.start}..{args.stop}")
    runs = {"shared": run(args.traces, period, args.share, False),
            "isolated": run(args.traces, period, args.share, True)}
    if args.full:
        runs["full_trace_shared"] = run(args.traces, None, args.share, False)
    if args.json:
        print(json.dumps(runs, indent=2))
        return
    print(json.dumps({name: summary(out) for name, out in runs.items()}, indent=2))


if __name__ == "__main__":
    main()
