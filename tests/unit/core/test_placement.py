"""Placement on nodes (pools that list their nodes): per-node GPUs, CPU and memory, one node by default, gangs, best
fit across pools, incremental node updates. Each finding of the placement issue has a minimal reproduction here."""

import pytest
from core_testkit import admitted, cpu, gpu, mem, preempted, quota, state_of, waits

from allotment.core.admission import SchedulerState
from allotment.core.model import Admit, Device, Node, Pool, Profile, QueuedJob, RunningJob, WaitCode
from allotment.core.placement import NodePool


def node_pool(name: str, nodes: dict[str, tuple[int, float, str]], busy: dict[str, float] | None = None) -> Pool:
    """nodes: name -> (GPUs, cores, memory); busy: device id -> GPU already in use (outside the scheduler)."""
    busy = busy or {}
    devices = tuple(Device(f"{n}-g{i}", free=gpu(1 - busy.get(f"{n}-g{i}", 0)), node=n)
                    for n, (g, _, _) in nodes.items() for i in range(g))
    return Pool(name, devices, nodes=tuple(Node(n, cpu(c), mem(m)) for n, (_, c, m) in nodes.items()))


def gpu_job(jid: str, gpus: float = 0, cores: float = 0, memory: str | None = None, *, pools=("p",), nodes: int = 1,
            best_fit: bool = False, priority: int = 0, seq: int = 0) -> QueuedJob:
    requests = {}
    if gpus:
        requests["gpu"] = gpu(gpus)
    if cores:
        requests["cpu"] = cpu(cores)
    if memory:
        requests["memory"] = mem(memory)
    return QueuedJob(jid, "q", priority, seq, 0.0, requests, tuple(pools), nodes=nodes, best_fit=best_fit)


def run(pools, jobs, quotas=None, profiles=()):
    state = state_of(quotas or [quota("q")], pools, profiles)
    for j in jobs:
        state.add_job(j)
    return state, state.cycle(0.0)


def admits(decisions) -> dict[str, Admit]:
    return {d.job_id: d for d in decisions if isinstance(d, Admit)}


# -- finding 2: a node's CPU and memory ------------------------------------------------------------------------------
MIXED = {"big": (8, 96, "512Gi"), "small": (1, 8, "64Gi")}


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        # best fit on free GPUs alone sends it to the 1-GPU node, whose 8 cores it would overload
        ((1, 16, None), "big"),
        ((1, 4, "128Gi"), "big"),  # same for memory
        ((1, 4, "32Gi"), "small"),  # it fits the small node: best fit keeps the big node whole
        ((0.5, 4, None), "small"),
        ((0.5, 9, None), "big"),
        # it would fit the small node, but its last 8 cores would strand the other half of that GPU
        ((0.5, 8, None), "big"),
    ],
)
def test_placement_respects_the_nodes_cpu_and_memory(request_, expected):
    _, decisions = run([node_pool("p", MIXED)], [gpu_job("j", *request_)])
    a = admits(decisions)["j"]
    assert a.nodes == (expected,)
    assert all(d.startswith(f"{expected}-") for d, _ in a.devices)


def test_no_placement_exceeds_a_node_and_the_wait_names_the_best_node():
    state, decisions = run([node_pool("p", MIXED)], [gpu_job("j1", 1, 90), gpu_job("j2", 2, 12)])
    assert admits(decisions)["j1"].nodes == ("big",)
    w = waits(decisions)["j2"]
    assert w.code == WaitCode.NO_DEVICE_FIT
    assert w.message == "no node in pool p has 2 GPUs and 12 cores free (best: big, 7 GPUs and 6 cores)"
    # the pool's CPU is the sum of its nodes' (104 cores): the pool has 14 free, but no node has 12
    assert state._tree.cap[state._pool_keys["p"]["cpu"]] == cpu(104).raw


def test_cpu_only_jobs_land_on_a_node_and_prefer_one_without_free_gpus():
    pool = node_pool("p", {"gpu-node": (2, 32, "64Gi"), "cpu-node": (0, 16, "64Gi")})
    _, decisions = run([pool], [gpu_job("c1", cores=6), gpu_job("c2", cores=6), gpu_job("c3", cores=6),
                                gpu_job("c4", cores=28, priority=-1)])
    a = admits(decisions)
    assert a["c1"].nodes == a["c2"].nodes == ("cpu-node",)  # the GPU node's cores stay for GPU jobs
    assert a["c3"].nodes == ("gpu-node",)
    assert waits(decisions)["c4"].message == "no node in pool p has 28 cores free (best: gpu-node, 26 cores)"


