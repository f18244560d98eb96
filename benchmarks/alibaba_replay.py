"""Replay of Alibaba's production GPU trace through the scheduler core (allotment.core), as the placement issue asks.

The trace: cluster-trace-gpu-v2023 of https://github.com/alibaba/clusterdata, published with "Beware of
Fragmentation: Scheduling GPU-Sharing Workloads with Fragmentation Gradient Descent" (USENIX ATC '23): 1,213 GPU
nodes with 6,212 GPUs of 7 models (openb_node_list_gpu_node.csv: cpu_milli, memory_mib, gpu, model) and 8,152 pods
(openb_pod_list_default.csv: cpu_milli, memory_mib, num_gpu, gpu_milli, gpu_spec, creation and deletion times).
The gpuspec variants give about a third of the GPU pods a set of acceptable GPU models (gpuspec33: 33 %, the
production share, Sec. 6.5 of the paper).

Get it and run:
    git clone https://github.com/alibaba/clusterdata
    python benchmarks/alibaba_replay.py --trace-dir clusterdata/cluster-trace-gpu-v2023/csv
A bare clone works too: --trace-dir clusterdata.git --git-path cluster-trace-gpu-v2023/csv reads the files from its
HEAD. --seeds 42-51 (default), --quick (seed 42 only), --json (one JSON object instead of the table).

Mapping onto allotment: one pool per GPU model, listing its nodes with their CPU and memory (core.model.Node) and
their GPUs; one quota without limits. A pod asks for num_gpu whole GPUs, or gpu_milli of one GPU when it shares
one, plus its CPU and memory, all on one node. A pod with a gpu_spec may use the pools of those models, as an
unordered set (best fit across them); a pod without one, and a CPU-only pod, may use every pool (best fit across all).

Reported:
1. As submitted: the pods in creation order, each leaving at its deletion time; a pod that does not fit when it
   arrives is dropped (a replay, not a queue). Pods refused for their granularity (a share the core cannot
   represent) must be 0, and so must placements exceeding any node's CPU, memory or GPUs: every admission is
   checked against an account of each node kept here, outside core, from the decisions alone.
2. Inflation (the paper's experiment and its simulator's method, hkust-adsl/kubernetes-scheduler-simulator with
   -tune 1.3 --shuffle-pod=true): the trace's pods plus random draws from them until the next draw would take the
   requested GPUs past 130 % of the cluster's, all shuffled by the seed; submitted one by one, no departures, a pod
   that does not fit dropped. Reported: the share of GPU capacity allocated once every pod has arrived, mean over
   seeds 42..51, beside the paper's figures (default trace: FGD 95.39 %, BestFit 93.08 %, Random 87.47 %;
   GPU-model-constrained: FGD 94.55 %).
3. Cost: CPU time of the core per submitted pod (add_job + cycle, one decision each), admitted or not.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import random
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from allotment.core.admission import SchedulerState
from allotment.core.model import Admit, Device, Node, Pool, QueuedJob, SchedulerConfig, Wait, WaitCode
from allotment.core.quantity import Quantity
from allotment.core.quota_tree import QuotaSpec
from allotment.scheduler.gcpause import gc_paused

MIB = 1 << 20
WHOLE = 1000
NODES_FILE = "openb_node_list_gpu_node.csv"
VARIANTS = {"default": "openb_pod_list_default.csv", "gpu-model-constrained": "openb_pod_list_gpuspec33.csv"}
PAPER = {"default": {"FGD": 95.39, "BestFit": 93.08, "Random": 87.47}, "gpu-model-constrained": {"FGD": 94.55}}
TUNE_RATIO = 1.3


# -- reading the trace --------------------------------------------------------------------------------------------


class Trace:
    """The trace's CSV files from a directory, or from HEAD of a git directory (`git_path` inside it)."""

    def __init__(self, directory: Path, git_path: str | None = None):
        self.directory, self.git_path = directory, git_path

    def rows(self, name: str) -> list[dict[str, str]]:
        if self.git_path is None:
            text = (self.directory / name).read_text()
        else:
            text = subprocess.run(["git", "--git-dir", str(self.directory), "show", f"HEAD:{self.git_path}/{name}"],
                                  capture_output=True, text=True, check=True).stdout
        return list(csv.DictReader(io.StringIO(text)))


