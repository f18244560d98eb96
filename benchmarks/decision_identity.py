"""Do two versions of the scheduler core take the same decisions? Replays randomised churn through both and compares
every decision (its repr), the state's next_due after each cycle and a few explain() answers per cycle.

Run:  python benchmarks/decision_identity.py                       (HEAD against the working tree, 60 scenarios)
      python benchmarks/decision_identity.py --ref 91ee39d --scenarios 200 --seed 3
      python benchmarks/decision_identity.py --only src/allotment/core/preemption.py src/allotment/core/state.py
            (the "new" side is REF with only these files taken from the working tree: compares one change apart
            from others in progress in the same tree)
      python benchmarks/decision_identity.py --compiled [BUILD]
            (the working tree's sources against its compiled core, build/core-ext by default: the build must load,
            or the comparison fails)

Each version runs in its own interpreter (the package of REF is exported with git archive into a temporary folder),
so the two never share a module. The scenarios, all from the seed:
- the benchmark's tree (benchmarks/core_bench.py: 10 cohorts x 100 quotas, 50 pools, reclaim=any, within-quota
  preemption) with 8 to 40 GPUs per pool, starvation ages of 5 s, 3,600 s or none, preemption delays of 0, 4 or 8 s;
- small random trees: lending limits, weights, every preemption policy, child preemption, minimum runtimes,
  fractional GPUs, pools that list their nodes, best-fit jobs, profiles, admission limits per cycle.
Between cycles: random finishes, cancellations, submissions, preempted jobs requeued with their original
submission (as the scheduler loop does), time steps that let jobs age, delays end and requeue backoffs expire.
Prints the number of decisions compared and exits 1 at the first scenario that differs, with the first differing
line of each side.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------------------------------------------------
# Worker: runs inside the interpreter of one version (its src/ first on sys.path)
def bench_tree(m, rng: random.Random):
    cohorts, per, npools = 10, 100, 50
    gpus = rng.randrange(8, 41)
    cores = rng.choice((64, 128, 512))
    pools = [m.Pool(f"pool{p}", tuple(m.Device(f"pool{p}-n{d // 8}-g{d % 8}", node=f"pool{p}-n{d // 8}")
                                      for d in range(gpus)), cpu=m.Quantity(cores * 1000)) for p in range(npools)]
    specs = []
    for c in range(cohorts):
        cohort_g: dict = {}
        leaves = []
        for i in range(per):
            leaf = c * per + i
            pool = f"pool{leaf % npools}"
            res = {(pool, "gpu"): m.QuotaLimits(m.Quantity(2000), m.Quantity(8000)),
                   (pool, "cpu"): m.QuotaLimits(m.Quantity(8000), m.Quantity(64000))}
            for k, v in res.items():
                cohort_g[k] = cohort_g.get(k, 0) + v.guarantee.raw
            leaves.append(m.QuotaSpec(f"q{leaf}", f"cohort{c}", resources=res, reclaim="any",
                                      within_quota_preemption="lower_priority"))
        specs.append(m.QuotaSpec(f"cohort{c}", resources={k: m.QuotaLimits(m.Quantity(v)) for k, v in cohort_g.items()}))
        specs.extend(leaves)
    shapes: dict = {}

    def job(seq: int, now: float):
        leaf = rng.randrange(cohorts * per)
        shape = rng.randrange(3)
        s = shapes.get((leaf, shape))
        if s is None:
            home = leaf % npools
            s = shapes[(leaf, shape)] = (
                f"q{leaf}", (100, 200, 300)[shape],
                {"gpu": m.Quantity((500, 1000, 2000, 4000)[(leaf + shape) % 4]),
                 "cpu": m.Quantity((1 + (leaf + 3 * shape) % 8) * 1000)},
                (f"pool{home}", f"pool{(home + 1) % npools}"))
        quota, priority, requests, order = s
        return m.QueuedJob(f"j{seq}", quota, priority, seq, now, requests, order)

    config = m.SchedulerConfig(starvation_age_s=rng.choice((5.0, 3600.0, None)),
                               preemption_delay_s=rng.choice((0.0, 4.0, 8.0)))
    return specs, pools, (), config, job, rng.randrange(500, 4000)


def small_tree(m, rng: random.Random):
    npools = rng.randrange(1, 4)
    pools = []
    for p in range(npools):
        per_node = rng.choice((2, 4, 8))
        n = rng.randrange(1, 5)
        devices = tuple(m.Device(f"p{p}-n{i // per_node}-g{i % per_node}", node=f"p{p}-n{i // per_node}")
                        for i in range(n * per_node))
        if rng.random() < 0.3:
            nodes = tuple(m.Node(f"p{p}-n{i}", m.Quantity(rng.choice((8, 16, 32)) * 1000),
                                 m.Quantity(rng.choice((64, 256)) << 30)) for i in range(n))
            pools.append(m.Pool(f"p{p}", devices, nodes=nodes))
        else:
            pools.append(m.Pool(f"p{p}", devices, cpu=m.Quantity(rng.choice((16, 64, 256)) * 1000)))
    names = [p.name for p in pools]
    gpus = {p.name: len(p.devices) for p in pools}
    specs = []
    leaves = []
    for c in range(rng.randrange(1, 4)):
        cohort_left = {p: rng.randrange(0, gpus[p] + 1) for p in names}
        children = []
        for i in range(rng.randrange(2, 5)):
            res = {}
            for p in names:
                g = rng.randrange(0, cohort_left[p] + 1) if rng.random() < 0.7 else 0
                cohort_left[p] -= g
                limit = None if rng.random() < 0.4 else rng.randrange(g, g + 8)
                lending = None if rng.random() < 0.6 else rng.randrange(0, g + 1)
                res[(p, "gpu")] = m.QuotaLimits(
                    m.Quantity(g * 1000), m.Quantity.UNLIMITED if limit is None else m.Quantity(limit * 1000),
                    None if lending is None else m.Quantity(lending * 1000))
            name = f"c{c}q{i}"
            children.append(m.QuotaSpec(
                name, f"c{c}", weight=rng.choice((0.5, 1.0, 2.0)), resources=res,
                reclaim=rng.choice(("never", "lower_priority", "any")),
                within_quota_preemption=rng.choice(("never", "lower_priority")),
                min_runtime_s=rng.choice((0.0, 0.0, 5.0, 30.0))))
            leaves.append(name)
        total = {p: gpus[p] - cohort_left[p] for p in names}
        specs.append(m.QuotaSpec(f"c{c}", resources={(p, "gpu"): m.QuotaLimits(m.Quantity(g * 1000))
                                                     for p, g in total.items()},
                                 child_preemption=rng.random() < 0.3))
        specs.extend(children)
    profiles = []
    if rng.random() < 0.3:
        profiles.append(m.Profile("prof", {"gpu": m.Quantity(1000)}, tuple(names),
                                  policy_order=tuple(rng.sample(leaves, min(2, len(leaves)))),
                                  best_fit=rng.random() < 0.5))
    if m.validate_tree(specs):
        return None

    def job(seq: int, now: float):
        quota = rng.choice(leaves + [f"c{rng.randrange(len(specs))}"] if rng.random() < 0.1 else leaves)
        if profiles and rng.random() < 0.2:
            return m.QueuedJob(f"j{seq}", quota, rng.choice((0, 100, 200)), seq, now, profile="prof")
        gpu = rng.choice((0, 100, 300, 500, 1000, 1000, 2000, 3000, 4000))
        requests = {"cpu": m.Quantity(rng.choice((1, 2, 4)) * 1000), "memory": m.Quantity(rng.choice((1, 8)) << 30)}
        if gpu:
            requests["gpu"] = m.Quantity(gpu)
        order = tuple(rng.sample(names, rng.randrange(1, len(names) + 1)))
        count = 2 if gpu >= 1000 and rng.random() < 0.05 else 1
        return m.QueuedJob(f"j{seq}", quota, rng.choice((0, 100, 200)), seq, now, requests, order, nodes=count,
                           best_fit=rng.random() < 0.3)

    config = m.SchedulerConfig(starvation_age_s=rng.choice((5.0, 60.0, None)),
                               preemption_delay_s=rng.choice((0.0, 4.0)),
                               max_admissions_per_cycle=rng.choice((None, None, 3)))
    return specs, pools, profiles, config, job, rng.randrange(5, 60)


def scenario(m, seed: int, index: int, out) -> int:
    """Replay scenario ``index``; every decision and answer goes to ``out`` (one line each). Returns the decisions."""
    rng = random.Random(seed * 1_000_003 + index)
    made = None
    while made is None:
        made = bench_tree(m, rng) if index % 3 == 0 else small_tree(m, rng)
    specs, pools, profiles, config, job, queued = made
    state = m.SchedulerState(specs, pools, profiles, config)
    seq = 0
    jobs: dict = {}
    for _ in range(queued):
        seq += 1
        j = jobs[f"j{seq}"] = job(seq, 0.0)
        state.add_job(j)
    running: list[str] = []
    requeue = rng.random() < 0.7
    now = 0.0
    decisions = 0
    victims: list[str] = []
    for _ in range(rng.randrange(10, 30)):
        now += 700.0 if rng.random() < 0.05 else rng.choice((1.0, 2.0, 5.0, 10.0))
        for _ in range(min(len(running), rng.randrange(0, max(2, len(running) // 3)))):
            i = rng.randrange(len(running))
            running[i], running[-1] = running[-1], running[i]
            state.job_finished(running.pop())
        queued_now = state.queued_ids()
        for _ in range(rng.randrange(0, 3)):
            if queued_now:
                state.remove_job(queued_now[rng.randrange(len(queued_now))])
        if requeue:
            for v in victims:
                state.add_job(jobs[v])
        victims = []
        for _ in range(rng.randrange(0, max(2, queued // 20))):
            seq += 1
            j = jobs[f"j{seq}"] = job(seq, now)
            state.add_job(j)
        out.write(f"cycle {now}\n")
        for d in state.cycle(now):
            decisions += 1
            out.write(repr(d) + "\n")
            if isinstance(d, m.Admit):
                running.append(d.job_id)
            elif isinstance(d, m.Preempt):
                victims.append(d.victim_id)
        if victims:
            gone = set(victims)
            running = [r for r in running if r not in gone]
        out.write(f"next_due {state.next_due}\n")
        ids = state.queued_ids()
        for _ in range(3):
            if ids:
                jid = ids[rng.randrange(len(ids))]
                out.write(f"explain {jid} {state.explain(jid)!r} {state.queue_group(jid)!r}\n")
    return decisions


class Digest:
    def __init__(self) -> None:
        self.h = hashlib.sha256()

    def write(self, s: str) -> None:
        self.h.update(s.encode())


def worker(seed: int, scenarios: int, dump: int | None) -> None:
    from types import SimpleNamespace

    from allotment.core.admission import SchedulerState
    from allotment.core.model import Admit, Device, Node, Pool, Preempt, Profile, QueuedJob, SchedulerConfig
    from allotment.core.quantity import Quantity
    from allotment.core.quota_tree import QuotaLimits, QuotaSpec, validate_tree

    m = SimpleNamespace(SchedulerState=SchedulerState, Admit=Admit, Device=Device, Node=Node, Pool=Pool,
                        Preempt=Preempt, Profile=Profile, QueuedJob=QueuedJob, SchedulerConfig=SchedulerConfig,
                        Quantity=Quantity, QuotaLimits=QuotaLimits, QuotaSpec=QuotaSpec, validate_tree=validate_tree)
    if dump is not None:
        scenario(m, seed, dump, sys.stdout)
        return
    try:
        from allotment import compiled_core

        core = {"core": compiled_core.STATUS, "compiled": compiled_core.ACTIVE}
    except ImportError:  # a version from before the compiled core
        core = {"core": "interpreted", "compiled": False}
    print(json.dumps(core), flush=True)
    for i in range(scenarios):
        d = Digest()
        n = scenario(m, seed, i, d)
        print(json.dumps({"scenario": i, "decisions": n, "digest": d.h.hexdigest()}), flush=True)


# ---------------------------------------------------------------------------------------------------------------------
# Driver
def export(ref: str, dest: Path, only: list[str]) -> Path:
    """REF's src/ in ``dest`` (with ``only`` taken from the working tree instead, when given)."""
    dest.mkdir(parents=True)
    archive = dest / "src.tar"
    with archive.open("wb") as f:
        subprocess.run(["git", "-C", str(ROOT), "archive", ref, "src/allotment"], stdout=f, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="data")
    for path in only:
        target = dest / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((ROOT / path).read_bytes())
    return dest / "src"


