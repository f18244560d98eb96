"""Benchmark of the pure scheduler core (allotment.core.admission): no database, no HTTP, plain Python.

Run:  python benchmarks/core_bench.py            (10k, 100k and 1M queued jobs; prints one JSON object)
      python benchmarks/core_bench.py --quick    (10k and 100k only)
      python benchmarks/core_bench.py --repeat 5 (each scenario five times; the median run is reported)
      python benchmarks/core_bench.py --placement (only the node placement scenario below)
      python benchmarks/core_bench.py --quick --scenario churn --repeat 5 (one scenario only)

Cluster: 10 cohorts x 100 quotas (1,000 leaf quotas + 10 cohort quotas), 50 pools of GPUs (nodes of 8) with cpu.
Every leaf quota guarantees 2 GPUs and 8 cores in its home pool (limit 8 GPUs, 64 cores), borrows elsewhere,
reclaims from borrowers ("any") and preempts lower priority within itself (Kueue's benchmark settings). Jobs: 0.5, 1,
2 or 4 GPUs with 1-8 cores, priorities 100/200/300, trying their home pool then the next one; 3 shapes per quota.

Two scenarios, each at every queue size:
- fill:  an empty cluster of 50 x 400 GPUs and the whole queue; one cycle admits what fits and answers the rest.
- churn: a busy cluster of 50 x 40 GPUs in steady state; each round finishes ``--finish`` random running jobs, runs
         one cycle (admissions, reclaim and within-quota preemptions, waits), then submits as many new jobs as
         were admitted so that the queue keeps its size.
- placement: pools that list their nodes: 100,000 GPUs on 20,000 nodes (10,000 of 8 GPUs, 96 cores, 384 GiB and
         10,000 of 2 GPUs, 104 cores, 512 GiB), one pool or four pools that jobs choose among by best fit. A mix
         like Alibaba's GPU trace (CPU-only jobs, shares in steps of 0.01, one whole GPU, 2 to 8 GPUs, some
         2-node gangs) fills the cluster in cycles of 1,000 submissions, then churns (500 finish, 500 arrive);
         then nodes are drained and added back one at a time (update_node / remove_node), and one node's CPU
         changes once through update_pool (the whole pool compared) and once node by node (changed_nodes, then
         update_node for what differs, as the loop applies it). Reported: CPU per placement (Admit) and per
         decision, and per node update.
A "decision" is every value a cycle returns (Admit, Preempt, Wait); admissions are also reported on their own. Times
cover cycle() calls only (submission and finish costs are reported separately), run as the scheduler loop runs them:
with the cyclic garbage collector paused (scheduler/gcpause.py; --collector on measures without that). Wall-clock and process CPU time are
both reported, with a calibration loop, because shared machines are noisy: see benchmarks/README.md (scheduler core).
The core runs as any process of this install runs it: compiled when `make install` built it and the build matches the
sources, else interpreted (ALLOTMENT_CORE_EXT=off forces the sources); "scheduler_core" in the output says which.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from allotment import compiled_core
from allotment.core.admission import SchedulerState
from allotment.core.inventory import changed_nodes
from allotment.core.model import Admit, Device, Node, Pool, Preempt, QueuedJob, SchedulerConfig, Wait
from allotment.core.quantity import Quantity
from allotment.core.quota_tree import QuotaLimits, QuotaSpec
from allotment.scheduler.gcpause import gc_paused

COHORTS, PER_COHORT, POOLS = 10, 100, 50
GPU_SIZES = (500, 1000, 2000, 4000)
PRIORITIES = (100, 200, 300)


def pools(gpus_per_pool: int, cores_per_pool: int) -> list[Pool]:
    return [
        Pool(f"pool{p}", tuple(Device(f"pool{p}-n{d // 8}-g{d % 8}", node=f"pool{p}-n{d // 8}")
                               for d in range(gpus_per_pool)), cpu=Quantity(cores_per_pool * 1000))
        for p in range(POOLS)
    ]


def quotas() -> list[QuotaSpec]:
    specs = []
    for c in range(COHORTS):
        cohort_g: dict[tuple[str, str], int] = {}
        leaves = []
        for i in range(PER_COHORT):
            leaf = c * PER_COHORT + i
            pool = f"pool{leaf % POOLS}"
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
    """Deterministic job stream: each quota has three job shapes, like real teams do."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.seq = 0
        self._shapes: dict[tuple[int, int], tuple] = {}

    def next(self, now: float) -> QueuedJob:
        self.seq += 1
        leaf = self.rng.randrange(COHORTS * PER_COHORT)
        shape = self.rng.randrange(3)
        cached = self._shapes.get((leaf, shape))
        if cached is None:
            home = leaf % POOLS
            gpu = GPU_SIZES[(leaf + shape) % len(GPU_SIZES)]
            cores = 1 + (leaf + 3 * shape) % 8
            cached = self._shapes[(leaf, shape)] = (
                f"q{leaf}", PRIORITIES[shape], {"gpu": Quantity(gpu), "cpu": Quantity(cores * 1000)},
                (f"pool{home}", f"pool{(home + 1) % POOLS}"),
            )
        quota, priority, requests, pool_order = cached
        return QueuedJob(f"j{self.seq}", quota, priority, self.seq, now, requests, pool_order)


