"""Benchmark of the pure scheduler core (allotment.core.admission), no database, no HTTP.

Run:  python benchmarks/core_bench.py            (full: 10k, 100k and 1M queued jobs; prints one JSON object)
      python benchmarks/core_bench.py --quick    (10k and 100k only)

Shape: 10 cohorts x 100 quotas (1,000 leaf quotas + 10 cohort quotas), 50 pools of 40 GPUs (5 nodes x 8) and
512 cores each. Every leaf quota guarantees 2 GPUs and 8 cores in its home pool (limit 8 GPUs), borrows elsewhere,
reclaims from borrowers ("any") and preempts lower priority within itself (Kueue's benchmark settings). Jobs: 0.5, 1, 2
or 4 GPUs with 1-8 cores, priorities 100/200/300, trying their home pool then the next one.

Steady state is measured: each round finishes ``--finish`` random running jobs, runs one cycle, and submits as many
new jobs as were admitted, so the queue stays at its size. A "decision" is every value a cycle returns (Admit,
Preempt, Wait); admissions are reported separately. Times are per cycle() call only; submission and finish costs are
reported on their own lines. The cost ratio compares microseconds per decision at the largest and smallest queue.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from allotment.core.admission import SchedulerState  # noqa: E402
from allotment.core.model import Admit, Device, Pool, Preempt, QueuedJob, SchedulerConfig, Wait  # noqa: E402
from allotment.core.quantity import Quantity  # noqa: E402
from allotment.core.quota_tree import QuotaLimits, QuotaSpec  # noqa: E402

COHORTS, PER_COHORT, POOLS, GPUS_PER_POOL, CORES_PER_POOL = 10, 100, 50, 40, 512
GPU_SIZES = (500, 1000, 2000, 4000)
PRIORITIES = (100, 200, 300)


def pools() -> list[Pool]:
    return [
        Pool(f"pool{p}", tuple(Device(f"pool{p}-n{d // 8}-g{d % 8}", node=f"pool{p}-n{d // 8}")
                               for d in range(GPUS_PER_POOL)), cpu=Quantity(CORES_PER_POOL * 1000))
        for p in range(POOLS)
    ]


def home_pool(leaf: int) -> int:
    return leaf % POOLS


def quotas() -> list[QuotaSpec]:
    specs = []
    for c in range(COHORTS):
        cohort_g: dict[tuple[str, str], int] = {}
        leaves = []
        for i in range(PER_COHORT):
            leaf = c * PER_COHORT + i
            pool = f"pool{home_pool(leaf)}"
            resources = {
                (pool, "gpu"): QuotaLimits(Quantity(2000), Quantity(8000)),
                (pool, "cpu"): QuotaLimits(Quantity(8000), Quantity(64000)),
            }
            for k, v in resources.items():
                cohort_g[k] = cohort_g.get(k, 0) + v.guarantee.raw
            leaves.append(QuotaSpec(f"q{leaf}", f"cohort{c}", resources=resources, reclaim="any",
                                    within_quota_preemption="lower_priority"))
        specs.append(QuotaSpec(f"cohort{c}", resources={k: QuotaLimits(Quantity(v)) for k, v in cohort_g.items()}))
        specs.extend(leaves)
    return specs


class Jobs:
    """Deterministic job stream: each quota has a few shapes, like real teams do."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.seq = 0

    def next(self, now: float) -> QueuedJob:
        rng = self.rng
        self.seq += 1
        leaf = rng.randrange(COHORTS * PER_COHORT)
        home = home_pool(leaf)
        shape = rng.randrange(3)
        gpu = GPU_SIZES[(leaf + shape) % len(GPU_SIZES)]
        cores = 1 + (leaf + 3 * shape) % 8
        return QueuedJob(
            f"j{self.seq}", f"q{leaf}", PRIORITIES[shape], self.seq, now,
            {"gpu": Quantity(gpu), "cpu": Quantity(cores * 1000)},
            (f"pool{home}", f"pool{(home + 1) % POOLS}"),
        )


