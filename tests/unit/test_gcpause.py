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


def _in_child(code: str) -> list:
    import json
    import subprocess
    import sys

    return json.loads(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                                     text=True).stdout)


def test_after_a_busy_cycle_its_objects_are_frozen_unwalked_and_its_cyclic_garbage_waits_for_the_full_collection():
    # What a busy cycle leaves is moved out of the collector's sight without a collection walking it (it would find
    # almost nothing to free); its cyclic garbage (here a self-referencing object, as SQLAlchemy's statements are) is
    # freed by the next full collection, due every full_every_s.
    code = """
import gc, json, time, weakref
from allotment.scheduler.gcpause import CycleCollector
class Node:
    pass
gc.disable()
collections = []
gc.callbacks.append(lambda phase, info: phase == "start" and collections.append(info["generation"]))
collector = CycleCollector(full_every_s=60)
before = gc.get_freeze_count()
garbage = Node(); garbage.me = garbage; probe = weakref.ref(garbage); del garbage
kept = [[i] for i in range(20000)]
collector.after_cycle()
frozen, walked, waiting = gc.get_freeze_count() - before >= 20000, list(collections), probe() is not None
collector._last_full -= 61
more = [[i] for i in range(20000)]
collector.after_cycle()
print(json.dumps([frozen, walked, waiting, collections, probe() is None, gc.get_count()[0]]))
"""
    frozen, walked, waiting, collections, freed, young = _in_child(code)
    assert frozen and walked == [] and waiting
    assert collections == [2]  # the full collection, and only it
    assert freed and young < 100


def test_a_small_cycle_leaves_the_collector_alone_and_a_full_collection_comes_back_on_time():
    # Below the first generation's threshold nothing runs (a quiet cycle costs nothing). An object frozen while alive
    # that later becomes cyclic garbage is freed by the periodic full collection, not held for ever.
    code = """
import gc, json, time, weakref
from allotment.scheduler import gcpause
class Node:
    pass
gc.disable()
collector = gcpause.CycleCollector(full_every_s=3600)
held = Node(); held.me = held; probe = weakref.ref(held)
filler = [[i] for i in range(20000)]
collector.after_cycle()
frozen_once = gc.get_freeze_count()
del held
small = [[i] for i in range(10)]
collector.after_cycle()
untouched = gc.get_freeze_count() == frozen_once and probe() is not None
filler2 = [[i] for i in range(20000)]
collector.after_cycle()
still_held = probe() is not None
collector._last_full -= 3601
filler3 = [[i] for i in range(20000)]
collector.after_cycle()
print(json.dumps([untouched, still_held, probe() is None]))
"""
    untouched, still_held, freed_by_full = _in_child(code)
    assert untouched
    assert still_held  # frozen: the young collections do not see it
    assert freed_by_full
