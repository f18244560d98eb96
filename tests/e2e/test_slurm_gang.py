"""A job over several nodes on a real Slurm (scripts/slurm.sh's cluster, whose hidden partition `all` holds both of
its nodes): one Slurm job on exactly those nodes, whose every task finds the owner's configuration file, removed from
each node when the command ends. Both nodes of the test cluster share this host's temporary directory: the copy to
the other node finds the file already there, identical. What the copy does on a node of its own (creates the file,
refuses one that differs or a planted link) is run in tests/unit/backends/test_slurm_config_file.py."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from allotment.backends.base import Launch
from allotment.backends.slurm import SlurmBackend, SlurmConfig
from e2e.test_slurm_engine import make_backend, wait_for

pytestmark = pytest.mark.e2e

CONFIG = json.dumps({"sdk": {"region": "eu", "token": "not-a-real-one"}}, indent=2)
# Each task prints its node and the file it was given, then the file itself.
COMMAND = ("srun sh -c 'echo \"task on=$SLURMD_NODENAME file=$ALLOT_CONFIG_FILE\"; "
           "cat \"$ALLOT_CONFIG_FILE\" | tr -d \"\\n\"; echo'")


def gang_backend(slurm: dict, tmp_path: Path) -> SlurmBackend:
    plain = make_backend(slurm, tmp_path)
    config = SlurmConfig(**{**plain.config.__dict__, "partitions": {"both": "all"}})
    return SlurmBackend(config)


def both_nodes_ready(backend: SlurmBackend, timeout_s: float = 30.0) -> None:
    """The session's other tests drain a node, or stop slurmctld, and put them back: the nodes answer again within
    moments. Slurm refuses a job for a node that is down or drained rather than queueing it."""
    deadline = time.monotonic() + timeout_s
    while True:
        status = {n.name: n.status for n in backend.inventory()}
        if all(status.get(name) == "ready" for name in ("a100-n1", "h100-n1")) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert status.get("a100-n1") == status.get("h100-n1") == "ready", status


def test_a_gang_runs_on_both_nodes_and_each_task_reads_the_configuration(slurm, tmp_path):
    backend = gang_backend(slurm, tmp_path)
    both_nodes_ready(backend)
    job_id = 900_000 + os.getpid() % 1000
    launch = Launch(job_id=job_id, command=COMMAND, node="a100-n1", nodes=("a100-n1", "h100-n1"), cpu=1,
                    admission="a1", pool="both", config_file=CONFIG)
    backend.launch(launch, time.time())
    wait_for(backend, {job_id: "succeeded"}, timeout_s=60)
    log = backend.log_path(job_id).read_text()
    tasks = [line.split() for line in log.splitlines() if line.startswith("task on=")]
    assert sorted(t[1] for t in tasks) == ["on=a100-n1", "on=h100-n1"], log
    assert log.count(CONFIG.replace("\n", "")) == 2, log
    (path,) = {t[2].removeprefix("file=") for t in tasks}
    assert not Path(path).exists()  # removed when the command ended