def test_finishing_gives_the_nodes_cpu_back_and_running_jobs_are_charged_to_their_node():
    state = state_of([quota("q")], [node_pool("p", MIXED)])
    state.add_running(RunningJob("r", "q", 0, 0.0, "p", {"gpu": gpu(1), "cpu": cpu(90)}, (("big-g0", gpu(1)),),
                                 nodes=("big",)), take_devices=True)
    state.add_job(gpu_job("j", 1, 16))
    assert "j" not in admitted(state.cycle(0.0))  # big has 6 cores left, small 8
    state.job_finished("r")
    assert admits(state.cycle(1.0))["j"].nodes == ("big",)


# -- finding 3: one node by default, gangs explicit --------------------------------------------------------------------
def test_a_multi_gpu_job_is_never_split_over_nodes():
    # two nodes with 2 free GPUs each: 4 GPUs in total, but no node has 4
    pool = node_pool("p", {"n1": (4, 64, "256Gi"), "n2": (4, 64, "256Gi")}, busy={"n1-g0": 1, "n1-g1": 1,
                                                                                   "n2-g0": 1, "n2-g1": 1})
    _, decisions = run([pool], [gpu_job("j", 4)])
    w = waits(decisions)["j"]
    assert w.code == WaitCode.NO_DEVICE_FIT
    assert "no node in pool p has 4 GPUs free (best: n1, 2 GPUs)" in w.message


@pytest.mark.parametrize("tracked", [True, False])
def test_a_gang_takes_distinct_nodes_all_at_once_and_charges_requests_times_nodes(tracked):
    nodes = {f"n{i}": (4, 32, "128Gi") for i in range(4)}
    busy = {"n2-g0": 1, "n3-g0": 1}
    pool = node_pool("p", nodes, busy) if tracked else Pool("p", node_pool("p", nodes, busy).devices)
    state, decisions = run([pool], [gpu_job("gang", 4, 8, nodes=2), gpu_job("late", 2, 8, nodes=3)])
    a = admits(decisions)["gang"]
    assert sorted(a.nodes) == ["n0", "n1"] and len(a.devices) == 8
    assert {d.split("-")[0] for d, _ in a.devices} == set(a.nodes)
    assert state.quota_usage("q")[("p", "gpu")] == gpu(8)
    # 6 GPUs are free, as the second gang asks, but on two nodes: it takes nothing (never partial)
    w = waits(decisions)["late"]
    assert w.code == WaitCode.NO_DEVICE_FIT
    if tracked:
        assert w.message == "fewer than 3 nodes in pool p have 2 GPUs and 8 cores free (2 have)"
    assert sum(f.raw for f in state.device_free("p").values()) == gpu(6).raw


def test_a_running_gang_is_charged_per_node():
    state = state_of([quota("q")], [node_pool("p", {f"n{i}": (2, 16, "64Gi") for i in range(2)})])
    state.add_running(RunningJob("g", "q", 0, 0.0, "p", {"gpu": gpu(1), "cpu": cpu(12)},
                                 (("n0-g0", gpu(1)), ("n1-g0", gpu(1))), nodes=("n0", "n1"), node_count=2),
                      take_devices=True)
    assert state.quota_usage("q")[("p", "cpu")] == cpu(24)
    state.add_job(gpu_job("j", 1, 8))
    assert "j" in waits(state.cycle(0.0))  # each node has 4 cores left


def test_preempting_frees_the_node_a_job_needs():
    quotas = [quota("q", within_quota_preemption="lower_priority")]
    state = state_of(quotas, [node_pool("p", {"n1": (2, 16, "64Gi")})])
    state.add_running(RunningJob("low", "q", 0, 0.0, "p", {"cpu": cpu(12)}, (), nodes=("n1",)))
    state.add_job(gpu_job("high", 1, 8, priority=10))
    decisions = state.cycle(1000.0)
    assert preempted(decisions) == ["low"]
    assert admits(decisions)["high"].nodes == ("n1",)


# -- finding 4: best fit across an unordered set of pools ------------------------------------------------------------
def two_models():
    a100 = node_pool("a100", {"a1": (8, 96, "512Gi")})
    h100 = node_pool("h100", {"h1": (8, 96, "512Gi")}, busy={f"h1-g{i}": 1 for i in range(7)})
    return [a100, h100]


@pytest.mark.parametrize("with_nodes", [True, False])
@pytest.mark.parametrize(("best_fit", "expected"), [(False, "a100"), (True, "h100")])
def test_best_fit_across_pools(best_fit, expected, with_nodes):
    # ordered: a100 first even though it breaks into an empty 8-GPU node; unordered: the last free H100 fits best
    pools = two_models() if with_nodes else [Pool(p.name, p.devices) for p in two_models()]
    _, decisions = run(pools, [gpu_job("j", 1, 8, pools=("a100", "h100"), best_fit=best_fit)])
    assert admitted(decisions) == {"j": expected}


