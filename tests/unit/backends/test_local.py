import time

from allotment.backends.base import Launch
from allotment.backends.local import LocalBackend


def _wait(backend, job_id, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        for e in backend.poll(time.time()):
            if e.job_id == job_id and e.kind in ("succeeded", "failed"):
                return e
        time.sleep(0.05)
    raise AssertionError("job did not finish")


def test_runs_a_real_process_with_its_devices_and_log(tmp_path):
    b = LocalBackend(tmp_path)
    b.launch(Launch(7, 'echo "gpus=$CUDA_VISIBLE_DEVICES job=$ALLOT_JOB_ID"', devices=((1, 1000), (3, 1000))),
             now=time.time())
    e = _wait(b, 7)
    assert e.kind == "succeeded" and e.exit_code == 0
    assert (tmp_path / "job-7.log").read_text().strip() == "gpus=1,3 job=7"


def test_failure_exit_code_and_time_limit(tmp_path):
    b = LocalBackend(tmp_path)
    b.launch(Launch(1, "exit 3"), now=time.time())
    e = _wait(b, 1)
    assert (e.kind, e.exit_code) == ("failed", 3)
    b.launch(Launch(2, "sleep 30", time_limit_s=0.2), now=time.time())
    e = _wait(b, 2)
    assert e.kind == "failed" and e.message == "time limit reached"


def test_cancel_stops_the_process(tmp_path):
    b = LocalBackend(tmp_path)
    b.launch(Launch(1, "sleep 30"), now=time.time())
    b.cancel(1, time.time())
    assert [e.kind for e in b.poll(time.time())] == ["started"]
    b.close()


def test_inventory_reports_this_host(tmp_path):
    node = LocalBackend(tmp_path, node_name="here").inventory()[0]
    assert node.name == "here" and node.cpu >= 1 and node.memory_mib > 0


def test_idle_bookkeeping_follows_the_cpu_time_of_the_process_group(tmp_path):
    """`sleep` uses no CPU after it starts: idle since the sample that saw its start-up. A CPU loop, even in a child
    of the job's shell, is busy at every sample."""
    b = LocalBackend(tmp_path)
    start = time.time()
    try:
        b.launch(Launch(1, "sleep 30"), now=start)
        b.launch(Launch(2, "(while :; do :; done) & wait"), now=start)  # the busy loop runs in a subshell
        b.launch(Launch(3, "while :; do :; done"), now=start)
        time.sleep(0.5)
        first = time.time()
        assert b.idle_since(1, first) <= first
        assert b.idle_since(2, first) == first and b.idle_since(3, first) == first
        time.sleep(1.5)
        later = time.time()
        idle_from = b.idle_since(1, later)
        assert idle_from is not None and later - idle_from >= 1.4  # no CPU time since the first sample at the latest
        assert b.idle_since(2, later) == later and b.idle_since(3, later) == later
        assert b.idle_since(99, later) is None  # not a job of this engine
        b.cancel(2, later)
        assert b.idle_since(2, later) is None  # forgotten once stopped
    finally:
        b.close()
    assert b.idle_since(1, time.time()) is None


def test_only_engines_that_can_tell_are_asked_about_idleness(tmp_path):
    from allotment.backends.base import reports_idleness
    from allotment.backends.simulated import SimulatedBackend

    class Legacy:  # an engine written before idle reporting existed
        name = "legacy"

    sim = SimulatedBackend()
    sim.launch(Launch(1, "x", duration_s=60.0), now=0.0)
    assert sim.idle_since(1, 30.0) is None  # a simulated job is always busy
    assert [reports_idleness(x) for x in (LocalBackend(tmp_path), sim, Legacy())] == [True, False, False]
