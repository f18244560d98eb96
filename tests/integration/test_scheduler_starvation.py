"""No starvation, through the real path (settings -> loop -> core -> database -> simulated engine): a large job that
has waited longer than scheduler_starvation_age_s reserves the GPUs it waits for, so 1-GPU jobs stop overtaking it."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sched_helpers import Harness

from allotment.api.app import create_app
from conftest import ADMIN_PASSWORD, login, make_settings

AGE_S = 60.0


@pytest.fixture
def h(tmp_path, backend):
    app = create_app(make_settings(tmp_path, backend, scheduler_starvation_age_s=AGE_S))
    with TestClient(app) as client:
        h = Harness(client, login(client, "admin", ADMIN_PASSWORD))
        h.node("n0", gpus=4)
        for name in ("fill", "big", "small"):  # no guarantees: only capacity and the starvation rule decide
            h.quota(name, [])
        yield h


def test_an_aged_large_job_stops_small_jobs_from_overtaking_it(h):
    # three of the four GPUs are busy; they free one at a time (at about 10 s, 80 s and 120 s)
    fillers = [h.submit("fill", gpu=1, runtime_s=s) for s in (10, 80, 120)]
    h.settle(2)
    assert h.states(fillers) == ["running"] * 3

    big = h.submit("big", gpu=4, runtime_s=100)
    small = [h.submit("small", gpu=1, runtime_s=100)]
    h.cycle(1.0)
    # young: the big job waits for capacity and a 1-GPU job takes the free GPU
    assert h.states([big, small[0]]) == ["queued", "admitted"]
    assert h.job(big)["reason_code"] == "no_capacity"

    h.cycle(14.0)  # t = 15 s: a filler ended; the big job is still younger than the age, so it is overtaken again
    small.append(h.submit("small", gpu=1, runtime_s=100))
    h.cycle(0.5)
    assert h.states([big, small[1]]) == ["queued", "admitted"]

    h.cycle(70.0)  # t = 85 s: past the age, and another filler has ended: that GPU is now held for the big job
    small.append(h.submit("small", gpu=1, runtime_s=100))
    h.cycle(0.5)
    assert h.states([big, small[2]]) == ["queued", "queued"]
    waiting = h.job(small[2])
    assert waiting["reason_code"] == "reserved_for_starving_job"
    assert f"reserved for job {big} of quota big, queued for " in waiting["reason"]
    assert "(past the starvation age)" in waiting["reason"]

    h.cycle(40.0)  # t = 125 s: the last filler and the first two small jobs have ended: the big job runs first
    assert h.job(big)["state"] == "admitted"
    assert len(h.job(big)["placement"]["devices"]) == 4
    assert h.job(small[2])["state"] == "queued"
    assert h.states(fillers + small[:2]) == ["succeeded"] * 5
