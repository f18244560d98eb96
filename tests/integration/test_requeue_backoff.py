"""A preempted borrower's requeue backoff (core rule 4) holds across what rebuilds the scheduler's state: a
configuration change builds a new state from the database, which must not forget who was preempted."""

from __future__ import annotations

from sched_helpers import Harness


def test_the_backoff_survives_a_configuration_change(client, admin_headers):
    h = Harness(client, admin_headers)
    h.node("gpu-01", gpus=4, model="H100")
    h.quota("low", [{"resource": "gpu", "guarantee": 0, "limit": 4}])
    h.quota("high", [{"resource": "gpu", "guarantee": 4, "limit": 4}], reclaim="any")
    victim = h.submit("low", gpu=4, runtime_s=5000)
    h.settle(2, 1.0)
    h.submit("high", gpu=4, runtime_s=10)
    h.settle(4, 1.0)
    h.settle(10, 2.0)  # the reclaiming job has finished: the pool is free
    assert h.job(victim)["preemptions"] == 1
    assert (h.job(victim)["state"], h.job(victim)["reason_code"]) == ("queued", "requeue_backoff")
    h.quota("elsewhere", [{"resource": "gpu", "guarantee": 0, "limit": 1}])  # a new configuration version
    h.settle(3, 1.0)
    assert (h.job(victim)["state"], h.job(victim)["reason_code"]) == ("queued", "requeue_backoff")
    h.settle(4, 200.0)  # past the backoff (600 s)
    assert h.job(victim)["state"] in ("admitted", "running")