def calibrate() -> float:
    """Nanoseconds of CPU per iteration of a trivial Python loop, to compare runs on machines of different load."""
    best = float("inf")
    for _ in range(3):
        c = time.process_time()
        x = 0
        for i in range(1_000_000):
            x += i
        best = min(best, (time.process_time() - c) * 1e3)
    return round(best, 1)


def build(queued: int, gpus_per_pool: int, cores_per_pool: int, seed: int) -> tuple[SchedulerState, Jobs, float]:
    gc.collect()
    state = SchedulerState(quotas(), pools(gpus_per_pool, cores_per_pool),
                           config=SchedulerConfig(starvation_age_s=3600.0))
    jobs = Jobs(seed)
    t = time.perf_counter()
    for _ in range(queued):
        state.add_job(jobs.next(0.0))
    submit_us = (time.perf_counter() - t) / queued * 1e6
    gc.freeze()  # the long-lived state leaves the collector's working set, as a long-running loop would do
    return state, jobs, submit_us


COLLECTOR = {"paused": True}  # set from --collector


def timed_cycle(state: SchedulerState, now: float) -> tuple[list, float, float]:
    """One cycle as the scheduler loop runs it: with the cyclic collector paused (scheduler/gcpause.py), unless
    --collector on."""
    if COLLECTOR["paused"]:
        with gc_paused():
            t, c = time.perf_counter(), time.process_time()
            out = state.cycle(now)
            return out, time.perf_counter() - t, time.process_time() - c
    t, c = time.perf_counter(), time.process_time()
    out = state.cycle(now)
    return out, time.perf_counter() - t, time.process_time() - c


def summary(kind: str, queued: int, decisions: list, wall: float, cpu: float) -> dict:
    n = len(decisions)
    admits = sum(1 for d in decisions if isinstance(d, Admit))
    return {
        "scenario": kind,
        "queued": queued,
        "decisions": n,
        "admissions": admits,
        "preemptions": sum(1 for d in decisions if isinstance(d, Preempt)),
        "waits": sum(1 for d in decisions if isinstance(d, Wait)),
        "cycle_wall_s": round(wall, 4),
        "cycle_cpu_s": round(cpu, 4),
        "decisions_per_s": round(n / wall),
        "decisions_per_cpu_s": round(n / cpu),
        "admissions_per_cpu_s": round(admits / cpu),
        "us_per_decision": round(wall / n * 1e6, 2),
        "cpu_us_per_decision": round(cpu / n * 1e6, 2),
    }


