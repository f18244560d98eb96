"""The scheduler loop shares the interpreter lock with the request threads: starting it shortens CPython's switch
interval to scheduler.loop.SWITCH_INTERVAL_S, so that a thread coming back from the database waits at most that long
for a computing cycle to hand the lock over (5 ms per statement by default). What the shorter interval buys is
measured by benchmarks/lock_handover.py, not here: a timing compared inside a test on a loaded machine decides
nothing."""

from __future__ import annotations

import sys

import pytest

from allotment.scheduler import loop


@pytest.fixture
def interval():
    before = sys.getswitchinterval()
    yield sys.setswitchinterval
    sys.setswitchinterval(before)


def test_starting_the_loop_shortens_the_default_switch_interval(app, interval):
    interval(0.005)
    scheduler = loop.start_scheduler(app.state.allot)
    try:
        assert sys.getswitchinterval() == pytest.approx(loop.SWITCH_INTERVAL_S)
    finally:
        scheduler.stop()


def test_starting_the_loop_keeps_a_shorter_interval_a_site_has_set(app, interval):
    interval(0.0002)
    scheduler = loop.start_scheduler(app.state.allot)
    try:
        assert sys.getswitchinterval() == pytest.approx(0.0002)
    finally:
        scheduler.stop()
