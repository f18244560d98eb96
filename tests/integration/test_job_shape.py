"""A job's shape through the API and the loader: nodes and GPUs per node, GPU models as an unordered set of pools,
shares of 0.01 GPU and a cluster's minimum share, profiles marked unordered, and what the scheduler core is given
(each node's CPU and memory, gang size, requests per node, best fit)."""

from __future__ import annotations

import pytest
from sched_helpers import API, Harness
from sqlalchemy import select

from allotment.db import transaction
from allotment.inventory.models import Node
from allotment.inventory.service import find_cluster
from allotment.scheduler import load
from allotment.workloads.models import Job


@pytest.fixture
def h(client, admin_headers) -> Harness:
    """Cluster `sim`: pool a100 (node a-1: 4 A100, 32 cores, 256Gi), pool h100 (nodes h-1, h-2: 4 H100 each, 64
    cores, 512Gi), quota team with 16 GPUs."""
    h = Harness(client, admin_headers)
    h.node("a-1", gpus=4, model="A100", cpu=32, memory="256Gi")
    h.node("h-1", gpus=4, model="H100")
    h.node("h-2", gpus=4, model="H100")
    h.pool("a100", ["a-1"])
    h.pool("h100", ["h-1", "h-2"])
    h.quota("team", [{"resource": "gpu", "guarantee": 16, "limit": 16}])
    return h


def refused(h: Harness, status: int = 422, **fields) -> list[dict]:
    body = {"quota": "team", "command": ["x"], **fields}
    r = h.client.post(f"{API}/jobs", headers=h.headers, json=body)
    assert r.status_code == status, r.text
    return r.json()["errors"]


def inventory(h: Harness) -> load.Inventory:
    with transaction(h.client.app.state.allot.sessions) as s:
        return load.inventory(s, find_cluster(s, h.cluster).id)


def core_job(h: Harness, job_id: int):
    inv = inventory(h)
    with transaction(h.client.app.state.allot.sessions) as s:
        row = next(r for r in load.active_jobs(s, find_cluster(s, h.cluster).id) if r.id == job_id)
        return load.queued_job(row, inv)


def test_shares_go_in_steps_of_one_hundredth(h):
    job = h.job(h.submit("team", gpu="0.47"))
    assert job["gpu"] == "0.47" and job["nodes"] == 1
    assert refused(h, gpu="0.475") == [{"field": "gpu", "message": "fractional GPUs go in steps of 0.01 (got 0.475)"}]


def test_a_cluster_minimum_share_refuses_finer_shares_naming_it(h):
    r = h.client.patch(f"{API}/clusters/sim", headers=h.headers, json={"engine": {"min_gpu_share": "0.3"}})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "engine.min_gpu_share"
    assert "divides one GPU evenly" in r.json()["errors"][0]["message"]
    r = h.client.patch(f"{API}/clusters/sim", headers=h.headers, json={"engine": {"min_gpu_share": 0.001}})
    assert r.status_code == 422 and "from 0.01 to 1" in r.json()["errors"][0]["message"]
    r = h.client.patch(f"{API}/clusters/sim", headers=h.headers, json={"engine": {"min_gpu_share": 0.25}})
    assert r.status_code == 200, r.text
    errors = refused(h, gpu="0.47")
    assert errors == [{"field": "gpu", "message": "cluster sim shares GPUs in steps of 0.25 (its min_gpu_share; "
                                                  "got 0.47)"}]
    assert h.job(h.submit("team", gpu="0.75"))["gpu"] == "0.75"
    assert inventory(h).gpu_share_step == 250  # the scheduler core is given the cluster's step


def test_nodes_and_gpus_per_node_are_checked_field_by_field(h):
    assert refused(h, nodes=0)[0]["field"] == "nodes"
    assert refused(h, gpus_per_node="0.5") == [{"field": "gpus_per_node", "message": "whole GPUs on each node (got "
                                                                                      "0.5); a share of one GPU is "
                                                                                      "asked with gpu"}]
    assert refused(h, gpu=2, gpus_per_node=2) == [{"field": "gpu", "message": "give either gpu or gpus_per_node, "
                                                                              "not both"}]
    assert refused(h, nodes=2, gpu=8) == [{"field": "gpu", "message": "with nodes, give gpus_per_node: the GPUs of "
                                                                      "each node"}]