def fill(queued: int, seed: int) -> dict:
    state, _, submit_us = build(queued, 400, 4096, seed)
    out, wall, cpu = timed_cycle(state, 0.0)
    gc.unfreeze()
    return {**summary("fill", queued, out, wall, cpu), "submit_us_per_job": round(submit_us, 2)}


def churn(queued: int, rounds: int, finish: int, seed: int) -> dict:
    state, jobs, submit_us = build(queued, 40, 512, seed)
    rng = random.Random(seed + 1)
    running = [d.job_id for d in state.cycle(0.0) if isinstance(d, Admit)]  # warm-up: fill the empty cluster
    for _ in running:
        state.add_job(jobs.next(0.0))
    all_out: list = []
    wall = cpu = finish_s = 0.0
    now = 0.0
    for _ in range(rounds):
        now += 10.0
        t = time.perf_counter()
        for _ in range(min(finish, len(running))):
            i = rng.randrange(len(running))
            running[i], running[-1] = running[-1], running[i]
            state.job_finished(running.pop())
        finish_s += time.perf_counter() - t
        out, w, c = timed_cycle(state, now)
        wall += w
        cpu += c
        all_out.extend(out)
        victims = {d.victim_id for d in out if isinstance(d, Preempt)}
        if victims:
            running = [r for r in running if r not in victims]
        for d in out:
            if isinstance(d, Admit):
                running.append(d.job_id)
                state.add_job(jobs.next(now))
    gc.unfreeze()
    return {
        **summary("churn", queued, all_out, wall, cpu),
        "rounds": rounds,
        "finish_us_per_job": round(finish_s / max(rounds * finish, 1) * 1e6, 2),
        "submit_us_per_job": round(submit_us, 2),
    }


NODE_SHAPES = ((8, 96_000, 384 << 30), (2, 104_000, 512 << 30))  # GPUs, milli-cores, bytes (trace's G2 and T4)


