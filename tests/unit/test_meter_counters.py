"""Meter.record_all (scheduler/metering.py) adds a cycle's intervals to the GPU- and CPU-seconds counters per cluster:
device amounts times the seconds held, nothing for an interval that ended before it began."""

import pytest
from prometheus_client import CollectorRegistry

from allotment.scheduler.metering import Meter, Usage


def test_counters_per_cluster():
    registry = CollectorRegistry()
    meter = Meter(registry)
    meter.record_all([Usage(1, "a", 1, 1, "succeeded", 100.0, 110.0, 500, 2000),
                      Usage(2, "a", 1, 1, "preempted", 100.0, 104.0, 0, 1000),
                      Usage(3, "b", 2, 2, "failed", 50.0, 51.5, 2000, 0),
                      Usage(4, "b", 2, 2, "cancelled", 60.0, 59.0, 1000, 1000)])  # clock went back: counts nothing
    meter.record_all([Usage(5, "a", 1, 1, "succeeded", 0.0, 1.0, 1000, 1000)])
    value = registry.get_sample_value
    assert value("allot_gpu_seconds_total", {"cluster": "a"}) == pytest.approx(0.5 * 10 + 1.0)
    assert value("allot_cpu_seconds_total", {"cluster": "a"}) == pytest.approx(2.0 * 10 + 1.0 * 4 + 1.0)
    assert value("allot_gpu_seconds_total", {"cluster": "b"}) == pytest.approx(2.0 * 1.5)
    assert value("allot_cpu_seconds_total", {"cluster": "b"}) == pytest.approx(0.0)
