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


def test_the_server_tuning_freezes_what_exists_and_raises_the_first_threshold():
    # In a child interpreter: freezing and thresholds are process-wide and must not leak into the test session.
    import json
    import subprocess
    import sys

    code = ("import gc, json; from allotment.scheduler.gcpause import tune_for_server, SERVER_GEN0_THRESHOLD;"
            "before = gc.get_freeze_count(); keep = [[i] for i in range(5000)]; tune_for_server();"
            "print(json.dumps([before, gc.get_freeze_count(), gc.get_threshold()[0], SERVER_GEN0_THRESHOLD]))")
    before, frozen, gen0, wanted = json.loads(subprocess.run([sys.executable, "-c", code], check=True,
                                                             capture_output=True, text=True).stdout)
    assert before == 0 and frozen >= 5000
    assert gen0 == wanted > 700