def run(src: Path, seed: int, scenarios: int, dump: int | None = None, core: str = "off") -> subprocess.Popen:
    """A worker on ``src``; ``core``: its ALLOTMENT_CORE_EXT (off: the sources; a build's folder: that build)."""
    env = {**os.environ, "PYTHONPATH": str(src), "PYTHONHASHSEED": "0", "ALLOTMENT_CORE_EXT": core}
    args = [sys.executable, __file__, "--worker", "--seed", str(seed), "--scenarios", str(scenarios)]
    if dump is not None:
        args += ["--dump", str(dump)]
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, text=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ref", default="HEAD", help="the version to compare against (a git revision)")
    parser.add_argument("--only", nargs="*", default=None,
                        help="new side = REF plus only these files from the working tree (paths from the repository)")
    parser.add_argument("--new-src", type=Path, default=None,
                        help="new side = this folder (a package tree like src/) instead of the working tree")
    parser.add_argument("--compiled", nargs="?", const=str(ROOT / "build" / "core-ext"), default=None,
                        help="compare the working tree's sources with its compiled core (this build folder)")
    parser.add_argument("--scenarios", type=int, default=60)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--dump", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.seed, args.scenarios, args.dump)
        return
    new_core = "off" if args.compiled is None else str(Path(args.compiled).resolve())
    with tempfile.TemporaryDirectory() as tmp:
        if args.compiled is not None:
            old_src = new_src = ROOT / "src"
        else:
            old_src = export(args.ref, Path(tmp) / "old", [])
            new_src = export(args.ref, Path(tmp) / "new", args.only) if args.only is not None else ROOT / "src"
            if args.new_src is not None:
                new_src = args.new_src.resolve()
        old = run(old_src, args.seed, args.scenarios)
        new = run(new_src, args.seed, args.scenarios, core=new_core)
        total = 0
        cores = [json.loads(p.stdout.readline()) for p in (old, new)]  # type: ignore[union-attr]
        if args.compiled is not None and not cores[1]["compiled"]:
            old.kill()
            new.kill()
            print(f"the compiled side does not run the build: {cores[1]['core']}")
            sys.exit(3)
        for line_old, line_new in zip(old.stdout, new.stdout, strict=False):  # type: ignore[arg-type]
            a, b = json.loads(line_old), json.loads(line_new)
            if a != b:
                old.kill()
                new.kill()
                i = a["scenario"]
                dumps = [run(s, args.seed, args.scenarios, dump=i, core=c).communicate()[0].splitlines()
                         for s, c in ((old_src, "off"), (new_src, new_core))]
                for n, (x, y) in enumerate(zip(*dumps, strict=False)):
                    if x != y:
                        print(f"scenario {i} differs at line {n}:\n  {args.ref}: {x}\n  new: {y}")
                        break
                else:
                    print(f"scenario {i} differs in length: {len(dumps[0])} against {len(dumps[1])} lines")
                sys.exit(1)
            total += a["decisions"]
        if old.wait() or new.wait():
            print("a worker failed")
            sys.exit(2)
    if args.compiled is not None:
        old_name, new = "the sources", cores[1]["core"]
    else:
        old_name, new = args.ref, args.new_src or ("the working tree" if args.only is None else ", ".join(args.only))
    print(f"identical: {args.scenarios} scenarios, {total} decisions (with next_due and explain answers after "
          f"each cycle), {old_name} against {new}")


if __name__ == "__main__":
    main()