def test_an_unordered_profile_takes_the_best_fit_and_an_ordered_one_keeps_precedence():
    profiles = [Profile("any-gpu", {"gpu": gpu(1)}, ("a100", "h100"), best_fit=True),
                Profile("a100-first", {"gpu": gpu(1)}, ("a100", "h100"))]
    jobs = [QueuedJob("u", "q", 0, 1, 0.0, profile="any-gpu"), QueuedJob("o", "q", 0, 2, 0.0, profile="a100-first")]
    _, decisions = run(two_models(), jobs, profiles=profiles)
    assert admitted(decisions) == {"u": "h100", "o": "a100"}


def test_best_fit_skips_a_pool_that_cannot_take_the_job():
    _, decisions = run(two_models(), [gpu_job("j", 2, 8, pools=("a100", "h100"), best_fit=True)])
    assert admitted(decisions) == {"j": "a100"}


# -- finding 5: node updates touch only that node ---------------------------------------------------------------------
def count_device_adds(monkeypatch) -> list[str]:
    added: list[str] = []
    original = NodePool._add_device

    def counting(self, dev, free, cap, node):
        added.append(dev)
        return original(self, dev, free, cap, node)

    monkeypatch.setattr(NodePool, "_add_device", counting)
    return added


def test_update_pool_changes_only_the_node_that_changed(monkeypatch):
    nodes = {f"n{i}": (8, 64, "256Gi") for i in range(50)}
    state = state_of([quota("q")], [node_pool("p", nodes)])
    dp = state._devices["p"]
    added = count_device_adds(monkeypatch)
    nodes["n7"] = (4, 64, "256Gi")  # n7 loses 4 devices
    nodes["n50"] = (8, 64, "256Gi")  # a node joins
    state.update_pool(node_pool("p", nodes))
    assert state._devices["p"] is dp  # not rebuilt
    assert sorted(added) == sorted(f"n50-g{i}" for i in range(8))
    assert dp.total_capacity == gpu(51 * 8 - 4).raw
    assert state._tree.cap[state._pool_keys["p"]["cpu"]] == cpu(51 * 64).raw


def test_update_node_and_remove_node():
    state = state_of([quota("q")], [node_pool("p", {"n1": (1, 16, "64Gi")})])
    state.add_job(gpu_job("j1", 1, 8))
    assert admits(state.cycle(0.0))["j1"].nodes == ("n1",)
    state.update_node("p", Node("n2", cpu(32), mem("64Gi")), [Device("n2-g0", node="n2")])
    state.add_job(gpu_job("j2", 1, 8))
    assert admits(state.cycle(1.0))["j2"].nodes == ("n2",)
    # n1 is drained: its job runs on, nothing new lands there, and the end of the job is harmless
    state.remove_node("p", "n1")
    state.job_finished("j1")
    state.add_job(gpu_job("j3", 0.5, 1))
    assert "j3" in waits(state.cycle(2.0))
    assert state._tree.cap[state._pool_keys["p"]["gpu"]] == gpu(1).raw
    # n1 comes back with the CPU its jobs use charged correctly (none left)
    state.update_node("p", Node("n1", cpu(16), mem("64Gi")), [Device("n1-g0", node="n1")])
    assert admits(state.cycle(3.0))["j3"].nodes == ("n1",)


def test_a_device_must_be_on_a_listed_node():
    pool = Pool("p", (Device("x-g0", node="x"),), nodes=(Node("n1", cpu(8)),))
    with pytest.raises(ValueError, match="node 'x', which the pool does not list"):
        SchedulerState([quota("q")], [pool])


# -- the score: fragmentation for the workload seen (FGD) -------------------------------------------------------------
def test_a_share_goes_where_what_it_leaves_still_fits_the_workload():
    """Free 0.5 on n1 and 0.6 on n2; the queue holds 0.5-GPU jobs. Best fit alone would put 0.1 on n1 (0.4 left,
    too small for any of them); the fragmentation score puts it on n2 (0.5 left), so two 0.5 jobs run, not one."""
    pool = node_pool("p", {"n1": (1, 16, "64Gi"), "n2": (1, 16, "64Gi")}, busy={"n1-g0": 0.5, "n2-g0": 0.4})
    jobs = [gpu_job("small", 0.1, 1, priority=10)] + [gpu_job(f"half{i}", 0.5, 1) for i in range(3)]
    _, decisions = run([pool], jobs)
    a = admits(decisions)
    assert a["small"].nodes == ("n2",)
    assert sorted(j for j in a if j.startswith("half")) == ["half0", "half1"]


def test_whole_gpu_jobs_keep_a_node_with_completely_free_devices():
    """A share breaks into the node with the fewest completely free devices: the 2-GPU job still finds its node."""
    pool = node_pool("p", {"n1": (2, 32, "64Gi"), "n2": (1, 32, "64Gi")})
    _, decisions = run([pool], [gpu_job("share", 0.3, 1, priority=10), gpu_job("two", 2, 1)])
    a = admits(decisions)
    assert a["share"].nodes == ("n2",) and a["two"].nodes == ("n1",)