def run(queued: int, rounds: int, finish: int, seed: int) -> dict:
    gc.collect()
    state = SchedulerState(quotas(), pools(), config=SchedulerConfig(starvation_age_s=3600.0))
    jobs = Jobs(seed)
    rng = random.Random(seed + 1)
    now = 0.0
    t0 = time.perf_counter()
    for _ in range(queued):
        state.add_job(jobs.next(now))
    submit_s = time.perf_counter() - t0
    gc.freeze()  # the long-lived state moves out of the collector's way, as a long-running loop would do
    running: list[str] = []

    def apply(decisions: list) -> int:
        n = 0
        for d in decisions:
            if isinstance(d, Admit):
                running.append(d.job_id)
                n += 1
        victims = {d.victim_id for d in decisions if isinstance(d, Preempt)}
        if victims:
            running[:] = [r for r in running if r not in victims]
        return n

    warm = state.cycle(now)  # fill the empty cluster
    admitted = apply(warm)
    for _ in range(admitted):
        state.add_job(jobs.next(now))
    cycle_s, cycle_cpu_s, finish_s, decisions, admissions, preemptions, waits = 0.0, 0.0, 0.0, 0, 0, 0, 0
    per_round: list[float] = []
    for _ in range(rounds):
        now += 10.0
        t = time.perf_counter()
        for _ in range(min(finish, len(running))):
            i = rng.randrange(len(running))
            running[i], running[-1] = running[-1], running[i]
            state.job_finished(running.pop())
        finish_s += time.perf_counter() - t
        t, c = time.perf_counter(), time.process_time()
        out = state.cycle(now)
        dt = time.perf_counter() - t
        cycle_cpu_s += time.process_time() - c
        cycle_s += dt
        n = apply(out)
        decisions += len(out)
        admissions += n
        preemptions += sum(1 for d in out if isinstance(d, Preempt))
        waits += sum(1 for d in out if isinstance(d, Wait))
        per_round.append(dt / max(len(out), 1) * 1e6)
        for _ in range(n):
            state.add_job(jobs.next(now))
    gc.unfreeze()
    return {
        "queued": queued,
        "quotas": COHORTS * PER_COHORT + COHORTS,
        "pools": POOLS,
        "rounds": rounds,
        "decisions": decisions,
        "admissions": admissions,
        "preemptions": preemptions,
        "waits": waits,
        "cycle_seconds": round(cycle_s, 4),
        "cycle_cpu_seconds": round(cycle_cpu_s, 4),
        "decisions_per_s": round(decisions / cycle_s),
        "decisions_per_cpu_s": round(decisions / cycle_cpu_s),
        "admissions_per_s": round(admissions / cycle_s),
        "us_per_decision": round(cycle_s / decisions * 1e6, 2),
        "cpu_us_per_decision": round(cycle_cpu_s / decisions * 1e6, 2),
        "us_per_decision_median_round": round(statistics.median(per_round), 2),
        "us_per_admission": round(cycle_s / admissions * 1e6, 2),
        "finish_us_per_job": round(finish_s / max(rounds * finish, 1) * 1e6, 2),
        "submit_us_per_job": round(submit_s / queued * 1e6, 2),
        "warmup_admissions": admitted,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="skip the 1,000,000-job run")
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--finish", type=int, default=500, help="running jobs finished before each cycle")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    sizes = [10_000, 100_000] + ([] if args.quick else [1_000_000])
    results = [run(n, args.rounds, args.finish, args.seed) for n in sizes]
    small, large = results[0], results[-1]
    by_size = {r["queued"]: r for r in results}
    report = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "runs": results,
        "decisions_per_s_at_100k": by_size[100_000]["decisions_per_s"],
        "admissions_per_s_at_100k": by_size[100_000]["admissions_per_s"],
        "cost_ratio": round(large["us_per_decision"] / small["us_per_decision"], 3),
        "cost_ratio_sizes": [small["queued"], large["queued"]],
        "targets": {"decisions_per_s_at_100k": 50_000, "cost_ratio_max": 1.5},
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
