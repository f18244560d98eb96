"""Slurm jobs run as their owner's mapped account (SlurmConfig.accounts): through slurmrestd's X-SLURM-USER-NAME
header with a token of root (SlurmUser here), or `sbatch --uid` from a root server. Owners not in the map run as
'*' when it is set, else as the token's user, as before. A token of an ordinary user may not speak for another:
Slurm refuses the job, and only that job fails.
"""

from __future__ import annotations

import itertools
import os
import pwd
import subprocess
import time
from pathlib import Path

import pytest

from allotment.backends.base import Launch
from allotment.backends.slurm import SlurmBackend, SlurmConfig
from allotment.backends.slurm_client import SlurmError
from e2e.engines import job_log_dir, slurm_env

pytestmark = pytest.mark.e2e

MAPPED = "allot-slurmmapped"  # the account alice's jobs run as
_prefixes = itertools.count(1)


@pytest.fixture(scope="module")
def mapped_user() -> str:
    try:
        pwd.getpwnam(MAPPED)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent", "--shell",
                        "/usr/sbin/nologin", MAPPED], check=True)
    return MAPPED


@pytest.fixture(scope="module")
def root_token(slurm) -> str:
    """A token of root, who is SlurmUser on the test cluster: it may submit jobs as another user."""
    out = subprocess.run(["scontrol", "token", "username=root", "lifespan=3600"], env=slurm_env(slurm),
                         capture_output=True, text=True, check=True).stdout.strip()
    return out.removeprefix("SLURM_JWT=")


def backend(slurm: dict, tmp_path: Path, mode: str, accounts: dict[str, str], user: str = "root",
            token: str | None = None) -> SlurmBackend:
    prefix = f"acct{next(_prefixes)}x{os.getpid()}"
    common = {"log_dir": job_log_dir(slurm, prefix), "state_dir": tmp_path / f"state-{prefix}", "name_prefix": prefix,
              "accounts": accounts}
    if mode == "rest":
        return SlurmBackend(SlurmConfig(rest_url=slurm["rest_url"], rest_user=user, token=token, **common))
    return SlurmBackend(SlurmConfig(slurm_conf=slurm["slurm_conf"], **common))


def run_as(engine: SlurmBackend, jobs: dict[int, str | None], timeout_s: float = 40.0) -> dict[int, str]:
    """Launch `id -un` for each job (job id -> owner) and return who each ran as."""
    for job_id, owner in jobs.items():
        engine.launch(Launch(job_id, "id -un", cpu=1, admission="a1", owner=owner), now=time.time())
    ended: set[int] = set()
    deadline = time.monotonic() + timeout_s
    while ended != set(jobs) and time.monotonic() < deadline:
        ended |= {e.job_id for e in engine.poll(time.time()) if e.kind in ("succeeded", "failed")}
        time.sleep(0.3)
    assert ended == set(jobs), f"jobs {set(jobs) - ended} did not end"
    return {job_id: engine.log_path(job_id).read_text().strip() for job_id in jobs}


def test_rest_submits_as_the_mapped_account_with_a_root_token(slurm, tmp_path, mapped_user, root_token):
    engine = backend(slurm, tmp_path, "rest", {"alice": mapped_user, "*": slurm["user"]}, token=root_token)
    assert run_as(engine, {1: "alice", 2: "bob"}) == {1: mapped_user, 2: slurm["user"]}


def test_without_a_mapping_jobs_run_as_the_tokens_user(slurm, tmp_path, mapped_user):
    engine = backend(slurm, tmp_path, "rest", {"alice": mapped_user}, user=slurm["user"], token=slurm["token"])
    assert run_as(engine, {1: "bob", 2: None}) == {1: slurm["user"], 2: slurm["user"]}


def test_an_ordinary_users_token_may_not_submit_as_another(slurm, tmp_path, mapped_user):
    engine = backend(slurm, tmp_path, "rest", {"alice": mapped_user}, user=slurm["user"], token=slurm["token"])
    with pytest.raises(SlurmError) as refused:
        engine.launch(Launch(1, "id -un", cpu=1, admission="a1", owner="alice"), now=time.time())
    assert type(refused.value) is SlurmError, refused.value  # a refusal of this job, not an outage of the cluster
    assert engine.outage is None


def test_commands_submit_as_the_mapped_account_with_sbatch_uid(slurm, tmp_path, mapped_user):
    engine = backend(slurm, tmp_path, "commands", {"alice": mapped_user})
    assert run_as(engine, {1: "alice", 2: "bob"}) == {1: mapped_user, 2: "root"}
