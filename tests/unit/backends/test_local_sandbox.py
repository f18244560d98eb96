"""The local engine's isolation pieces: the bubblewrap sandbox (the mode of a server that is not root), the refusal
when a host offers no isolation, and the clean environment. tests/e2e/test_local_isolation.py shows the root mode
against a real server."""

from __future__ import annotations

import shutil
import time

import pytest

from allotment.backends import sandbox
from allotment.backends.base import Launch
from allotment.backends.local import LocalBackend
from allotment.backends.sandbox import BWRAP, Isolation, IsolationUnavailable, job_environment


def _wait(backend, job_id, timeout=20.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        for e in backend.poll(time.time()):
            if e.job_id == job_id and e.kind in ("succeeded", "failed"):
                return e
        time.sleep(0.05)
    raise AssertionError("job did not finish")


def test_under_bubblewrap_the_data_directory_and_other_jobs_are_hidden(tmp_path, monkeypatch):
    if shutil.which("bwrap") is None:
        pytest.fail("bubblewrap is needed: scripts/test.sh installs it (scripts/ensure-package.sh)")
    data = tmp_path / "var"
    (data / "jobs").mkdir(parents=True)
    (data / "secret_key").write_text("the-server-secret")
    work = tmp_path / "work"
    monkeypatch.setattr(sandbox.os, "geteuid", lambda: 1000)  # the mode of a server that is not root
    iso = Isolation.for_host(data, work)
    monkeypatch.undo()
    assert iso.mode == BWRAP
    iso.tighten()
    b = LocalBackend(data / "jobs", isolation=iso)
    b.launch(Launch(1, "echo mine > own.txt; sleep 30", admission="1"), time.time())
    deadline = time.time() + 10
    while not (work / "1" / "own.txt").exists() and time.time() < deadline:
        time.sleep(0.05)
    probe = (f'ls -A {data}; cat {data}/secret_key; ls -A {work}; cat {work}/1/own.txt; echo "home=$HOME"; '
             f'echo written > here.txt; echo done')
    b.launch(Launch(2, probe, admission="1"), time.time())
    assert _wait(b, 2).kind == "succeeded"
    log = (data / "jobs" / "job-2.log").read_text()
    assert "the-server-secret" not in log and "mine" not in log and "job-1.log" not in log
    assert "No such file or directory" in log  # an empty tmpfs where the data directory and other jobs are
    assert f"home={work / '2'}" in log and (work / "2" / "here.txt").read_text() == "written\n"
    b.close()


def test_a_host_without_root_or_bubblewrap_refuses_to_run_jobs(tmp_path, monkeypatch):
    monkeypatch.setattr(sandbox.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(sandbox.shutil, "which", lambda name: None)
    with pytest.raises(IsolationUnavailable, match="needs bubblewrap"):
        Isolation.for_host(tmp_path / "var")


def test_working_directories_never_inside_the_data_directory(tmp_path):
    with pytest.raises(IsolationUnavailable, match="must not contain one another"):
        Isolation.for_host(tmp_path / "var", tmp_path / "var" / "work")


def test_the_environment_is_what_the_job_declared_and_the_engines_own():
    env = job_environment({"EPOCHS": "3", "LD_PRELOAD": "/x.so", "ALLOT_SECRET_KEY": "x", "PATH": "/opt/bin"}, 7,
                          [2, 3], "/w/7", "job-7")
    assert env == {"EPOCHS": "3", "PATH": "/opt/bin", "LANG": "C.UTF-8", "HOME": "/w/7", "USER": "job-7",
                   "LOGNAME": "job-7", "ALLOT_JOB_ID": "7", "CUDA_VISIBLE_DEVICES": "2,3",
                   "NVIDIA_VISIBLE_DEVICES": "2,3"}
    assert job_environment({}, 1, [], None, None)["CUDA_VISIBLE_DEVICES"] == ""  # no GPU, rather than every GPU
    # Where the run's devices cgroup lets it open only its GPUs, CUDA numbers them from 0.
    bounded = job_environment({}, 7, [2, 3], None, None, renumber_cuda=True)
    assert (bounded["CUDA_VISIBLE_DEVICES"], bounded["NVIDIA_VISIBLE_DEVICES"]) == ("0,1", "2,3")


def test_the_server_environment_never_reaches_a_job_even_without_isolation(tmp_path, monkeypatch):
    monkeypatch.setenv("ALLOT_BOOTSTRAP_ADMIN_PASSWORD", "marker-password")
    b = LocalBackend(tmp_path)
    b.launch(Launch(1, "env", env={"DECLARED": "yes"}), time.time())
    assert _wait(b, 1).kind == "succeeded"
    log = (tmp_path / "job-1.log").read_text()
    assert "marker-password" not in log and "DECLARED=yes" in log