def test_a_gang_job_stores_its_totals_and_core_gets_each_nodes_share(h):
    job = h.job(h.submit("team", nodes=2, gpus_per_node=4, cpu=16, memory="64Gi"))
    assert (job["nodes"], job["gpus_per_node"], job["gpu"], job["cpu"], job["memory"]) == (2, "4", "8", "32", "128Gi")
    queued = core_job(h, job["id"])
    assert queued.nodes == 2 and queued.requests["gpu"].raw == 4000 and queued.requests["cpu"].raw == 16000


def test_gpu_models_are_the_pools_of_those_models_as_an_unordered_set(h):
    job = h.job(h.submit("team", gpu=1, gpu_models="a100, H100"))
    assert job["gpu_models"] == ["A100", "H100"]  # the pools' own spelling
    queued = core_job(h, job["id"])
    assert set(queued.pools) == {"a100", "h100"} and queued.best_fit
    pinned = core_job(h, h.submit("team", gpu=1, pool="h100"))
    assert pinned.pools == ("h100",) and not pinned.best_fit
    errors = refused(h, gpu=1, gpu_models=["B200"])
    assert errors[0]["field"] == "gpu_models" and "no pool of GPU model B200" in errors[0]["message"]
    assert "A100, H100" in errors[0]["message"]
    assert refused(h, gpu=1, gpu_models=["A100"], pool="h100")[0]["field"] == "gpu_models"
    assert refused(h, cpu=1, gpu_models=["A100"])[0]["field"] == "gpu_models"