@dataclass(frozen=True)
class TraceNode:
    name: str
    cpu: int  # milli-cores
    memory: int  # bytes
    gpus: int
    model: str


@dataclass(frozen=True)
class Pod:
    name: str
    cpu: int
    memory: int
    gpu: int  # milli-GPU: num_gpu x 1000, or gpu_milli of one shared GPU
    models: tuple[str, ...]  # acceptable GPU models; () = any
    created: int
    deleted: int


def read_nodes(trace: Trace) -> list[TraceNode]:
    return [TraceNode(r["sn"], int(r["cpu_milli"]), int(r["memory_mib"]) * MIB, int(r["gpu"]), r["model"])
            for r in trace.rows(NODES_FILE) if int(r["gpu"]) > 0]


def read_pods(trace: Trace, file: str) -> list[Pod]:
    pods = []
    for r in trace.rows(file):
        count, milli = int(r["num_gpu"]), int(r["gpu_milli"] or 0)
        gpu = milli if count == 1 and 0 < milli < WHOLE else count * WHOLE
        models = tuple(dict.fromkeys(m.strip() for m in (r["gpu_spec"] or "").split("|") if m.strip()))
        pods.append(Pod(r["name"], int(r["cpu_milli"]), int(r["memory_mib"]) * MIB, gpu, models,
                        int(r["creation_time"] or 0), int(r["deletion_time"] or 0)))
    return pods


# -- the cluster in core, and an account of each node kept outside it ----------------------------------------------


class Cluster:
    def __init__(self, nodes: list[TraceNode]):
        self.nodes = {n.name: n for n in nodes}
        self.models = sorted({n.model for n in nodes})
        self.gpu_capacity = sum(n.gpus for n in nodes) * WHOLE
        self.device_node = {f"{n.name}/{i}": n.name for n in nodes for i in range(n.gpus)}

    def pools(self) -> list[Pool]:
        out = []
        for model in self.models:
            members = [n for n in self.nodes.values() if n.model == model]
            devices = tuple(Device(f"{n.name}/{i}", node=n.name) for n in members for i in range(n.gpus))
            out.append(Pool(model, devices, nodes=tuple(Node(n.name, Quantity(n.cpu), Quantity(n.memory))
                                                        for n in members)))
        return out

    def state(self) -> SchedulerState:
        return SchedulerState([QuotaSpec("trace")], self.pools(), config=SchedulerConfig(starvation_age_s=None))

    def job(self, pod: Pod, seq: int) -> QueuedJob:
        requests = {"cpu": Quantity(pod.cpu), "memory": Quantity(pod.memory)}
        if pod.gpu:
            requests["gpu"] = Quantity(pod.gpu)
        pools = tuple(m for m in self.models if not pod.models or m in pod.models) or tuple(pod.models)
        return QueuedJob(f"{pod.name}#{seq}", "trace", 0, seq, 0.0, requests, pools, best_fit=len(pools) > 1)


class NodeAccount:
    """Each node's CPU, memory and per-GPU shares as the decisions place them; counts any placement past a node's
    capacity (core must never make one)."""

    def __init__(self, cluster: Cluster):
        self.cluster = cluster
        self.cpu = dict.fromkeys(cluster.nodes, 0)
        self.memory = dict.fromkeys(cluster.nodes, 0)
        self.device = dict.fromkeys(cluster.device_node, 0)
        self.held: dict[str, tuple[str, int, int, tuple]] = {}
        self.overloads: list[str] = []
        self.split = 0  # GPU jobs whose devices span several nodes

    def admit(self, d: Admit, pod: Pod) -> None:
        gpu_nodes = {self.cluster.device_node[dev] for dev, _ in d.devices}
        if len(gpu_nodes) > 1:
            self.split += 1
        node = d.nodes[0] if d.nodes else next(iter(gpu_nodes), None)
        if node is None or (gpu_nodes and gpu_nodes != {node}):
            self.overloads.append(f"{d.job_id}: placed on {sorted(gpu_nodes)} / {d.nodes}")
            return
        self.cpu[node] += pod.cpu
        self.memory[node] += pod.memory
        for dev, amount in d.devices:
            self.device[dev] += amount.raw
            if self.device[dev] > WHOLE:
                self.overloads.append(f"{d.job_id}: GPU {dev} holds {self.device[dev]} milli-GPU")
        spec = self.cluster.nodes[node]
        if self.cpu[node] > spec.cpu or self.memory[node] > spec.memory:
            self.overloads.append(f"{d.job_id}: node {node} at {self.cpu[node]}/{spec.cpu} milli-cores, "
                                  f"{self.memory[node] >> 20}/{spec.memory >> 20} MiB")
        self.held[d.job_id] = (node, pod.cpu, pod.memory, tuple((dev, a.raw) for dev, a in d.devices))

    def release(self, job_id: str) -> None:
        node, cpu, memory, devices = self.held.pop(job_id)
        self.cpu[node] -= cpu
        self.memory[node] -= memory
        for dev, amount in devices:
            self.device[dev] -= amount

    def gpu_allocated(self) -> int:
        return sum(self.device.values())


