"""Reading job requests: the GPU shape rule, quantities and durations."""

from __future__ import annotations

import pytest

from allotment.workloads.requests import gpu_problem, parse_duration, parse_request


@pytest.mark.parametrize("raw, problem", [
    (10, None), (100, None), (250, None), (470, None), (500, None), (810, None), (900, None), (1000, None),
    (4000, None), (64000, None),
    (5, "fractional GPUs go in steps of 0.01 (got 0.005)"),
    (255, "fractional GPUs go in steps of 0.01 (got 0.255)"),
    (1500, "above one GPU ask for whole GPUs (got 1.5)"),
    (2100, "above one GPU ask for whole GPUs (got 2.1)"),
])
def test_gpu_shape(raw, problem):
    found = gpu_problem(raw)
    assert (found is None) if problem is None else found.startswith(problem)


@pytest.mark.parametrize("value, resource, raw, ok", [
    ("4", "gpu", 4000, True), (0.5, "gpu", 500, True), ("16Gi", "memory", 16 * 2**30, True),
    ("500m", "cpu", 500, True), (None, "cpu", 0, True), ("", "memory", 0, True),
    ("unlimited", "gpu", 0, False), ("-1", "cpu", 0, False), ("0.05", "gpu", 50, True), ("0.47", "gpu", 470, True), ("0.005", "gpu", 0, False), ("12XB", "memory", 0, False),
])
def test_parse_request(value, resource, raw, ok):
    amount, problem = parse_request(resource, value, resource)
    assert (problem is None) == ok
    assert amount == raw


@pytest.mark.parametrize("value, seconds", [
    (3600, 3600), ("3600", 3600), ("90s", 90), ("30m", 1800), ("2h", 7200), ("1h30m", 5400), ("1d", 86400),
    ("1.5h", 5400), (None, None),
])
def test_durations(value, seconds):
    assert parse_duration(value) == (seconds, None)


@pytest.mark.parametrize("value, message", [
    ("soon", "cannot read 'soon' as a duration"), ("2x", "cannot read"), ("0", "must be longer than zero"),
    (-5, "must be longer than zero"), ("400d", "must be at most 366 days"), (True, "must be a duration"),
    ("2h and 3m", "cannot read"),
])
def test_bad_durations(value, message):
    seconds, problem = parse_duration(value)
    assert seconds is None and problem.startswith(message)
