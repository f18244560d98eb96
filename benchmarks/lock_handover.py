"""How long a thread back from I/O waits for the interpreter lock while another thread computes, at CPython's
default switch interval (5 ms) and at the one the scheduler loop sets when it starts (scheduler.loop.SWITCH_INTERVAL_S).

A request thread's database call gives the lock up; coming back, it waits until the computing thread (the loop's
cycle) hands the lock over, which CPython does once per switch interval. The sleep of 0.1 ms stands for a quick
statement. Rounds alternate the two intervals so that load from other processes falls on both alike.

    .venv/bin/python benchmarks/lock_handover.py [--rounds 5] [--samples 200]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time

from allotment.scheduler.loop import SWITCH_INTERVAL_S

DEFAULT_S = 0.005


def handover_ms(samples: int) -> list[float]:
    stop = threading.Event()

    def compute() -> None:
        while not stop.is_set():
            sum(range(1000))

    worker = threading.Thread(target=compute, daemon=True)
    worker.start()
    try:
        times = []
        for _ in range(samples):
            began = time.perf_counter()
            time.sleep(0.0001)
            times.append((time.perf_counter() - began) * 1000)
        return times
    finally:
        stop.set()
        worker.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--samples", type=int, default=200)
    args = parser.parse_args()
    before = sys.getswitchinterval()
    results: dict[str, list[float]] = {"default_5ms": [], "loop_1ms": []}
    try:
        for _ in range(args.rounds):
            for name, interval in (("default_5ms", DEFAULT_S), ("loop_1ms", SWITCH_INTERVAL_S)):
                sys.setswitchinterval(interval)
                results[name].extend(handover_ms(args.samples))
    finally:
        sys.setswitchinterval(before)
    report = {}
    for name, times in results.items():
        ordered = sorted(times)
        report[name] = {"median_ms": round(statistics.median(ordered), 3),
                        "p90_ms": round(ordered[int(len(ordered) * 0.9)], 3),
                        "max_ms": round(ordered[-1], 3), "samples": len(ordered)}
    report["median_ratio"] = round(report["default_5ms"]["median_ms"] / report["loop_1ms"]["median_ms"], 2)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
