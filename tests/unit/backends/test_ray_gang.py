"""A job placed on several nodes on Ray: a placement group with one bundle per named node (each pinned to its node
with that node's share), made by a small driver in front of the job's command, which sits on the first node (through
the engine's Jobs API seam; no Ray needed)."""

from __future__ import annotations

import json
import shlex

import pytest

from allotment.backends import ray_gang
from allotment.backends.base import Launch
from allotment.backends.ray import RayBackend, RayConfig, RayLaunchError
from allotment.backends.ray_client import RayNode


class FakeJobsApi:
    def __init__(self, nodes: list[RayNode]):
        self._nodes = nodes
        self.submitted: list[dict] = []

    def nodes(self):
        return self._nodes

    def submit(self, submission_id, entrypoint, **kwargs):
        self.submitted.append({"submission_id": submission_id, "entrypoint": entrypoint, **kwargs})
        return submission_id

    def close(self):
        pass


def node(i: int, gpus: int = 4) -> RayNode:
    return RayNode(f"id{i}" * 8, f"g-{i}", f"10.0.0.{i}", True, {"CPU": 64.0, "GPU": float(gpus), "h100": float(gpus),
                                                                   "memory": 512.0 * 2**30, f"node:10.0.0.{i}": 1.0})


def backend(tmp_path, nodes) -> tuple[RayBackend, FakeJobsApi]:
    api = FakeJobsApi(nodes)
    config = RayConfig(address="http://head:8265", log_dir=tmp_path / "logs", state_dir=tmp_path / "state",
                       resources={"h100": "h100"})
    return RayBackend(config, api=api), api


def test_a_gang_gets_one_pinned_bundle_per_node_and_its_driver_on_the_first(tmp_path):
    engine, api = backend(tmp_path, [node(1), node(2), node(3)])
    engine.launch(Launch(job_id=7, command="python train.py", node="g-2", nodes=("g-2", "g-3"),
                         devices=((0, 1000), (1, 1000), (2, 1000), (3, 1000)), cpu=16, memory_mib=65536,
                         admission="a1", pool="h100"), 0.0)
    [job] = api.submitted
    argv = shlex.split(job["entrypoint"])
    assert argv[:3] == ["python3", "-c", ray_gang.DRIVER]
    bundles, name, command = json.loads(argv[3]), argv[4], argv[6]
    assert command == "python train.py" and name == job["submission_id"]
    share = {"CPU": 16.0, "GPU": 4.0, "h100": 4.0, "memory": 65536.0 * 2**20}
    assert bundles == [{**share, "node:10.0.0.2": 0.001}, {**share, "node:10.0.0.3": 0.001}]
    # The driver holds no GPU itself: just a sliver of the first node, so it runs there.
    assert job["resources"] == {"node:10.0.0.2": 0.001} and job["num_gpus"] is None and job["num_cpus"] is None
    assert job["env_vars"]["ALLOT_NODES"] == "g-2,g-3"


def test_a_one_node_job_keeps_its_plain_entrypoint(tmp_path):
    engine, api = backend(tmp_path, [node(1)])
    engine.launch(Launch(job_id=8, command="python infer.py", node="g-1", nodes=("g-1",), devices=((0, 470),),
                         admission="a1", pool="h100"), 0.0)
    [job] = api.submitted
    assert job["entrypoint"] == "python infer.py" and job["num_gpus"] == 0.47


def test_a_gang_is_refused_when_a_node_cannot_hold_its_share(tmp_path):
    engine, api = backend(tmp_path, [node(1), node(2, gpus=2)])
    with pytest.raises(RayLaunchError, match="g-2"):
        engine.launch(Launch(job_id=9, command="x", node="g-1", nodes=("g-1", "g-2"),
                             devices=((0, 1000), (1, 1000), (2, 1000), (3, 1000)), admission="a1", pool="h100"), 0.0)
    assert api.submitted == []


def test_the_driver_is_valid_python():
    compile(ray_gang.DRIVER, "<gang driver>", "exec")


def test_the_owners_configuration_file_is_written_before_the_command(tmp_path):
    """Issue 17: the entrypoint writes the effective configuration (vaults) and names it in ALLOT_CONFIG_FILE."""
    import os
    import subprocess

    engine, api = backend(tmp_path, [node(1)])
    engine.launch(Launch(job_id=10, command='cat "$ALLOT_CONFIG_FILE"', node="g-1", nodes=("g-1",),
                         admission="a1", pool="h100", config_file='{\n  "sdk": {"region": "eu"}\n}'), 0.0)
    [job] = api.submitted
    argv = shlex.split(job["entrypoint"])
    assert argv[:2] == ["sh", "-c"]
    done = subprocess.run(argv, capture_output=True, text=True, check=True,
                          env={"PATH": os.environ["PATH"], "TMPDIR": str(tmp_path)})
    assert json.loads(done.stdout) == {"sdk": {"region": "eu"}}
