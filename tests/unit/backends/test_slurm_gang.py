"""A job placed on several nodes reaches Slurm as one job on exactly those nodes: sbatch gets --nodes, --nodelist
and one task per node with one node's share of GPUs, CPUs and memory (and slurmrestd the same), through the engine's
own client seams (no Slurm needed)."""

from __future__ import annotations

import pytest

from allotment.backends.base import Launch
from allotment.backends.slurm import SlurmBackend, SlurmConfig, SlurmLaunchError
from allotment.backends.slurm_client import JobSpec, SlurmCommands, SlurmRestClient

NODES = [{"name": f"g-{i}", "gres": "gpu:h100:4", "partitions": ["h100"], "cpus": 64, "real_memory": 524288,
          "state": "idle"} for i in (1, 2, 3)]


class RecordingCommands(SlurmCommands):
    """Slurm's commands with the subprocess replaced: records each command line and answers like Slurm."""

    def __init__(self):
        super().__init__()
        self.calls: list[list[str]] = []

    def _run(self, args, stdin=None, env=None):
        self.calls.append(list(args))
        return "4242\n" if args[0] == "sbatch" else ""

    def nodes(self):
        return NODES


def gang(job_id: int = 7) -> Launch:
    # launch_of gives a gang the devices of its first node and one node's share of CPUs and memory.
    return Launch(job_id=job_id, command="srun train", node="g-2", nodes=("g-2", "g-3"),
                  devices=((0, 1000), (1, 1000), (2, 1000), (3, 1000)), cpu=16, memory_mib=65536, admission="a1")


def test_a_gang_reaches_sbatch_on_exactly_its_nodes(tmp_path):
    api = RecordingCommands()
    backend = SlurmBackend(SlurmConfig(log_dir=tmp_path / "logs", state_dir=tmp_path / "state"), api=api)
    assert backend.launch(gang(), 0.0) == "4242"
    sbatch = next(c for c in api.calls if c[0] == "sbatch")
    assert "--nodelist=g-2,g-3" in sbatch and "--nodes=2" in sbatch
    assert "--ntasks=2" in sbatch and "--ntasks-per-node=1" in sbatch
    # Slurm's GRES, --cpus-per-task and --mem are per node (task): each node gets one node's share.
    assert "--gres=gpu:h100:4" in sbatch and "--cpus-per-task=16" in sbatch and "--mem=65536M" in sbatch
    assert "--partition=h100" in sbatch


def test_a_one_node_job_stays_a_one_node_submission(tmp_path):
    api = RecordingCommands()
    backend = SlurmBackend(SlurmConfig(log_dir=tmp_path / "logs", state_dir=tmp_path / "state"), api=api)
    backend.launch(Launch(job_id=8, command="train", node="g-1", nodes=("g-1",), devices=((0, 1000), (1, 1000)),
                          cpu=8, admission="a1"), 0.0)
    sbatch = next(c for c in api.calls if c[0] == "sbatch")
    assert "--nodelist=g-1" in sbatch and "--gres=gpu:h100:2" in sbatch
    assert not any(a.startswith(("--nodes=", "--ntasks")) for a in sbatch)


def test_a_gang_over_a_node_slurm_does_not_know_is_refused(tmp_path):
    backend = SlurmBackend(SlurmConfig(log_dir=tmp_path / "logs", state_dir=tmp_path / "state"),
                           api=RecordingCommands())
    launch = Launch(job_id=9, command="x", node="g-1", nodes=("g-1", "g-9"), devices=((0, 1000),), admission="a1")
    with pytest.raises(SlurmLaunchError, match="g-9"):
        backend.job_spec(launch)


def test_slurmrestd_gets_one_task_per_node(monkeypatch):
    client = SlurmRestClient("http://slurm:6820", "allot", "token")
    sent = {}

    def fake_json(method, path, **kwargs):
        sent.update(kwargs["json"]["job"])
        return {"job_id": 99}

    monkeypatch.setattr(client, "_json", fake_json)
    spec = JobSpec(name="allot-7", comment="allot:7:a1", script="#!/bin/sh\ntrain\n", environment={},
                   work_dir="/tmp", output="/tmp/job-7.log", nodelist="g-2,g-3", gres="gpu:h100:4", cpus=16,
                   memory_mib=65536, nodes=2)
    assert client.submit(spec) == 99
    assert (sent["nodelist"], sent["tasks"], sent["tasks_per_node"]) == ("g-2,g-3", 2, 1)
    assert (sent["gres"], sent["cpus_per_task"], sent["memory_per_node"]) == ("gpu:h100:4", 16, 65536)
