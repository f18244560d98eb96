"""The outage guard every remote engine's calls go through: a hung engine costs the caller a bounded wait once, then
nothing, until it answers again (the scheduler loop calls engines from its one thread)."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from allotment.backends.remote import OutageGuard


class Down(Exception):
    """The engine's "unavailable" error."""


def guard(answer_s: float = 0.2, probe_s: float = 0.05, backoff_s: float = 0.0) -> OutageGuard:
    return OutageGuard("Engine", Down, logging.getLogger("test"), backoff_s=backoff_s, answer_s=answer_s,
                       probe_s=probe_s)


def timed(fn, *args):
    began = time.monotonic()
    try:
        return fn(*args), time.monotonic() - began
    except Down as exc:
        return exc, time.monotonic() - began


def test_a_call_that_answers_returns_its_result_and_errors_pass_through():
    g = guard()
    assert g.call(lambda a, b: a + b, 2, 3) == 5
    with pytest.raises(ValueError, match="refused"):  # an answer that is an error is not an outage
        g.call(lambda: (_ for _ in ()).throw(ValueError("refused")))
    assert g.outage is None
    g.close()


def test_a_hung_call_costs_one_bounded_wait_then_calls_fail_at_once_until_it_answers():
    g = guard(answer_s=0.2)
    release = threading.Event()
    out, took = timed(g.call, release.wait)
    assert isinstance(out, Down) and "did not answer within 0.2 s" in str(out)
    assert 0.15 <= took < 2.0
    assert g.outage is not None and "did not answer" in g.outage[1]
    # While that call still hangs, every later call (reads and writes alike) fails at once.
    for _ in range(5):
        out, took = timed(g.call, lambda: "never run")
        assert isinstance(out, Down) and took < 0.1
    # It answers: the outage ends without anyone waiting for it, and calls go through again.
    release.set()
    deadline = time.monotonic() + 2
    while g.outage is not None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert g.outage is None
    assert g.call(lambda: "again") == "again"
    g.close()


def test_during_an_outage_a_probe_waits_only_briefly_and_a_late_failure_keeps_the_outage():
    g = guard(answer_s=0.5, probe_s=0.05)
    out, _ = timed(g.call, lambda: (_ for _ in ()).throw(Down("connection refused")))
    assert isinstance(out, Down) and g.outage is not None and g.outage[1] == "connection refused"
    since = g.outage[0]
    slow = threading.Event()

    def hangs_then_fails():
        slow.wait()
        raise Down("still refused")

    out, took = timed(g.call, hangs_then_fails)
    assert isinstance(out, Down) and took < 0.4  # a probe, not the full answer time
    slow.set()
    deadline = time.monotonic() + 2
    while g.outage is not None and g.outage[1] != "still refused" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert g.outage is not None and g.outage == (since, "still refused")  # the same outage, its latest error
    g.close()


def test_a_call_that_fails_fast_during_the_backoff_does_not_reach_the_engine():
    g = guard(backoff_s=60.0)
    calls = []
    with pytest.raises(Down):
        g.call(lambda: (_ for _ in ()).throw(Down("down")))
    with pytest.raises(Down, match="down"):
        g.call(lambda: calls.append(1))
    assert calls == []
    g.close()
