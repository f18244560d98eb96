"""Pause Python's cyclic garbage collector around a scheduler cycle.

A cycle allocates tens of thousands of small objects (decisions, running records, tuples), none of them cyclic
garbage. Left on, the collector runs every few hundred allocations and, once the queue is large, its older
generations walk every queued job again and again: 15 to 20 % of a 100,000-job cycle (benchmarks/README.md,
scheduler core). Reference counting still frees everything at once; the collector runs as usual after the cycle.
"""

from __future__ import annotations

import gc
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
