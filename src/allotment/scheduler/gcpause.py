"""Pause Python's cyclic garbage collector around a scheduler cycle.

A cycle allocates tens of thousands of small objects (decisions, running records, tuples), none of them cyclic
garbage. Left on, the collector runs every few hundred allocations and, once the queue is large, its older
generations walk every queued job again and again: 15 to 20 % of a 100,000-job cycle (benchmarks/README.md,
scheduler core). Reference counting still frees everything at once; the collector runs as usual after the cycle.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    """Disable the cyclic collector inside the block; re-enable it after only if it was enabled before (nesting and
    a caller that turned it off itself are respected)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


# Generation 0 collects after this many net allocations (CPython's default is 700). A server answering 500-job
# batches and running cycles over thousands of jobs allocates far more than that per request and per cycle, none of it
# cyclic garbage, so at 700 the collector ran dozens of times per batch for nothing (about a fifth of ingestion's CPU).
SERVER_GEN0_THRESHOLD = 10_000


def tune_for_server() -> None:
    """Called once by `allot server` after the app is built: move what exists at start-up (modules, the app, its
    routes and models) out of the collector's sight with gc.freeze(), so no collection walks it again, and raise the
    first generation's threshold. Reference counting frees everything as before; only cycles wait a little longer."""
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(SERVER_GEN0_THRESHOLD, gen1, gen2)


# How often the loop lets the collector see everything again (see CycleCollector): what cyclic garbage the loop
# makes waits at most this long. A full collection walks the whole heap, about 0.8 us an object: 0.13 s at 170,000
# objects, 0.46 s at 565,000 (the loop process during the large-scale benchmark), so it stays rare.
FULL_COLLECTION_EVERY_S = 600.0


class CycleCollector:
    """What the scheduler loop does with the collector after each cycle, while it is still paused.

    A busy cycle leaves tens of thousands of new long-lived objects (the new jobs' records, running records); the
    collector would walk each of them in its first generation, again in its second, and in every full collection
    after that, where it also walks the whole queue. Instead, once enough has been allocated, what the cycle left is
    frozen (moved out of the collector's sight) without being walked at all. Walking it found almost nothing to free:
    in the large-scale benchmark a busy cycle left about 18,000 objects and some 60 of them cyclic garbage (statements
    SQLAlchemy built for the cycle), where the walk cost about 10 ms, 7 % of the loop's CPU (benchmarks/README.md,
    eleventh round). Reference counting frees everything else at once, frozen or not; the cyclic garbage waits for the
    full collection that runs every FULL_COLLECTION_EVERY_S (everything unfrozen and collected), so nothing is held
    longer than that: at most a few hundred thousand small objects for a loop busy all that time."""

    def __init__(self, full_every_s: float = FULL_COLLECTION_EVERY_S) -> None:
        self.full_every_s = full_every_s
        self._last_full = time.monotonic()

    def after_cycle(self) -> None:
        if gc.get_count()[0] < gc.get_threshold()[0]:
            return
        now = time.monotonic()
        if now - self._last_full >= self.full_every_s:
            self._last_full = now
            gc.unfreeze()
            gc.collect()
        gc.freeze()