def submit(state: SchedulerState, job: QueuedJob) -> tuple[Admit | Wait | None, float]:
    """One pod: add it, run one cycle; a pod that was not admitted is dropped. (decision, CPU seconds)."""
    t = time.process_time()
    state.add_job(job)
    decisions = state.cycle(0.0)
    spent = time.process_time() - t
    decision = next((d for d in decisions if isinstance(d, Admit | Wait) and d.job_id == job.id), None)
    if not isinstance(decision, Admit):
        state.remove_job(job.id)
    return decision, spent


# -- the experiments ---------------------------------------------------------------------------------------------


def as_submitted(cluster: Cluster, pods: list[Pod]) -> dict:
    """Creation order with departures at deletion time; a pod that does not fit on arrival is dropped."""
    state, account = cluster.state(), NodeAccount(cluster)
    events = sorted([(p.created, 1, i) for i, p in enumerate(pods)] + [(p.deleted, 0, i) for i, p in enumerate(pods)
                                                                        if p.deleted > p.created])
    running: dict[int, str] = {}
    refused: dict[str, int] = {}
    granularity: list[str] = []
    cpu_s, placements = 0.0, 0
    with gc_paused():
        for _, arrival, i in events:
            pod = pods[i]
            if not arrival:
                job_id = running.pop(i, None)
                if job_id is not None:
                    state.job_finished(job_id)
                    account.release(job_id)
                continue
            decision, spent = submit(state, cluster.job(pod, i + 1))
            cpu_s += spent
            placements += 1
            if isinstance(decision, Admit):
                running[i] = decision.job_id
                account.admit(decision, pod)
            else:
                code = decision.code if decision is not None else "no decision"
                refused[code] = refused.get(code, 0) + 1
                if code == WaitCode.INVALID_REQUEST:
                    granularity.append(f"{pod.name}: {decision.message}")
    return {"pods": len(pods), "admitted": len(pods) - sum(refused.values()), "not_fitting_on_arrival": refused,
            "refused_for_granularity": len(granularity), "granularity_examples": granularity[:3],
            "placements_exceeding_a_node": len(account.overloads), "overload_examples": account.overloads[:3],
            "gpu_jobs_split_over_nodes": account.split,
            "cpu_us_per_pod": round(cpu_s / max(placements, 1) * 1e6, 1)}


def inflated(pods: list[Pod], capacity: int, seed: int) -> list[Pod]:
    """The trace's pods plus random draws from them while the requested GPUs stay within 130 % of capacity, then
    all of them shuffled (the simulator's tuneUpPods and --shuffle-pod)."""
    rng = random.Random(seed)
    out = list(pods)
    total = sum(p.gpu for p in out)
    while True:
        pod = pods[rng.randrange(len(pods))]
        if total + pod.gpu > TUNE_RATIO * capacity:
            break
        out.append(pod)
        total += pod.gpu
    out.sort(key=lambda p: p.name)
    rng.shuffle(out)
    return out