def node_pools(n_pools: int, nodes: int) -> list[Pool]:
    out = []
    for p in range(n_pools):
        node_list, devices = [], []
        for i in range(nodes // n_pools):
            gpus, cores, memory = NODE_SHAPES[i % 2]
            name = f"p{p}-n{i}"
            node_list.append(Node(name, Quantity(cores), Quantity(memory)))
            devices.extend(Device(f"{name}-g{g}", node=name) for g in range(gpus))
        out.append(Pool(f"p{p}", tuple(devices), nodes=tuple(node_list)))
    return out


def trace_like_job(rng: random.Random, seq: int, pool_names: tuple[str, ...], now: float) -> QueuedJob:
    """Shapes in the proportions of Alibaba's GPU trace: 13 % CPU-only, 25 % shares, 60 % one GPU, 2 % 2-8 GPUs;
    a few 2-node gangs."""
    r = rng.random()
    cores = rng.choice((2, 4, 6, 8, 12, 16)) * 1000
    memory = rng.choice((8, 16, 24, 32, 64)) << 30
    nodes = 1
    if r < 0.13:
        gpu = 0
    elif r < 0.38:
        gpu = rng.randrange(5, 100) * 10
    elif r < 0.98:
        gpu = 1000
    else:
        gpu = rng.choice((2000, 4000, 8000))
        nodes = 2 if rng.random() < 0.2 else 1
        if nodes == 2:
            gpu //= 2
    requests = {"cpu": Quantity(cores), "memory": Quantity(memory)}
    if gpu:
        requests["gpu"] = Quantity(gpu)
    return QueuedJob(f"j{seq}", "q", 0, seq, now, requests, pool_names, nodes=nodes, best_fit=len(pool_names) > 1)


def placement(n_pools: int, seed: int, devices: int = 100_000, nodes: int = 20_000) -> dict:
    gc.collect()
    pool_list = node_pools(n_pools, nodes)
    t = time.process_time()
    state = SchedulerState([QuotaSpec("q")], pool_list, config=SchedulerConfig(starvation_age_s=None))
    build_s = time.process_time() - t
    names = tuple(p.name for p in pool_list)
    assert sum(len(p.devices) for p in pool_list) == devices
    rng = random.Random(seed)
    seq = 0
    gc.freeze()
    running: list[str] = []
    fill_out: list = []
    fill_cpu = 0.0
    now = 0.0
    while True:  # fill: submit 1,000, run a cycle, until a cycle admits (almost) nothing
        now += 1.0
        for _ in range(1000):
            seq += 1
            state.add_job(trace_like_job(rng, seq, names, now))
        out, _, c = timed_cycle(state, now)
        fill_cpu += c
        fill_out.extend(out)
        admitted = [d.job_id for d in out if isinstance(d, Admit)]
        running.extend(admitted)
        if len(admitted) < 50:
            break
    for jid in state.queued_ids():  # the rest is dropped, as the trace replay does
        state.remove_job(jid)
    churn_out: list = []
    churn_cpu = 0.0
    for _ in range(20):
        now += 1.0
        for _ in range(500):
            i = rng.randrange(len(running))
            running[i], running[-1] = running[-1], running[i]
            state.job_finished(running.pop())
        for _ in range(500):
            seq += 1
            state.add_job(trace_like_job(rng, seq, names, now))
        out, _, c = timed_cycle(state, now)
        churn_cpu += c
        churn_out.extend(out)
        running.extend(d.job_id for d in out if isinstance(d, Admit))
    gpu_used = sum(state._tree.u[0][state._pool_keys[p]["gpu"]] for p in names)
    # node updates: drain and add back 1,000 random nodes, one call each
    pool0 = pool_list[0]
    picks = [pool0.nodes[rng.randrange(len(pool0.nodes))] for _ in range(1000)]
    devs_of: dict[str, list[Device]] = {}
    for d in pool0.devices:
        devs_of.setdefault(d.node, []).append(d)
    t = time.process_time()
    for node in picks:
        state.remove_node(pool0.name, node.name)
    remove_us = (time.process_time() - t) / len(picks) * 1e6
    t = time.process_time()
    for node in picks:
        state.update_node(pool0.name, node, devs_of[node.name])
    update_us = (time.process_time() - t) / len(picks) * 1e6
    # one node's CPU halves: the whole pool through update_pool, or only that node (what the loop does: it diffs
    # two loads of the inventory with changed_nodes and calls update_node), each from the same state. The pools
    # carry the free amounts the state has, as the loop passes them.
    free = state.device_free(pool0.name)
    current = Pool(pool0.name, tuple(Device(d.id, free[d.id], d.capacity, d.node) for d in pool0.devices),
                   nodes=tuple(pool0.nodes))
    changed = list(pool0.nodes)
    changed[0] = Node(changed[0].name, Quantity(changed[0].cpu.raw // 2), changed[0].memory)
    new = Pool(pool0.name, current.devices, nodes=tuple(changed))
    t = time.process_time()
    diff = changed_nodes(current, new)
    diff_ms = (time.process_time() - t) * 1e3
    assert diff is not None and len(diff[0]) == 1 and not diff[1]
    t = time.process_time()
    for node, devs in diff[0]:
        state.update_node(pool0.name, node, devs)
    one_node_us = (time.process_time() - t) * 1e6
    state.update_node(pool0.name, pool0.nodes[0], devs)  # back as it was
    t = time.process_time()
    state.update_pool(new)
    update_pool_ms = (time.process_time() - t) * 1e3
    gc.unfreeze()

    def part(out: list, cpu: float) -> dict:
        admits = sum(1 for d in out if isinstance(d, Admit))
        return {"decisions": len(out), "admissions": admits, "cycle_cpu_s": round(cpu, 3),
                "cpu_us_per_admission": round(cpu / max(admits, 1) * 1e6, 1),
                "cpu_us_per_decision": round(cpu / max(len(out), 1) * 1e6, 1)}

    return {
        "scenario": f"placement, {n_pools} pool(s)" + (" (best fit across them)" if n_pools > 1 else ""),
        "devices": devices, "nodes": nodes, "build_cpu_s": round(build_s, 2),
        "fill": part(fill_out, fill_cpu), "churn": part(churn_out, churn_cpu),
        "gpu_allocated_after_churn": round(gpu_used / (devices * 1000), 4),
        "remove_node_cpu_us": round(remove_us, 1), "update_node_cpu_us": round(update_us, 1),
        "update_pool_one_node_changed_cpu_ms": round(update_pool_ms, 1),
        "changed_nodes_diff_cpu_ms": round(diff_ms, 1), "one_changed_node_applied_cpu_us": round(one_node_us, 1),
        "targets": {"cpu_us_per_admission": 50, "update_node_cpu_us": 1000, "one_changed_node_applied_cpu_us": 1000},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="skip the 1,000,000-job runs")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--finish", type=int, default=500, help="running jobs finished before each churn cycle")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=1,
                        help="run each scenario N times and report the run with the median cycle CPU time (the "
                             "machine is shared and noisy: a single run varies by 10 to 20 %%)")
    parser.add_argument("--collector", choices=("paused", "on"), default="paused",
                        help="the cyclic garbage collector during cycles: paused as the scheduler loop does, or on")
    parser.add_argument("--placement", action="store_true", help="run only the node placement scenario")
    parser.add_argument("--scenario", choices=("fill", "churn"), default=None,
                        help="run only this scenario (at every queue size; the cost ratio is left out)")
    args = parser.parse_args()
    COLLECTOR["paused"] = args.collector == "paused"
    if args.placement:
        print(json.dumps({"python": platform.python_version(), "calibration_ns_per_loop_iteration": calibrate(),
                          "runs": [placement(1, args.seed), placement(4, args.seed)]}, indent=2))
        return
    sizes = [10_000, 100_000] + ([] if args.quick else [1_000_000])
    calibration_before = calibrate()
    runs = []
    def median_of(make) -> dict:
        done = sorted((make() for _ in range(max(args.repeat, 1))), key=lambda r: r["cycle_cpu_s"])
        run = done[len(done) // 2]
        if len(done) > 1:
            run["repeats_cycle_cpu_s"] = [r["cycle_cpu_s"] for r in done]
        return run

    for n in sizes:
        if args.scenario != "churn":
            runs.append(median_of(lambda n=n: fill(n, args.seed)))
        if args.scenario != "fill":
            runs.append(median_of(lambda n=n: churn(n, args.rounds, args.finish, args.seed)))
    calibration_after = calibrate()
    if args.scenario is not None:
        print(json.dumps({"python": platform.python_version(), "machine": platform.machine(),
                          "scheduler_core": compiled_core.STATUS,
                          "calibration_ns_per_loop_iteration": [calibration_before, calibration_after],
                          "collector": args.collector, "runs": runs}, indent=2))
        return
    by = {(r["scenario"], r["queued"]): r for r in runs}
    small, large = sizes[0], sizes[-1]

    def ratio(kind: str, field: str) -> float:
        return round(by[(kind, large)][field] / by[(kind, small)][field], 3)

    report = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "scheduler_core": compiled_core.STATUS,
        "calibration_ns_per_loop_iteration": [calibration_before, calibration_after],
        "collector": args.collector,
        "runs": runs,
        "at_100k": {
            kind: {k: by[(kind, 100_000)][k] for k in ("decisions_per_s", "decisions_per_cpu_s", "admissions_per_cpu_s")}
            for kind in ("fill", "churn")
        },
        "cost_ratio_sizes": [small, large],
        "cost_ratio_cpu": {kind: ratio(kind, "cpu_us_per_decision") for kind in ("fill", "churn")},
        "cost_ratio_wall": {kind: ratio(kind, "us_per_decision") for kind in ("fill", "churn")},
        "targets": {"decisions_per_s_at_100k": 50_000, "cost_ratio_max": 1.5},
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
