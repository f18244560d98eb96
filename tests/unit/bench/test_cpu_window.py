"""`allot bench scenario` reports the CPU each part of the run spent in its window (bench/cpu.py): the client, the
server it started and the server's scheduler loop process apart, children that ended inside the window included,
nothing from before it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import pytest

from allotment.bench.cpu import SCHEDULER_PROCESS, CpuWindow

# A process that waits for a go file, burns `spin` seconds of CPU, starts `child` (another such script, given a
# marker argument) or not, then sleeps until killed.
SCRIPT = textwrap.dedent("""
    import os, subprocess, sys, time
    go, spin, child, marker = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4:]
    while not os.path.exists(go):
        time.sleep(0.01)
    start = time.process_time()
    while time.process_time() - start < spin:
        pass
    if child == "loop":  # a long-lived child with the scheduler's command line
        subprocess.Popen([sys.executable, __file__, go, "0.4", "-", "allotment.scheduler.process"])
    elif child == "ended":  # a child that ends and is waited for inside the window
        subprocess.run([sys.executable, __file__, go, "0.3", "-", "exit"])
    if marker == ["exit"]:
        sys.exit(0)
    open(go + f".{os.getpid()}", "w").close()
    time.sleep(60)
""")


def run_window(tmp_path, child: str) -> dict:
    script = tmp_path / "burn.py"
    script.write_text(SCRIPT)
    go = tmp_path / "go"
    root = subprocess.Popen([sys.executable, str(script), str(go), "0.3", child])
    try:
        window = CpuWindow({"server": root.pid, "client": os.getpid()})
        time.sleep(0.3)  # the interpreters' start-up falls before the window
        window.start()
        go.touch()
        deadline = time.monotonic() + 60
        wanted = 2 if child == "loop" else 1  # processes that reached their sleep
        while len(list(tmp_path.glob("go.*"))) < wanted and time.monotonic() < deadline:
            time.sleep(0.05)
        window.stop()
        return window.report()
    finally:
        for pid in [int(p.suffix[1:]) for p in tmp_path.glob("go.*")]:
            try:
                os.kill(pid, 9)
            except OSError:
                pass
        root.kill()
        root.wait()


def test_the_scheduler_process_is_its_own_part_and_the_server_leaves_it_out(tmp_path):
    report = run_window(tmp_path, "loop")
    seconds = report["seconds"]
    assert 0.25 <= seconds["scheduler"] < 0.6  # the child's 0.4 s and its start-up
    assert 0.25 <= seconds["server"] < 0.45  # the root's 0.3 s only
    assert set(seconds) == {"server", "scheduler", "client"}
    assert seconds["client"] < 0.2  # this process started the server: the server's CPU is not the client's
    assert report["cores"] == os.cpu_count() and report["window_s"] > 0
    assert report["share"] == pytest.approx(sum(seconds.values()) / (report["cores"] * report["window_s"]), abs=0.02)
    assert SCHEDULER_PROCESS == "allotment.scheduler.process"


def test_a_child_that_ended_inside_the_window_counts_and_nothing_before_it_does(tmp_path):
    seconds = run_window(tmp_path, "ended")["seconds"]
    assert 0.55 <= seconds["server"] < 0.9  # the root's 0.3 s and its child's 0.3 s, reaped by it
    assert "scheduler" not in seconds
