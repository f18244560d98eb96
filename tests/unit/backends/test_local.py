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
