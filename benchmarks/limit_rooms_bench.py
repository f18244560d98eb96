"""What a job's end costs when many groups wait at a full limit: the scheduler core with limit rooms (a group only
limits block, that may not preempt, waits for room for it under the limit) against the same core re-examining every
such group at every end under the limit (the behaviour before limit rooms), in the same run.

Run:  python benchmarks/limit_rooms_bench.py            (prints one JSON object)
      python benchmarks/limit_rooms_bench.py --rounds 200 --finish 5

Cluster: 10 cohorts x 100 quotas on one pool of 8,000 cores (CPU: no device placement, so that only the limits
block). Each cohort guarantees and is limited to 800 cores, each quota guarantees 8 and may borrow up to 64 (a site
without preemption: reclaim and within-quota preemption off). The cohorts are full of 1-core jobs, and every quota
queues jobs of 4, 8 and 16 cores that the cohorts' limits block. Each round ends ``--finish`` random 1-core jobs (less
room than any queued job needs, until the ends add up) and runs one cycle; every tenth round also submits that many
1-core jobs. Reported per side: CPU per round
(job ends and cycle), groups examined and Waits per round (each Wait is a row the scheduler loop writes), and the
admissions (the same count on both sides here). Both sides run the core's Python sources.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
# Both sides run the core's sources: the "every end" side is a subclass of the state, which a compiled class refuses.
os.environ["ALLOTMENT_CORE_EXT"] = "off"

from allotment import compiled_core
from allotment.core.admission import SchedulerState
from allotment.core.model import Admit, Pool, QueuedJob, SchedulerConfig, Wait
from allotment.core.quantity import Quantity
from allotment.core.quota_tree import QuotaLimits, QuotaSpec
from allotment.scheduler.gcpause import gc_paused

COHORTS, PER_COHORT = 10, 100


def tree() -> tuple[list[QuotaSpec], list[Pool]]:
    pool = Pool("p", (), cpu=Quantity(8000 * 1000))
    specs = []
    for c in range(COHORTS):
        specs.append(QuotaSpec(f"c{c}", resources={("p", "cpu"): QuotaLimits(Quantity(800_000), Quantity(800_000))}))
        specs.extend(QuotaSpec(f"c{c}q{i}", f"c{c}",
                               resources={("p", "cpu"): QuotaLimits(Quantity(8000), Quantity(64_000))},
                               reclaim="never", within_quota_preemption="never") for i in range(PER_COHORT))
    return specs, [pool]


class EveryEnd(SchedulerState):
    """The behaviour before limit rooms: every end under a quota's limit re-examines every group it blocks."""

    def _release(self, run):  # type: ignore[no-untyped-def]
        super()._release(run)
        for a in self._tree.path[run.quota]:
            for groups in list(self._park.rooms.get(a, {}).values()):
                for group in list(groups):
                    self._wake(group)


def run(cls: type[SchedulerState], rounds: int, finish: int, seed: int) -> dict:
    rng = random.Random(seed)
    specs, pools = tree()
    state = cls(specs, pools, config=SchedulerConfig(preemption_delay_s=1.0))
    seq = 0

    def submit(quota: str, cores: int, now: float) -> None:
        nonlocal seq
        seq += 1
        state.add_job(QueuedJob(f"j{seq}", quota, 100, seq, now, {"cpu": Quantity(cores * 1000)}, ("p",)))

    for c in range(COHORTS):  # the cohorts full of 1-core jobs, then the big ones queued behind them
        for i in range(PER_COHORT):
            for _ in range(8):
                submit(f"c{c}q{i}", 1, 0.0)
    running = [d.job_id for d in state.cycle(0.0) if isinstance(d, Admit)]
    for c in range(COHORTS):
        for i in range(PER_COHORT):
            for cores in (4, 8, 16):
                submit(f"c{c}q{i}", cores, 1.0)
    state.cycle(1.0)
    waits = admitted = 0
    examined = {"n": 0}
    original = state._try

    def counting_try(*args):  # type: ignore[no-untyped-def]
        examined["n"] += 1
        return original(*args)

    state._try = counting_try  # type: ignore[method-assign]
    cpu = 0.0
    with gc_paused():
        for r in range(rounds):
            now = 2.0 + r
            t = time.process_time()
            for _ in range(min(finish, len(running))):
                i = rng.randrange(len(running))
                running[i], running[-1] = running[-1], running[i]
                state.job_finished(running.pop())
            out = state.cycle(now)
            cpu += time.process_time() - t
            waits += sum(isinstance(d, Wait) for d in out)
            new = [d.job_id for d in out if isinstance(d, Admit)]
            admitted += len(new)
            running += new
            if r % 10 == 9:
                for _ in range(finish):
                    leaf = rng.randrange(COHORTS * PER_COHORT)
                    submit(f"c{leaf // PER_COHORT}q{leaf % PER_COHORT}", 1, now)
    tried = examined["n"]
    return {"cpu_ms_per_round": round(cpu / rounds * 1000, 3),
            "examined_per_round": round(tried / rounds, 1),
            "waits_per_round": round(waits / rounds, 1), "admitted": admitted}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--finish", type=int, default=3, help="1-core jobs ended before each cycle")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rooms = run(SchedulerState, args.rounds, args.finish, args.seed)
    every_end = run(EveryEnd, args.rounds, args.finish, args.seed)
    print(json.dumps({"scheduler_core": compiled_core.STATUS, "rounds": args.rounds, "finish": args.finish,
                      "limit_rooms": rooms, "every_end": every_end,
                      "cpu_ratio": round(every_end["cpu_ms_per_round"] / max(rooms["cpu_ms_per_round"], 1e-9), 1)},
                     indent=1))


if __name__ == "__main__":
    main()
