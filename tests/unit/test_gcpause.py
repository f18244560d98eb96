"""The scheduler loop pauses the cyclic garbage collector around core's cycle, and always leaves it as it found it."""

import gc

import pytest

from allotment.scheduler.gcpause import gc_paused


@pytest.fixture(autouse=True)
def _collector_on():
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


def test_paused_inside_and_back_on_after_even_on_error():
    with gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), gc_paused():
        raise RuntimeError("a cycle failed")
    assert gc.isenabled()


def test_nested_and_interleaved_pauses_end_with_the_collector_on():
    outer = gc_paused()
    outer.__enter__()
    with gc_paused():  # a second loop's cycle inside the first one's
        assert not gc.isenabled()
    assert not gc.isenabled()  # the inner one found it off and left it off
    outer.__exit__(None, None, None)
    assert gc.isenabled()


def test_a_caller_that_turned_the_collector_off_keeps_it_off():
    gc.disable()
    with gc_paused():
        pass
    assert not gc.isenabled()
