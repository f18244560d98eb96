"""Storage folders mounted into local jobs: at <working directory>/<target>, readable, writable where read-write and
refused where read-only; in both isolation modes (uids of their own when the server is root, bubblewrap when not)."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from allotment.backends import sandbox
from allotment.backends.base import Launch
from allotment.backends.local import LocalBackend
from allotment.backends.sandbox import ACCOUNT, BWRAP, Isolation, IsolationUnavailable, folder_mounts
from allotment.storage.stores import LocalStore

SCRIPT = ("cat folders/in/data.txt; echo result > out/result.txt && echo wrote-rw; "
          "echo x > folders/in/new.txt 2>&1 || echo refused-ro; ls out; echo \"in=$ALLOT_FOLDER_IN\"")
MOUNTS = ({"folder_id": 1, "folder": "in", "root": None, "target": "folders/in", "read_only": True},
          {"folder_id": 2, "folder": "out", "root": None, "target": "out", "read_only": False})


def _wait(backend, job_id, timeout=20.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        for e in backend.poll(time.time()):
            if e.job_id == job_id and e.kind in ("succeeded", "failed"):
                return e
        time.sleep(0.05)
    raise AssertionError("job did not finish")


def _folders(data: Path) -> None:
    store = LocalStore(data / "folders")  # the default local host's directory
    store.create(1)
    store.create(2)
    staged = data / "staged"
    staged.write_text("input data\n")
    store.put(1, "data.txt", staged)


def _run(iso: Isolation, data: Path, work: Path) -> str:
    iso.tighten()
    backend = LocalBackend(data / "jobs", isolation=iso)
    backend.launch(Launch(1, SCRIPT, admission="1", mounts=MOUNTS), time.time())
    event = _wait(backend, 1)
    backend.close()
    log = (data / "jobs" / "job-1.log").read_text()
    assert event.kind == "succeeded", log
    return log


def _check(log: str, data: Path, work: Path) -> None:
    assert f"in={work / '1' / 'folders' / 'in'}" in log  # its path in the environment
    assert "input data" in log  # read through the mount
    assert "wrote-rw" in log and (data / "folders" / "2" / "result.txt").read_text() == "result\n"
    assert "Read-only file system" in log and "refused-ro" in log
    assert not (data / "folders" / "1" / "new.txt").exists()


def test_mounts_with_accounts_of_their_own(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("the root mode; the bubblewrap test below covers a server that is not root")
    data = tmp_path / "var"
    (data / "jobs").mkdir(parents=True)
    _folders(data)
    work = Path(tempfile.mkdtemp(prefix="allot-work-", dir="/var/tmp"))  # reachable by the job's uid
    try:
        iso = Isolation.for_host(data, work)
        assert iso.mode == ACCOUNT
        _check(_run(iso, data, work), data, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_mounts_under_bubblewrap(tmp_path, monkeypatch):
    if shutil.which("bwrap") is None:
        pytest.fail("bubblewrap is needed: scripts/test.sh installs it (scripts/ensure-package.sh)")
    data = tmp_path / "var"
    (data / "jobs").mkdir(parents=True)
    _folders(data)
    monkeypatch.setattr(sandbox.os, "geteuid", lambda: 1000)  # the mode of a server that is not root
    iso = Isolation.for_host(data, tmp_path / "work")
    monkeypatch.undo()
    assert iso.mode == BWRAP
    _check(_run(iso, data, tmp_path / "work"), data, tmp_path / "work")


def test_a_mount_target_stays_inside_the_working_directory(tmp_path):
    (tmp_path / "src").mkdir()
    for target in ("../escape", "/etc", ""):
        with pytest.raises(IsolationUnavailable, match="not inside the working directory"):
            folder_mounts(tmp_path / "work", ({"source": str(tmp_path / "src"), "target": target},))
    with pytest.raises(IsolationUnavailable, match="is missing"):
        folder_mounts(tmp_path / "work", ({"source": str(tmp_path / "gone"), "target": "x", "folder": "f"},))


def test_slurm_names_each_folder_by_its_path_on_the_shared_file_system(tmp_path):
    from allotment.backends.slurm import SlurmBackend, SlurmConfig
    from allotment.backends.slurm_client import SlurmCommands

    class NoSlurm(SlurmCommands):
        def nodes(self):
            return [{"name": "n1", "gres": "", "partitions": ["p"], "cpus": 4, "real_memory": 4096, "state": "idle"}]

    backend = SlurmBackend(SlurmConfig(log_dir=tmp_path / "logs", state_dir=tmp_path / "state"), api=NoSlurm())
    mounts = ({"folder_id": 3, "folder": "my-data", "target": "folders/my-data", "read_only": True,
               "cluster_path": "/shared/folders/3"},)
    spec = backend.job_spec(Launch(9, "ls", node="n1", cpu=1, admission="a", mounts=mounts))
    assert spec.environment["ALLOT_FOLDER_MY_DATA"] == "/shared/folders/3"