def test_a_profile_marked_unordered_is_best_fit_across_its_pools(h):
    out = h.post("/clusters/sim/profiles", {"name": "any-gpu", "gpu": 1, "unordered": True,
                                            "pools": [{"pool": "a100"}, {"pool": "h100"}]}, 201)
    assert out["unordered"] is True
    profile = next(p for p in inventory(h).profiles if p.name == "any-gpu")
    assert profile.best_fit and tuple(profile.pools) == ("a100", "h100")
    r = h.client.patch(f"{API}/clusters/sim/profiles/any-gpu", headers=h.headers, json={"unordered": False})
    assert r.status_code == 200 and r.json()["unordered"] is False
    assert not next(p for p in inventory(h).profiles if p.name == "any-gpu").best_fit
    r = h.client.patch(f"{API}/clusters/sim/profiles/any-gpu", headers=h.headers, json={"unordered": "yes"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"].endswith("unordered")
    assert refused(h, profile="any-gpu", nodes=2)[0]["field"] == "nodes"


def test_core_is_given_each_nodes_cpu_and_memory(h):
    inv = inventory(h)
    pools = {p.name: p for p in inv.pools}
    nodes = {n.name: (n.cpu.raw, n.memory.raw) for n in pools["h100"].nodes}
    assert nodes == {"h-1": (64000, 512 * 2**30), "h-2": (64000, 512 * 2**30)}
    assert [(n.name, n.cpu.raw) for n in pools["a100"].nodes] == [("a-1", 32000)]
    assert {d.node for d in pools["h100"].devices} == {"h-1", "h-2"}
    with transaction(h.client.app.state.allot.sessions) as s:
        s.scalar(select(Node).where(Node.name == "h-2")).status = "draining"
    pools = {p.name: p for p in inventory(h).pools}
    drained = next(n for n in pools["h100"].nodes if n.name == "h-2")
    assert drained.cpu.raw == 0 and drained.memory.raw == 0  # nothing new lands on it
    assert {d.node for d in pools["h100"].devices} == {"h-1"}


def test_the_chosen_nodes_are_kept_on_the_job_and_given_back_to_core(h):
    job_id = h.submit("team", gpu=2, cpu=8)
    h.cycle()
    job = h.job(job_id)
    assert job["state"] == "admitted"
    nodes = job["placement"]["nodes"]
    assert len(nodes) == 1 and {d["node"] for d in job["placement"]["devices"]} == set(nodes)
    with transaction(h.client.app.state.allot.sessions) as s:
        assert s.get(Job, job_id).placed_nodes == nodes
        inv = load.inventory(s, find_cluster(s, h.cluster).id)
        row = next(r for r in load.active_jobs(s, find_cluster(s, h.cluster).id) if r.id == job_id)
        running = load.running_job(row, inv, 0.0)
    assert list(running.nodes) == nodes and running.requests["cpu"].raw == 8000


def test_a_multi_gpu_job_is_never_split_over_nodes(h):
    """Pool h100 has h-1 and h-2 with 4 GPUs each. With 3 held on each, 2 GPUs are free in total but on two nodes:
    a 2-GPU job waits. Once a node is free, a 4-GPU job lands on that one node."""
    first, second = h.submit("team", gpu=3, pool="h100", runtime_s=10), h.submit("team", gpu=3, pool="h100",
                                                                                   runtime_s=20)
    h.settle()
    placed = [h.job(i)["placement"]["nodes"] for i in (first, second)]
    assert sorted(n for nodes in placed for n in nodes) == ["h-1", "h-2"]
    two = h.submit("team", gpu=2, pool="h100")
    h.settle()
    waiting = h.job(two)
    assert waiting["state"] == "queued" and waiting["reason_code"] == "no_device_fit", waiting
    assert "node" in waiting["reason"]
    h.settle(advance=11)  # the first 3-GPU job ends: its node has 4 free GPUs
    four = h.submit("team", gpu=4, pool="h100")
    h.settle()
    for job_id in (two, four):
        job = h.job(job_id)
        assert job["state"] in ("admitted", "running"), job
        assert len({d["node"] for d in job["placement"]["devices"]}) == 1
        assert job["placement"]["nodes"] == [job["placement"]["devices"][0]["node"]]


def test_a_gang_is_placed_on_distinct_nodes_at_once(h):
    blocker = h.submit("team", gpu=1, pool="h100", runtime_s=10)
    h.settle()
    gang = h.submit("team", nodes=2, gpus_per_node=4, cpu=8, pool="h100")
    h.settle()
    assert h.job(gang)["state"] == "queued"  # one node has only 3 free GPUs: nothing of the gang starts
    assert h.job(blocker)["state"] == "running"
    h.settle(advance=11)
    job = h.job(gang)
    assert job["state"] in ("admitted", "running"), job
    assert sorted(job["placement"]["nodes"]) == ["h-1", "h-2"]
    per_node = {}
    for d in job["placement"]["devices"]:
        per_node[d["node"]] = per_node.get(d["node"], 0) + 1
    assert per_node == {"h-1": 4, "h-2": 4}


def test_the_resource_configuration_carries_a_profiles_unordered_mark(h):
    base = f"/clusters/{h.cluster}/resource-config"
    h.put(f"{base}/draft", {"profiles": [{"name": "any-gpu", "gpu": 1, "unordered": True,
                                          "pools": [{"pool": "a100"}, {"pool": "h100"}]}]})
    h.post(f"{base}/provision")
    assert h.get(f"/clusters/{h.cluster}/profiles/any-gpu")["unordered"] is True
    draft = h.get(f"{base}/draft")
    assert next(p for p in draft["profiles"] if p["name"] == "any-gpu")["unordered"] is True
    profile = next(p for p in inventory(h).profiles if p.name == "any-gpu")
    assert profile.best_fit


def test_a_node_change_is_applied_node_by_node_and_keeps_the_clusters_state(h):
    """Draining a node, bringing it back or changing its CPU bumps the cluster's configuration version, but only
    nodes changed: the loop applies them to the state it has (no rebuild with every job), and they act at once."""
    first = h.submit("team", gpu=4, pool="h100", runtime_s=1000)
    h.settle()
    holder = h.job(first)["placement"]["nodes"][0]
    other = "h-2" if holder == "h-1" else "h-1"
    cid = next(iter(c for c, rt in h.scheduler.runtimes.items() if rt.name == h.cluster))
    state = h.scheduler.runtimes[cid]
    h.client.patch(f"{API}/clusters/{h.cluster}/nodes/{other}", headers=h.headers, json={"status": "draining"})
    waiting = h.submit("team", gpu=2, pool="h100")
    h.settle()
    assert h.scheduler.runtimes[cid] is state  # the same state: its nodes were updated in place
    assert h.job(waiting)["state"] == "queued"  # the only node with free GPUs is draining
    assert h.job(first)["state"] == "running"  # the running job is untouched
    h.client.patch(f"{API}/clusters/{h.cluster}/nodes/{other}", headers=h.headers, json={"status": "ready"})
    h.settle()
    assert h.scheduler.runtimes[cid] is state
    assert h.job(waiting)["placement"]["nodes"] == [other]
    h.quota("other", [{"resource": "gpu", "guarantee": 1, "limit": 1}])  # not a node change: built again
    h.settle()
    assert h.scheduler.runtimes[cid] is not state
    assert h.states([first, waiting]) == ["running", "running"]
