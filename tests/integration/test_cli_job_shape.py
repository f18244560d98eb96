"""`allot jobs submit --nodes --gpus-per-node --gpu-model` and `allot profiles create|set --unordered` against the
app in-process (the CLI's HTTP client is pointed at the test client)."""

from __future__ import annotations

import json

import pytest
from cli_inprocess import cli_runner
from inventory_helpers import register_node


@pytest.fixture
def allot(client, admin_headers, monkeypatch, tmp_path):
    run = cli_runner(client, monkeypatch, tmp_path)(admin_headers)
    register_node(client, admin_headers, "a-1", "A100", 4)
    register_node(client, admin_headers, "h-1", "H100", 4)
    assert run("pools", "create", "a100", "--node", "a-1")[0] == 0
    assert run("pools", "create", "h100", "--node", "h-1")[0] == 0
    assert run("quotas", "create", "research")[0] == 0
    return run


def test_a_gang_job_and_gpu_models_from_the_cli(allot):
    code, out = allot("jobs", "submit", "--quota", "research", "--nodes", "2", "--gpus-per-node", "4", "--cpu", "8",
                      "--json", "--", "train")
    assert code == 0, out
    job = json.loads(out)
    assert (job["nodes"], job["gpus_per_node"], job["gpu"], job["cpu"]) == (2, "4", "8", "16")
    code, out = allot("jobs", "show", str(job["id"]))
    assert code == 0 and "on 2 nodes (4 gpu each)" in out
    code, out = allot("jobs", "submit", "--quota", "research", "--gpu", "0.47", "--gpu-model", "a100,h100",
                      "--json", "--", "infer")
    assert code == 0, out
    assert (json.loads(out)["gpu"], json.loads(out)["gpu_models"]) == ("0.47", ["A100", "H100"])
    code, out = allot("jobs", "submit", "--quota", "research", "--gpu", "1", "--gpu-model", "b200", "--", "x")
    assert code == 1 and "gpu_models" in out and "B200" not in out and "b200" in out
    code, out = allot("jobs", "submit", "--quota", "research", "--gpus-per-node", "0.5", "--", "x")
    assert code == 1 and "gpus_per_node" in out and "whole GPUs on each node" in out


def test_a_profile_marked_unordered_from_the_cli(allot):
    code, out = allot("profiles", "create", "any-gpu", "--gpu", "1", "--pool", "a100", "--pool", "h100",
                      "--unordered")
    assert code == 0, out
    code, out = allot("profiles", "show", "any-gpu")
    assert code == 0 and "unordered (best fit)" in out and "(any-gpu on a100) | h100" in out
    code, out = allot("profiles", "set", "any-gpu", "--ordered")
    assert code == 0 and "(any-gpu on a100) > h100" in out and "unordered" not in out


def test_a_clusters_smallest_gpu_share_from_the_cli(allot):
    code, out = allot("admin", "add-cluster", "sim", "--backend", "simulated", "--min-gpu-share", "0.3")
    assert code == 1 and "min_gpu_share" in out and "divides one GPU evenly" in out
    code, out = allot("admin", "add-cluster", "sim", "--backend", "simulated", "--min-gpu-share", "0.25")
    assert code == 0, out
    assert "min_gpu_share" in out and "0.25" in out
    code, out = allot("admin", "update-cluster", "sim", "--min-gpu-share", "1", "--json")
    assert code == 0 and json.loads(out)["engine"]["min_gpu_share"] == "1"
    code, out = allot("admin", "update-cluster", "sim", "--clear", "min_gpu_share", "--json")
    assert code == 0 and "min_gpu_share" not in json.loads(out)["engine"]
