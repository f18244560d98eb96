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
<= 5 on the full trace) and GPU-hours lost, and the CPU time of the whole replay (target < 5 s), with the core
benchmark's calibration loop (ns per iteration) before and after, since CPU figures follow the machine's load.
The scheduler settings are the server's defaults (starvation age 3,600 s, preemption delay 1 s).

--cli-history: the CLI target. A throwaway server (SQLite) gets a cluster of 64 GPUs (8 nodes of 8), four quotas
guaranteeing 16 GPUs each, and a two-month history of 10,000 finished jobs written straight into its database
(random but seeded: 1 to 8 GPUs, log-normal runtimes); then `allot simulate --cluster hist --history FROM..TO --json`
runs as a separate process and its wall-clock time is reported (target < 10 s).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from core_bench import calibrate  # the same loop as the core benchmark's, to compare CPU figures across days

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


def cli_history(jobs: int = 10_000, seed: int = 7) -> dict:
    """The CLI target: `allot simulate --history` over a two-month, ``jobs``-job history (see the module doc)."""
    import os
    import random
    import resource
    import subprocess
    import time
    from datetime import UTC, datetime

    from sqlalchemy import select

    import allotment.models  # noqa: F401 - every table, for the foreign keys
    from allotment.bench.runner import ADMIN, ADMIN_PASSWORD, Api, ThrowawayServer
    from allotment.db import make_engine, make_session_factory, transaction
    from allotment.identity.models import User
    from allotment.quotas.models import Quota
    from allotment.settings import Settings
    from allotment.workloads.models import Job

    rng = random.Random(seed)
    lo = datetime(2026, 9, 1, tzinfo=UTC).timestamp()
    hi = lo + 61 * 86400
    with ThrowawayServer() as server:
        api = Api(server.url)
        api.login(ADMIN, ADMIN_PASSWORD)
        api.call("POST", "/clusters", {"name": "hist", "backend": "simulated"})
        for n in range(8):
            api.call("POST", "/clusters/hist/nodes", {"name": f"n{n}", "cpu": 128, "memory": "1Ti", "devices": [
                {"index": i, "model": "A100", "memory": "80Gi"} for i in range(8)]})
        api.call("POST", "/clusters/hist/pools", {"name": "a100", "nodes": [f"n{n}" for n in range(8)]})
        teams = ["vision", "speech", "nlp", "rl"]
        for team in teams:
            api.call("POST", "/clusters/hist/quotas", {"name": team, "reclaim": "any", "resources": [
                {"resource": "gpu", "pool": "a100", "guarantee": 16}]})
        url = Settings(data_dir=server.dir / "var").effective_database_url
        factory = make_session_factory(make_engine(url))
        with transaction(factory) as session:
            owner = session.scalar(select(User.id).where(User.username == ADMIN))
            quotas = dict(session.execute(select(Quota.name, Quota.id).where(Quota.name.in_(teams))).all())
            cluster_id = session.scalar(select(Quota.cluster_id).where(Quota.name == teams[0]))
            submits = sorted(rng.uniform(lo, hi) for _ in range(jobs))
            for i, at in enumerate(submits):
                runtime = min(rng.lognormvariate(7.5, 1.6), 7 * 86400)
                start = at + rng.uniform(0, 60)
                session.add(Job(owner_id=owner, cluster_id=cluster_id, quota_id=quotas[rng.choice(teams)],
                                gpu_milli=rng.choice((1, 1, 1, 1, 2, 4, 8)) * 1000, priority_class="training",
                                command=["train"], state="succeeded", seq=i + 1,
                                submitted_at=datetime.fromtimestamp(at, UTC),
                                admitted_at=datetime.fromtimestamp(start, UTC),
                                started_at=datetime.fromtimestamp(start, UTC),
                                finished_at=datetime.fromtimestamp(start + runtime, UTC)))
        env = {**os.environ, "ALLOT_URL": server.url, "ALLOT_TOKEN": api.http.headers["Authorization"][7:],
               "ALLOT_CONFIG_DIR": str(server.dir)}
        period = "2026-09-01..2026-10-31"
        asked = time.perf_counter()
        api.call("POST", "/clusters/hist/simulation-inputs", {"history": {"from": "2026-09-01", "to": "2026-10-31"}})
        inputs_s = time.perf_counter() - asked
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", "from allotment.cli.main import main; main()", "simulate",
                               "--cluster", "hist", "--history", period, "--json"], env=env, capture_output=True,
                              text=True, check=False)
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cli_cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
        if done.returncode != 0:
            raise SystemExit(f"allot simulate failed: {done.stdout[-2000:]}{done.stderr[-2000:]}")
        out = json.loads(done.stdout)["config"]
    return {"command": f"allot simulate --cluster hist --history {period} --json", "jobs": out["totals"]["jobs"],
            "wall_s": round(wall, 2), "cli_process_cpu_s": round(cli_cpu, 2), "replay_cpu_s": out["totals"]["cpu_s"],
            "server_inputs_wall_s": round(inputs_s, 2),
            "mean_queueing_s": out["totals"]["queueing_s"]["mean"], "utilisation": out["pools"]["a100"]["utilisation"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--traces", type=Path, default=DEFAULT_TRACES, help="folder of philly_jobs.csv and "
                    "philly_vc_nodes.csv (default: ../shared/data/traces from the repository)")
    ap.add_argument("--from", dest="start", default="2017-10-01")
    ap.add_argument("--to", dest="stop", default="2017-11-30")
    ap.add_argument("--share", type=float, default=0.25, help="guarantee = capacity x share (shared run)")
    ap.add_argument("--full", action="store_true", help="also replay the whole trace (the preemption target)")
    ap.add_argument("--json", action="store_true", help="one JSON object with the full measures")
    ap.add_argument("--cli-history", action="store_true", help="only the CLI target: allot simulate over a "
                    "10,000-job two-month history on a throwaway server")
    args = ap.parse_args()
    if args.cli_history:
        print(json.dumps(cli_history(), indent=2))
        return
    period = parse_period(f"{args.start}..{args.stop}")
    before = calibrate()
    runs = {"shared": run(args.traces, period, args.share, False),
            "isolated": run(args.traces, period, args.share, True)}
    if args.full:
        runs["full_trace_shared"] = run(args.traces, None, args.share, False)
    calibration = {"calibration_ns_per_loop_iteration": [before, calibrate()]}  # CPU figures depend on the day's load
    if args.json:
        print(json.dumps({**runs, **calibration}, indent=2))
        return
    print(json.dumps({**{name: summary(out) for name, out in runs.items()}, **calibration}, indent=2))


if __name__ == "__main__":
    main()
