"""End-to-end fixtures: a real `allot server` process on SQLite and the real `allot` executable.

Reuse them from any test under tests/e2e/ (a package, so that this conftest never shadows tests/conftest.py, which
other tests import as `conftest`):
    from e2e.clitools import ok, unique

    def test_x(server, allot, admin_config):
        ok(allot("whoami", "--json", config_dir=admin_config))
`server` is started once per test session (per xdist worker) and stopped at teardown, so tests share its data:
give everything you create a unique name (`unique("bob")`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e.clitools import Server, allot, login_config, ok, start_server, stop_server, unique


@pytest.fixture(scope="session")
def server(tmp_path_factory) -> Iterator[Server]:
    """A real `allot server` (url, admin_username, admin_password, data_dir, log_path), killed at teardown."""
    proc, info = start_server(tmp_path_factory.mktemp("allot-server"))
    try:
        yield info
    finally:
        stop_server(proc)


@pytest.fixture(name="allot")
def allot_fixture():
    """`allot(*args, input=None, config_dir=...)` -> CompletedProcess."""
    return allot


@pytest.fixture
def admin_config(server: Server, tmp_path: Path) -> Path:
    """A CLI config directory logged in as the bootstrap admin."""
    return login_config(server, tmp_path / "admin-cli", server.admin_username, server.admin_password)


@pytest.fixture
def new_user(server: Server, admin_config: Path, tmp_path: Path):
    """Create a user through the CLI and return (username, password, config dir logged in as them)."""

    def make(prefix: str = "user", password: str = "Us3r-password!", login: bool = True) -> tuple[str, str, Path]:
        username = unique(prefix)
        ok(allot("admin", "add-user", f"{username}@example.com", username, "--password-stdin",
                 input=password + "\n", config_dir=admin_config))
        config_dir = tmp_path / f"cli-{username}"
        if login:
            login_config(server, config_dir, username, password)
        return username, password, config_dir

    return make


@pytest.fixture(scope="session")
def slurm() -> Iterator[dict]:
    """A throwaway Slurm (scripts/slurm.sh) for the session: rest_url, token, user, slurm_conf, jobs_dir, partitions."""
    from e2e.engines import slurm_cluster

    with slurm_cluster() as info:
        yield info


@pytest.fixture(scope="session")
def ray_head() -> Iterator[dict]:
    """A throwaway Ray head (scripts/ray.sh) for the session: address (the Jobs API), gcs, temp_dir, resources."""
    from e2e.engines import ray_head as start_head

    with start_head() as info:
        yield info
