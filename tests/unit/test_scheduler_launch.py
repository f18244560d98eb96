"""The loop builds each admitted job's Launch without the frozen dataclass's __init__ (scheduler/engines.py): it must
give every field of Launch, and the launch must be the one the constructor would build, frozen as ever."""

import dataclasses
from types import SimpleNamespace

import pytest

from allotment.backends.base import Launch
from allotment.scheduler.engines import LAUNCH_FIELDS, launch_of
from allotment.scheduler.load import JobInfo


def info(**fields) -> JobInfo:
    row = {"id": 7, "quota_id": 1, "pool_id": None, "gpu_milli": 2000, "cpu_milli": 4000, "memory_bytes": 2 << 30,
           "command": '["train", "--lr", "0.1"]', "time_limit_s": 60, "labels": '{"runtime_ms": 1500}',
           "env": '{"A": "1"}', "config_file": "{}", "sealed_env": None, "mounts": '[{"folder": "f"}]',
           "owner": "ada", "state": "queued", "reason_code": None, "reason": None, "nodes": 2}
    row.update(fields)
    job = JobInfo(SimpleNamespace(**row), new=True)
    job.admission, job.placed_nodes = "1700000000000000", ["n-1", "n-2"]
    return job


def test_every_field_is_given_and_the_launch_equals_the_constructors():
    devices = [{"device_id": 1, "node": "n-1", "index": 0, "milli": 1000},
               {"device_id": 2, "node": "n-2", "index": 3, "milli": 1000}]
    launch = launch_of(info(), devices, pool="p")
    assert set(vars(launch)) == LAUNCH_FIELDS == {f.name for f in dataclasses.fields(Launch)}
    assert launch == Launch(**vars(launch))
    assert (launch.command, launch.node, launch.devices, launch.nodes) == ("train --lr 0.1", "n-1", ((0, 1000),),
                                                                           ("n-1", "n-2"))
    assert (launch.cpu, launch.memory_mib, launch.duration_s, launch.time_limit_s) == (2.0, 1024, 1.5, 60.0)
    assert (launch.env, launch.mounts, launch.owner, launch.pool) == ({"A": "1"}, ({"folder": "f"},), "ada", "p")
    with pytest.raises(dataclasses.FrozenInstanceError):
        launch.job_id = 8  # type: ignore[misc]
    assert dataclasses.replace(launch, env={}).env == {} and launch.env == {"A": "1"}


def test_a_job_without_devices_or_nodes():
    job = info(nodes=1, gpu_milli=0)
    job.placed_nodes = []
    launch = launch_of(job, [])
    assert launch == Launch(**vars(launch)) and (launch.devices, launch.node, launch.nodes) == ((), None, ())
