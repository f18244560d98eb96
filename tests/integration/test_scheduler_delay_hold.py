"""The preemption delay's hold through the real path (API -> loop -> core -> database -> simulated engine): while a
higher-priority job waits out its preemption delay, the lower-priority jobs of its quota that it would preempt then
do not start on the capacity it waits for, and the API says why; the capacity drains to it and nothing is
preempted."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sched_helpers import Harness

# Long enough that no cycle of the test reaches it, whatever the machine's speed (the harness's clock and the
# submission stamps drift apart under load): the hold is what is tested, not the preemption after it.
DELAY_S = 3600.0


@pytest.fixture
def h(client, admin_headers) -> Harness:
    h = Harness(client, admin_headers)
    h.scheduler.config = replace(h.scheduler.config, preemption_delay_s=DELAY_S)
    h.node("n0", gpus=4)
    h.quota("team", [{"resource": "gpu", "guarantee": 4, "limit": 4}], within_quota_preemption="lower_priority")
    return h


def test_lower_priority_jobs_wait_while_the_gpus_drain_to_the_urgent_job(h):
    fillers = [h.submit("team", gpu=1, priority_class="training", runtime_s=s) for s in (10, 20, 30, 40)]
    h.settle(2, advance=1.0)
    assert h.states(fillers) == ["running"] * 4

    urgent = h.submit("team", gpu=4, priority_class="inference", runtime_s=100)
    small = h.submit("team", gpu=1, priority_class="training", runtime_s=100)
    h.cycle(0.5)
    assert h.job(urgent)["reason_code"] == "limit_reached"
    assert h.job(small)["reason_code"] == "limit_reached"  # the quota is full: that is what stops it

    h.cycle(10.0)  # the first filler has ended: one GPU is free under the quota's limit, and held
    h.cycle(0.5)
    assert h.states([urgent, small]) == ["queued", "queued"]
    waiting = h.job(small)
    assert waiting["reason_code"] == "held_for_preempting_job"
    assert f"held for job {urgent} of quota team (priority " in waiting["reason"]
    assert "once it has been queued 3600 s (the preemption delay)" in waiting["reason"]

    h.cycle(30.0)  # every filler has ended: the urgent job runs, having preempted nothing
    h.cycle(0.5)
    assert h.job(urgent)["state"] in ("admitted", "running")
    assert h.job(small)["state"] == "queued"
    assert [h.job(f)["preemptions"] for f in fillers] == [0, 0, 0, 0]
    assert h.states(fillers) == ["succeeded"] * 4
