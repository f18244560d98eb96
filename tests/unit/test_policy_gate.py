"""Resource policy totals (Backend.AI keypair resource policy): the pure decision as a table, and the gate's
reservations (what it lets through counts until released, across clusters)."""

from __future__ import annotations

import pytest

from allotment.policies.gate import Amounts, Caps, PolicyGate, over_caps, wait_message
from allotment.scheduler.gates import GateJob, Gates

GIB = 2**30
P = Caps("p1", cpu=8000, memory=64 * GIB, gpu=4, fgpu=2500)


@pytest.mark.parametrize(("caps", "in_use", "asked", "over"), [
    (Caps("free"), Amounts(10**6, 10**12, 100, 10**5), Amounts(10**6, 10**12, 100, 10**5), []),
    (P, Amounts(), Amounts(cpu=8000, memory=64 * GIB, gpu=2, fgpu=2000), []),  # exactly at the caps
    (P, Amounts(gpu=3), Amounts(gpu=2), [("gpu", 4, 3, 2)]),
    (P, Amounts(gpu=3, fgpu=2000), Amounts(gpu=1, fgpu=500), []),  # 4 devices, 2.5 GPU: both at the cap
    (P, Amounts(gpu=3, fgpu=2000), Amounts(gpu=1, fgpu=600), [("fgpu", 2500, 2000, 600)]),
    (P, Amounts(cpu=6000, memory=60 * GIB), Amounts(cpu=4000, memory=8 * GIB),
     [("cpu", 8000, 6000, 4000), ("memory", 64 * GIB, 60 * GIB, 8 * GIB)]),
    (P, Amounts(gpu=9), Amounts(cpu=1000), []),  # over a cap already (lowered): a job not asking for it may go
    (Caps("zero", gpu=0), Amounts(), Amounts(gpu=1, fgpu=100), [("gpu", 0, 0, 1)]),
])
def test_over_caps(caps, in_use, asked, over):
    assert over_caps(caps, in_use, asked) == over


def test_a_fraction_of_a_gpu_touches_one_device():
    assert Amounts.of(500, 0, 0) == Amounts(gpu=1, fgpu=500)
    assert Amounts.of(2500, 1000, GIB) == Amounts(cpu=1000, memory=GIB, gpu=3, fgpu=2500)


def test_the_wait_says_the_numbers():
    message = wait_message("alice", P, [("gpu", 4, 3, 2)])
    assert message.startswith("user alice's resource policy p1 allows 4 GPUs at once; 3 are in use and this job "
                              "asks for 2")
    assert "64Gi of RAM at once; 60Gi are in use" in wait_message("alice", P, [("memory", 64 * GIB, 60 * GIB, GIB)])


def job(cluster: int, job_id: int, gpu: int, owner: int = 7) -> GateJob:
    return GateJob(cluster, job_id, owner, None, gpu * 1000, 0, 0)


def test_the_gate_reserves_what_it_lets_through_across_clusters_until_released():
    gate = PolicyGate()
    gate.caps, gate.usernames = {7: Caps("p1", gpu=4)}, {7: "alice"}
    gates = Gates([gate])
    assert gates.hold(job(1, 1, 2)) is None
    assert gates.hold(job(2, 2, 2)) is None  # another cluster: the same user's total
    wait = gates.hold(job(1, 3, 1))
    assert wait is not None and wait.code == "policy_limit" and wait.job_id == "3"
    assert "allows 4 GPUs at once; 4 are in use and this job asks for 1" in wait.message
    assert gates.hold(job(1, 4, 1, owner=8)) is None  # another user, no cap
    assert gates.reopened is False
    gates.released(job(2, 2, 2))
    assert gates.reopened is True
    gates.begin_cycle()
    assert gates.examining and not gates.reopened
    assert gates.hold(job(1, 3, 1)) is None
    assert gate.usage(7) == Amounts(gpu=3, fgpu=3000)
    gates.released(job(9, 9, 1))  # never seen: nothing happens
    assert gate.usage(7) == Amounts(gpu=3, fgpu=3000)


def test_a_rebuilt_cluster_reserves_its_running_jobs_whatever_the_caps_say():
    gate = PolicyGate()
    gate.caps, gate.usernames = {7: Caps("p1", gpu=2)}, {7: "alice"}
    gates = Gates([gate])
    assert gates.hold(job(1, 1, 2)) is None
    gates.forget_cluster(1)
    assert gate.usage(7) == Amounts()
    for job_id in (1, 2):  # running when the cluster's state is rebuilt: counted, never stopped
        gates.reserve(job(1, job_id, 2))
    assert gate.usage(7).gpu == 4
    assert gates.hold(job(1, 3, 1)) is not None
