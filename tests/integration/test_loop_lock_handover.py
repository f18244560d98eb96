"""The scheduler loop shares the interpreter lock with the request threads: starting it shortens CPython's switch
interval to scheduler.loop.SWITCH_INTERVAL_S, so that a thread coming back from the database waits at most that long
for a computing cycle to hand the lock over (5 ms per statement by default)."""

from __future__ import annotations

import statistics
import sys
import threading
import time

import pytest

from allotment.scheduler import loop


@pytest.fixture
def default_interval():
    before = sys.getswitchinterval()
    sys.setswitchinterval(0.005)
    yield
    sys.setswitchinterval(before)


def handover_ms(rounds: int = 40) -> float:
    """Median time a thread takes to get the lock back from a sleep of 0.1 ms while another thread computes."""
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            sum(range(1000))

    worker = threading.Thread(target=spin, daemon=True)
    worker.start()
    try:
        times = []
        for _ in range(rounds):
            began = time.perf_counter()
            time.sleep(0.0001)
            times.append((time.perf_counter() - began) * 1000)
    finally:
        stop.set()
        worker.join()
    return statistics.median(times)


def test_starting_the_loop_bounds_the_wait_for_the_interpreter_lock(app, default_interval):
    slow = handover_ms()
    scheduler = loop.start_scheduler(app.state.allot)
    try:
        assert sys.getswitchinterval() == loop.SWITCH_INTERVAL_S
        fast = handover_ms()
    finally:
        scheduler.stop()
    assert fast < slow
