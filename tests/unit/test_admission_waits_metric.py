"""The time-to-admission histogram (accounting/metrics.py) is a collector of its own that counts a cycle's waits in
one pass: its exposition must be what prometheus_client's Histogram gives for the same waits (less `_created`)."""

import random

from prometheus_client import CollectorRegistry, Histogram, generate_latest

from allotment.accounting.metrics import WAIT_BUCKETS, AdmissionWaits


def samples(registry: CollectorRegistry) -> list[str]:
    return sorted(line for line in generate_latest(registry).decode().splitlines()
                  if not line.startswith("#") and "_created" not in line)


def test_the_same_exposition_as_a_histogram():
    rng = random.Random(7)
    waits = [(rng.choice(["a", "b"]), rng.choice(["q1", "q2", "q3"]), rng.choice(
        [0.0, 0.1, 0.5, 1.0, 86400.0, -2.0, 1e9, rng.uniform(0, 100), rng.uniform(0, 90000)])) for _ in range(2000)]
    ours = CollectorRegistry()
    collector = AdmissionWaits(ours)
    for i in range(0, len(waits), 300):  # a cycle's waits at a time
        collector.observe(waits[i:i + 300])
    theirs = CollectorRegistry()
    histogram = Histogram("allot_time_to_admission_seconds", "wait from submission to admission",
                          ["cluster", "quota"], buckets=WAIT_BUCKETS, registry=theirs)
    for cluster, quota, seconds in waits:
        histogram.labels(cluster, quota).observe(max(seconds, 0.0))
    assert samples(ours) == samples(theirs)
    assert 'allot_time_to_admission_seconds_bucket{cluster="a",le="0.1",quota="q1"}' in "\n".join(samples(ours))


def test_nothing_observed_yet():
    registry = CollectorRegistry()
    AdmissionWaits(registry)
    assert samples(registry) == []
