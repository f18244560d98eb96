"""The local engine's GPUs through the real pynvml, against a stand-in NVML library (tests/fixtures/fake_nvml.c,
built here as libnvidia-ml.so.1 and found through LD_LIBRARY_PATH). pynvml loads the library once per process, so
each case runs in a fresh Python."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "fake_nvml.c"

INVENTORY = """
import json, sys
from allotment.backends.local import LocalBackend
node = LocalBackend(sys.argv[1], node_name="here").inventory()[0]
print(json.dumps([d.__dict__ for d in node.devices]))
"""

IDLE = """
import json, sys, time
from allotment.backends.base import Launch
from allotment.backends.local import LocalBackend
b = LocalBackend(sys.argv[1])
start = time.time()
b.launch(Launch(1, "sleep 30", devices=((1, 1000),)), now=start)
b.launch(Launch(2, "sleep 30", devices=((0, 500),)), now=start)
time.sleep(0.5)
b.idle_since(1, time.time())  # the first sample sees the shells start
time.sleep(1.0)
now = time.time()
print(json.dumps({"1": now - b.idle_since(1, now), "2": now - b.idle_since(2, now)}))
b.close()
"""


@pytest.fixture(scope="module")
def fake_nvml(tmp_path_factory) -> Path:
    if shutil.which("gcc") is None:
        pytest.fail("gcc is needed to build the stand-in NVML library")
    lib_dir = tmp_path_factory.mktemp("fake-nvml")
    subprocess.run(["gcc", "-shared", "-fPIC", "-O1", "-o", str(lib_dir / "libnvidia-ml.so.1"), str(FIXTURE)],
                   check=True)
    return lib_dir


def _run(script: str, tmp_path: Path, lib_dir: Path | None, devices: str = "", **extra: str):
    env = {k: v for k, v in os.environ.items() if k not in ("LD_LIBRARY_PATH", "FAKE_NVML_DEVICES")}
    if lib_dir is not None:
        env["LD_LIBRARY_PATH"] = str(lib_dir)
    env.update(FAKE_NVML_DEVICES=devices, **extra)
    out = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, env=env,
                         timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_pynvml_reports_the_fake_devices_into_the_inventory(fake_nvml, tmp_path):
    devices = _run(INVENTORY, tmp_path, fake_nvml, "NVIDIA H100 80GB HBM3|81559|37|ok;NVIDIA A100-SXM4-40GB|40960|0|"
                   "pending;NVIDIA L4|23034|5|lost;NVIDIA RTX A6000|49140|0|nonecc")
    assert devices == [
        {"index": 0, "model": "NVIDIA H100 80GB HBM3", "memory_mib": 81559, "health": "healthy", "utilisation": 37.0},
        {"index": 1, "model": "NVIDIA A100-SXM4-40GB", "memory_mib": 40960, "health": "unhealthy",
         "utilisation": 0.0},  # ECC page retirement pending
        {"index": 2, "model": "NVIDIA L4", "memory_mib": 0, "health": "unhealthy", "utilisation": 0.0},  # lost
        {"index": 3, "model": "NVIDIA RTX A6000", "memory_mib": 49140, "health": "healthy", "utilisation": 0.0},
    ]


def test_without_nvml_or_its_driver_the_host_has_no_gpus(fake_nvml, tmp_path):
    assert _run(INVENTORY, tmp_path, None, "NVIDIA H100|81559|0|ok") == []  # no libnvidia-ml.so.1 at all
    assert _run(INVENTORY, tmp_path, fake_nvml, "NVIDIA H100|81559|0|ok", FAKE_NVML_FAIL_INIT="1") == []


def test_gpu_utilisation_keeps_a_job_busy_for_the_idle_timeout(fake_nvml, tmp_path):
    """Two `sleep` jobs use no CPU; the one whose GPU (index 1) NVML shows busy is never idle, the other (GPU 0,
    idle) is idle since the first sample."""
    idle = _run(IDLE, tmp_path, fake_nvml, "NVIDIA H100|81559|0|ok;NVIDIA H100|81559|63|ok")
    assert idle["1"] == 0.0
    assert idle["2"] >= 0.9
