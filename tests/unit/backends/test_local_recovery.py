"""The local engine across restarts of the server: each test abandons an engine (as a killed server would) and opens
a new one on the same jobs directory. Real processes throughout."""

import os
import time
from pathlib import Path

from allotment.backends.base import ENDED, LOST, RUNS, UNKNOWN, Launch
from allotment.backends.local import LocalBackend


def _wait_end(backend, job_id, timeout=15.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        for e in backend.poll(time.time()):
            if e.job_id == job_id and e.kind in ("succeeded", "failed"):
                return e
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not end")


def _wait_file(path: Path, timeout=10.0) -> str:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if path.exists() and path.read_text().strip():
            return path.read_text()
        time.sleep(0.02)
    raise AssertionError(f"{path} was not written")


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for its parent to reap it counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _pid_of(tmp_path: Path, job_id: int, admission: str = "1") -> int:
    import json
    path = tmp_path / str(job_id) / admission / "pid.json"
    _wait_file(path)
    return json.loads(path.read_text())["pid"]


def test_a_new_engine_adopts_a_running_job_and_reports_its_real_exit_code(tmp_path):
    old = LocalBackend(tmp_path)
    launch = Launch(1, "sleep 1.5; exit 7", admission="1")
    old.launch(launch, time.time())
    _pid_of(tmp_path, 1)  # running
    new = LocalBackend(tmp_path)  # the server was killed: a new engine, the old one never used again
    found = new.reattach(launch, time.time())
    assert found.state == RUNS and found.started_at is not None and found.handle
    e = _wait_end(new, 1)
    assert (e.kind, e.exit_code) == ("failed", 7) and e.message == "exited with code 7"


def test_launching_again_after_a_restart_never_runs_the_command_twice(tmp_path):
    out = tmp_path / "ran.txt"
    launch = Launch(2, f'echo "$ALLOT_JOB_ID" >> {out}; sleep 1', admission="5")
    LocalBackend(tmp_path).launch(launch, time.time())
    _wait_file(out)
    new = LocalBackend(tmp_path)
    new.launch(launch, time.time())  # the restarted loop launches what the database still calls admitted
    e = _wait_end(new, 2)
    assert e.kind == "succeeded"
    assert out.read_text() == "2\n"
    # A new admission of the same job (requeued after preemption) is a new run: it runs again.
    again = LocalBackend(tmp_path)
    again.launch(Launch(2, launch.command, admission="6"), time.time())
    assert _wait_end(again, 2).kind == "succeeded"
    assert out.read_text() == "2\n2\n"


def test_two_wrappers_racing_for_one_run_start_it_once(tmp_path):
    out = tmp_path / "ran.txt"
    launch = Launch(3, f"echo x >> {out}; sleep 0.5", admission="1")
    engines = [LocalBackend(tmp_path) for _ in range(3)]
    for b in engines:  # three engines that all believe they must start it, at the same moment
        b._start(launch, b.run_dir(3, "1"), time.time())
    for b in engines:
        assert _wait_end(b, 3).kind == "succeeded"
    assert out.read_text() == "x\n"


def test_what_ended_while_no_engine_ran_is_reported_from_the_record(tmp_path):
    LocalBackend(tmp_path).launch(Launch(4, "exit 3", admission="1"), time.time())
    _wait_file(tmp_path / "4" / "1" / "exit.json")
    found = LocalBackend(tmp_path).reattach(Launch(4, "exit 3", admission="1"), time.time())
    assert (found.state, found.exit_code, found.message) == (ENDED, 3, "exited with code 3")
    assert found.ended_at is not None and found.started_at is not None
    assert LocalBackend(tmp_path).reattach(Launch(9, "true", admission="1"), time.time()).state == UNKNOWN


def test_a_run_whose_processes_died_without_a_record_is_lost(tmp_path):
    import json
    import signal
    old = LocalBackend(tmp_path)
    old.launch(Launch(5, "sleep 30", admission="1"), time.time())
    pgid = _pid_of(tmp_path, 5)
    wrapper = json.loads(_wait_file(tmp_path / "5" / "1" / "started.json"))["wrapper_pid"]
    os.kill(wrapper, signal.SIGKILL)  # the host's OOM killer, say: nobody writes the exit code
    os.killpg(pgid, signal.SIGKILL)
    old._runs[5].wrapper.wait()
    deadline = time.time() + 5
    while _alive(pgid) and time.time() < deadline:
        time.sleep(0.02)
    found = LocalBackend(tmp_path).reattach(Launch(5, "sleep 30", admission="1"), time.time())
    assert found.state == LOST and "exit status is unknown" in found.message


def test_an_adopted_job_can_be_cancelled_and_keeps_its_time_limit(tmp_path):
    LocalBackend(tmp_path).launch(Launch(6, "sleep 30", admission="1"), time.time())
    LocalBackend(tmp_path).launch(Launch(7, "sleep 30", time_limit_s=1.5, admission="1"), time.time())
    pid6, pid7 = _pid_of(tmp_path, 6), _pid_of(tmp_path, 7)
    new = LocalBackend(tmp_path)
    assert new.reattach(Launch(6, "sleep 30", admission="1"), time.time()).state == RUNS
    assert new.reattach(Launch(7, "sleep 30", time_limit_s=1.5, admission="1"), time.time()).state == RUNS
    assert new.idle_since(6, time.time()) is not None  # idle sampling follows the adopted process group
    new.cancel(6, time.time())
    assert not _alive(pid6)
    e = _wait_end(new, 7)  # the deadline set at the first launch holds
    assert (e.kind, e.message) == ("failed", "time limit reached") and not _alive(pid7)


def test_orphans_are_stopped_and_holding_runs_kept(tmp_path):
    LocalBackend(tmp_path).launch(Launch(8, "sleep 30", admission="1"), time.time())
    LocalBackend(tmp_path).launch(Launch(9, "sleep 30", admission="1"), time.time())
    pid8, pid9 = _pid_of(tmp_path, 8), _pid_of(tmp_path, 9)
    new = LocalBackend(tmp_path)
    stopped = new.stop_orphans({9: "1"}, time.time())  # job 8 was cancelled while its stop was not delivered
    assert len(stopped) == 1 and stopped[0].startswith("job 8 ")
    assert not _alive(pid8) and _alive(pid9)
    assert new.reattach(Launch(8, "sleep 30", admission="1"), time.time()).state == ENDED
    new.reattach(Launch(9, "sleep 30", admission="1"), time.time())
    new.close()
    assert not _alive(pid9)


def test_leftover_processes_of_a_job_end_with_it(tmp_path):
    b = LocalBackend(tmp_path)
    b.launch(Launch(10, f"sleep 30 & echo $! > {tmp_path}/bg.pid; exit 0", admission="1"), time.time())
    assert _wait_end(b, 10).kind == "succeeded"
    bg = int(_wait_file(tmp_path / "bg.pid"))
    deadline = time.time() + 5
    while _alive(bg) and time.time() < deadline:
        time.sleep(0.02)
    assert not _alive(bg)
