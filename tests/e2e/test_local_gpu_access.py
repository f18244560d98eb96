"""GPU access on the local engine is enforced by the run's devices cgroup (cgroup v1), not only by
CUDA_VISIBLE_DEVICES: a job that unsets the variable still cannot open a GPU it was not given.

As the Slurm test cluster does, the GPUs are fake character devices (`mknod PATH c 195 N`): the devices cgroup
checks major:minor when a node is opened, before any driver is asked. So opening a node the job may use fails with
ENXIO (no NVIDIA driver on this host), and one it may not use fails with EPERM. Root and cgroup v1 only.
"""

from __future__ import annotations

import json
import os
import time

import pytest

from allotment.backends.base import Launch
from allotment.backends.cgroups import Cgroups
from allotment.backends.local import LocalBackend

PROBE = """unset CUDA_VISIBLE_DEVICES NVIDIA_VISIBLE_DEVICES
python3 -I -c '
import errno, json, os, sys
result = {}
for name in sorted(os.listdir(sys.argv[1])):
    try:
        os.close(os.open(os.path.join(sys.argv[1], name), os.O_RDWR))
        result[name] = "opened"
    except OSError as exc:
        result[name] = errno.errorcode[exc.errno]
print("PROBE " + json.dumps(result))
' @DEVDIR@"""


@pytest.fixture()
def engine(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("device cgroups need root")
    cgroups, why_not = Cgroups.detect()
    if cgroups is None or not cgroups.enforces_gpus:
        pytest.skip(f"no devices controller (cgroup v1) here: {why_not or 'cgroup v2'}")
    dev = tmp_path / "dev"
    dev.mkdir()
    for minor in (0, 1, 2, 3):
        os.mknod(dev / f"nvidia{minor}", 0o666 | 0o020000, os.makedev(195, minor))
    os.mknod(dev / "nvidiactl", 0o666 | 0o020000, os.makedev(195, 255))
    backend = LocalBackend(tmp_path / "jobs", cgroups=cgroups)
    (tmp_path / "jobs").mkdir()
    yield backend, dev, cgroups
    backend.close()


def run(backend: LocalBackend, job_id: int, command: str, devices=()) -> str:
    backend.launch(Launch(job_id, command, devices=devices, admission="a1"), now=time.time())
    deadline = time.time() + 20
    while time.time() < deadline:
        if any(e.job_id == job_id and e.kind in ("succeeded", "failed") for e in backend.poll(time.time())):
            return (backend.log_dir / f"job-{job_id}.log").read_text()
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish")


def probe(log: str) -> dict[str, str]:
    return json.loads(next(line for line in log.splitlines() if line.startswith("PROBE "))[6:])


def test_a_job_opens_only_its_own_gpus_even_without_cuda_visible_devices(engine):
    backend, dev, cgroups = engine
    log = run(backend, 1, 'echo "cuda=$CUDA_VISIBLE_DEVICES nvidia=$NVIDIA_VISIBLE_DEVICES"\n' + PROBE.replace("@DEVDIR@", str(dev)),
              devices=((1, 1000), (3, 500)))
    # ENXIO: the cgroup let it through to the (absent) driver; EPERM: the cgroup refused it.
    assert probe(log) == {"nvidia0": "EPERM", "nvidia1": "ENXIO", "nvidia2": "EPERM", "nvidia3": "ENXIO",
                          "nvidiactl": "ENXIO"}
    # CUDA numbers the GPUs a process can open from 0 (as under Slurm's ConstrainDevices); container runtimes on the
    # host read the host's indices.
    assert "cuda=0,1 nvidia=1,3" in log
    assert not (cgroups.parents["devices"] / "1-a1").exists()  # removed with its run


def test_a_job_given_no_gpu_opens_none(engine):
    backend, dev, _ = engine
    assert probe(run(backend, 2, PROBE.replace("@DEVDIR@", str(dev)))) == {
        "nvidia0": "EPERM", "nvidia1": "EPERM", "nvidia2": "EPERM", "nvidia3": "EPERM", "nvidiactl": "ENXIO"}


def test_the_minor_of_a_gpu_comes_from_nvml_where_it_says(engine, monkeypatch):
    backend, dev, _ = engine
    monkeypatch.setattr("allotment.backends.local.minor_numbers", lambda: {0: 2, 1: 0})
    assert probe(run(backend, 3, PROBE.replace("@DEVDIR@", str(dev)), devices=((0, 1000),)))["nvidia2"] == "ENXIO"
    assert probe(run(backend, 4, PROBE.replace("@DEVDIR@", str(dev)), devices=((0, 1000),)))["nvidia0"] == "EPERM"
