"""The replay of Alibaba's GPU trace through the pure core (benchmarks/alibaba_replay.py), on a trace of a few rows
in the trace's own CSV format."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from allotment.core.model import Admit
from allotment.core.quantity import Quantity

ROOT = Path(__file__).resolve().parents[3]

NODES = """sn,cpu_milli,memory_mib,gpu,model
n-1,8000,65536,1,T4
n-2,64000,262144,4,V100M32
n-3,32000,131072,0,
"""
PODS = """name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time
p-1,16000,16384,1,470,,LS,Running,0,100,0
p-2,4000,8192,1,320,{spec},LS,Running,1,100,1
p-3,4000,8192,2,1000,,LS,Running,2,100,2
p-4,4000,8192,0,0,,BE,Running,3,100,3
"""


@pytest.fixture(scope="module")
def replay():
    spec = importlib.util.spec_from_file_location("alibaba_replay", ROOT / "benchmarks" / "alibaba_replay.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["alibaba_replay"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def trace(tmp_path, replay):
    (tmp_path / "openb_node_list_gpu_node.csv").write_text(NODES)
    (tmp_path / "openb_pod_list_default.csv").write_text(PODS.format(spec=""))
    (tmp_path / "openb_pod_list_gpuspec33.csv").write_text(PODS.format(spec="T4"))
    return replay.Trace(tmp_path)


def test_pods_are_placed_as_they_ask_within_each_node(replay, trace):
    cluster = replay.Cluster(replay.read_nodes(trace))
    assert cluster.models == ["T4", "V100M32"] and cluster.gpu_capacity == 5000  # CPU-only nodes are not read
    pods = replay.read_pods(trace, "openb_pod_list_default.csv")
    assert [p.gpu for p in pods] == [470, 320, 2000, 0]
    result = replay.as_submitted(cluster, pods)
    assert result["admitted"] == 4 and result["refused_for_granularity"] == 0
    assert result["placements_exceeding_a_node"] == 0 and result["gpu_jobs_split_over_nodes"] == 0
    # p-1 asks for 16 cores: only n-2 has them, though n-1's T4 would be the tighter GPU fit.
    decision, _ = replay.submit(cluster.state(), cluster.job(pods[0], 1))
    assert isinstance(decision, Admit) and decision.nodes == ("n-2",)


def test_a_model_constraint_limits_the_pools(replay, trace):
    cluster = replay.Cluster(replay.read_nodes(trace))
    pods = replay.read_pods(trace, "openb_pod_list_gpuspec33.csv")
    job = cluster.job(pods[1], 2)
    assert tuple(job.pools) == ("T4",) and not job.best_fit
    free = cluster.job(pods[0], 1)
    assert tuple(free.pools) == ("T4", "V100M32") and free.best_fit


def test_the_node_account_catches_overloads_and_split_jobs(replay, trace):
    """The check is kept outside core, from the decisions alone: it must see a bad placement if core made one."""
    cluster = replay.Cluster(replay.read_nodes(trace))
    pods = replay.read_pods(trace, "openb_pod_list_default.csv")
    account = replay.NodeAccount(cluster)
    account.admit(Admit("a", "trace", "T4", {}, (("n-1/0", Quantity(470)),), nodes=("n-1",)), pods[0])  # 16 > 8 cores
    account.admit(Admit("b", "trace", "V100M32", {}, (("n-2/0", Quantity(1000)), ("n-1/0", Quantity(1000))),
                        nodes=("n-2",)), pods[2])
    account.admit(Admit("c", "trace", "V100M32", {}, (("n-2/1", Quantity(600)),), nodes=("n-2",)), pods[1])
    account.admit(Admit("d", "trace", "V100M32", {}, (("n-2/1", Quantity(600)),), nodes=("n-2",)), pods[1])
    assert len(account.overloads) == 3 and account.split == 1
    assert "n-1" in account.overloads[0] and "n-2/1" in account.overloads[2]


def test_inflation_adds_draws_up_to_130_percent_and_shuffles_by_seed(replay, trace):
    pods = replay.read_pods(trace, "openb_pod_list_default.csv")
    first, again, other = (replay.inflated(pods, 5000, seed) for seed in (42, 42, 43))
    assert first == again and first != other
    assert {p.name for p in pods} <= {p.name for p in first}
    assert sum(p.gpu for p in first) <= 1.3 * 5000 < sum(p.gpu for p in first) + max(p.gpu for p in pods)
