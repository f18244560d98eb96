"""A remote engine that hangs (accepts connections, never answers: a stuck slurmrestd, a network partition) costs the
scheduler loop one bounded wait, not its own timeouts at every retry: the other clusters keep admitting, and the
hung cluster shows `unreachable` with what happened."""

from __future__ import annotations

import socket
import time

import pytest
from sched_helpers import Harness

from conftest import make_settings

TOKEN = "eyJhbGciOiJIUzI1NiJ9.c2x1cm0tdG9rZW4tc2VjcmV0.T0tFTi1zaWduYXR1cmU"
ANSWER_S = 0.5


@pytest.fixture
def settings(tmp_path, backend):
    return make_settings(tmp_path, backend, engine_answer_s=ANSWER_S)


@pytest.fixture
def black_hole():
    """A listening socket that never accepts: connections complete in the kernel, requests are never answered."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    yield sock.getsockname()[1]
    sock.close()


def test_a_hung_slurm_does_not_hold_up_another_clusters_admissions(client, admin_headers, black_hole, tmp_path):
    h = Harness(client, admin_headers)
    h.node("gpu-01", gpus=4)
    h.quota("team", [{"resource": "gpu", "guarantee": 4, "limit": 4}])
    h.post("/clusters", {"name": "hpc", "backend": "slurm",
                         "engine": {"rest_url": f"http://127.0.0.1:{black_hole}", "rest_user": "allot",
                                    "token": TOKEN, "log_dir": str(tmp_path / "slurm-jobs")}}, 201)

    first = h.submit("team", gpu=1)
    began = time.monotonic()
    h.cycle()  # builds the Slurm engine, whose first inventory request hangs
    took_first = time.monotonic() - began
    assert h.job(first)["state"] in ("admitted", "running")
    # slurmrestd's own request timeout is 10 s: the loop waited only for the engine's answer time.
    assert took_first < 8.0, f"the first cycle took {took_first:.1f} s"
    hpc = h.get("/clusters/hpc")
    assert hpc["status"] == "unreachable" and f"did not answer within {ANSWER_S:g} s" in hpc["status_error"]

    # While the request still hangs, later cycles neither wait for it nor send another, even past the back-off.
    time.sleep(3.2)
    ids = []
    began = time.monotonic()
    for _ in range(3):
        ids.append(h.submit("team", gpu=1))
        h.cycle()
    took = time.monotonic() - began
    assert h.states(ids) == ["admitted"] * 3 or all(s in ("admitted", "running") for s in h.states(ids))
    assert took < 5.0, f"three cycles took {took:.1f} s while the Slurm engine hung"
    assert h.get("/clusters/hpc")["status"] == "unreachable"