def inflation(cluster: Cluster, pods: list[Pod], seed: int) -> dict:
    state, account = cluster.state(), NodeAccount(cluster)
    arrived = admitted = 0
    cpu_s = 0.0
    workload = inflated(pods, cluster.gpu_capacity, seed)
    with gc_paused():
        for seq, pod in enumerate(workload, 1):
            decision, spent = submit(state, cluster.job(pod, seq))
            cpu_s += spent
            arrived += pod.gpu
            if isinstance(decision, Admit):
                admitted += 1
                account.admit(decision, pod)
    return {"seed": seed, "pods": len(workload), "admitted": admitted,
            "arrived_gpu_pct": round(100 * arrived / cluster.gpu_capacity, 2),
            "allocated_gpu_pct": round(100 * account.gpu_allocated() / cluster.gpu_capacity, 2),
            "placements_exceeding_a_node": len(account.overloads), "gpu_jobs_split_over_nodes": account.split,
            "cpu_us_per_pod": round(cpu_s / len(workload) * 1e6, 1)}


def run(trace: Trace, seeds: list[int]) -> dict:
    nodes = read_nodes(trace)
    cluster = Cluster(nodes)
    out: dict = {"nodes": len(nodes), "gpus": cluster.gpu_capacity // WHOLE, "gpu_models": cluster.models,
                 "variants": {}}
    for variant, file in VARIANTS.items():
        pods = read_pods(trace, file)
        runs = [inflation(cluster, pods, seed) for seed in seeds]
        allocated = [r["allocated_gpu_pct"] for r in runs]
        out["variants"][variant] = {
            "file": file, "pods": len(pods), "constrained_pods": sum(1 for p in pods if p.models),
            "as_submitted": as_submitted(cluster, pods),
            "inflation": {"seeds": seeds, "allocated_gpu_pct_mean": round(statistics.mean(allocated), 2),
                          "allocated_gpu_pct_min": min(allocated), "allocated_gpu_pct_max": max(allocated),
                          "placements_exceeding_a_node": sum(r["placements_exceeding_a_node"] for r in runs),
                          "cpu_us_per_pod_mean": round(statistics.mean(r["cpu_us_per_pod"] for r in runs), 1),
                          "paper": PAPER[variant], "runs": runs}}
    return out


def table(result: dict) -> str:
    lines = [f"cluster: {result['nodes']} nodes, {result['gpus']} GPUs, models {', '.join(result['gpu_models'])}"]
    for variant, v in result["variants"].items():
        s, f = v["as_submitted"], v["inflation"]
        paper = ", ".join(f"{k} {x:.2f} %" for k, x in f["paper"].items())
        lines += [
            f"\n{variant} ({v['file']}: {v['pods']} pods, {v['constrained_pods']} with a GPU-model constraint)",
            (f"  as submitted: {s['admitted']} admitted, refused for granularity {s['refused_for_granularity']}, "
            f"placements exceeding a node {s['placements_exceeding_a_node']}, GPU jobs split over nodes "
            f"{s['gpu_jobs_split_over_nodes']}, not fitting on arrival {s['not_fitting_on_arrival']}, "
            f"{s['cpu_us_per_pod']} us CPU per pod"),
            (f"  inflation to {TUNE_RATIO:.0%} (seeds {f['seeds'][0]}..{f['seeds'][-1]}): allocated GPU "
            f"{f['allocated_gpu_pct_mean']:.2f} % mean ({f['allocated_gpu_pct_min']:.2f} .. "
            f"{f['allocated_gpu_pct_max']:.2f}), placements exceeding a node {f['placements_exceeding_a_node']}, "
            f"{f['cpu_us_per_pod_mean']} us CPU per pod; paper: {paper}"),
        ]
    return "\n".join(lines)


def seed_list(text: str) -> list[int]:
    if "-" in text:
        low, high = (int(x) for x in text.split("-", 1))
        return list(range(low, high + 1))
    return [int(x) for x in text.split(",")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trace-dir", type=Path, required=True,
                        help="clusterdata/cluster-trace-gpu-v2023/csv of a clone of github.com/alibaba/clusterdata "
                             "(with --git-path: a git directory)")
    parser.add_argument("--git-path", help="read the CSV files at HEAD:GIT_PATH of the git directory --trace-dir")
    parser.add_argument("--seeds", type=seed_list, default=list(range(42, 52)), help="42-51 (default) or 42,43")
    parser.add_argument("--quick", action="store_true", help="seed 42 only")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    result = run(Trace(args.trace_dir, args.git_path), [42] if args.quick else args.seeds)
    print(json.dumps(result, indent=1) if args.json else table(result))


if __name__ == "__main__":
    main()
