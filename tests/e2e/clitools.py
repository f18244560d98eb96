"""Helpers for end-to-end tests: start a real `allot server`, run the real `allot` (fixtures: conftest.py)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

ADMIN_USERNAME = "admin"
ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "Adm1n-password!"
START_TIMEOUT_S = 120  # the machine is shared: a cold start (migrations, imports) can be slow
COMMAND_TIMEOUT_S = 60


def allot_executable() -> str:
    """The `allot` installed next to this Python (the project's .venv), else the one on PATH."""
    candidate = Path(sys.executable).with_name("allot")
    if candidate.exists():
        return str(candidate)
    found = shutil.which("allot")
    if found is None:
        pytest.fail("the `allot` executable is not installed: run `make install`")
    return found


@dataclass(frozen=True)
class Server:
    url: str
    admin_username: str
    admin_password: str
    data_dir: Path
    log_path: Path

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _clean_env(**extra: str) -> dict[str, str]:
    """The caller's environment without any ALLOT_* setting that could point a process elsewhere."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALLOT_")}
    env.update(extra)
    return env


def _wait_ready(proc: subprocess.Popen, url: str, log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"`allot server` exited with {proc.returncode}:\n{log_path.read_text(errors='replace')[-4000:]}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    pytest.fail(f"`allot server` not ready after {START_TIMEOUT_S}s:\n{log_path.read_text(errors='replace')[-4000:]}")


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


def kill_server(proc: subprocess.Popen) -> None:
    """SIGKILL, as a crash would: nothing of the server's shutdown runs (its job processes live on)."""
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=15)


def start_server(root: Path, port: int | None = None, **settings: str) -> tuple[subprocess.Popen, Server]:
    """A real server process: SQLite under root/var, bootstrap admin from ALLOT_BOOTSTRAP_ADMIN_*. Starting again
    on the same root and port restarts it on the same data; `settings` adds ALLOT_* variables (name without it)."""
    data_dir = root / "var"
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = root / "server.log"
    env = _clean_env(
        ALLOT_DATA_DIR=str(data_dir),
        ALLOT_BIND=f"127.0.0.1:{port}",
        ALLOT_BOOTSTRAP_ADMIN_EMAIL=ADMIN_EMAIL,
        ALLOT_BOOTSTRAP_ADMIN_USERNAME=ADMIN_USERNAME,
        ALLOT_BOOTSTRAP_ADMIN_PASSWORD=ADMIN_PASSWORD,
        ALLOT_LOG_LEVEL="warning",
        # The shared server's tests lay out their own quotas (test_first_job.py starts one with the default quota).
        **{"ALLOT_BOOTSTRAP_DEFAULT_QUOTA": "false",
           **{f"ALLOT_{name.upper()}": value for name, value in settings.items()}},
    )
    with log_path.open("ab") as log:
        # cwd=root: no allot.toml from the developer's checkout may change the server under test.
        proc = subprocess.Popen([allot_executable(), "server"], cwd=root, env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_ready(proc, url, log_path)
    except BaseException:
        stop_server(proc)
        raise
    return proc, Server(url, ADMIN_USERNAME, ADMIN_PASSWORD, data_dir, log_path)


def allot(*args: str, input: str | None = None, config_dir: Path | str,
          env: dict[str, str] | None = None, timeout: float = COMMAND_TIMEOUT_S) -> subprocess.CompletedProcess:
    """Run the real `allot` with its login kept in `config_dir`; never raises on a non-zero exit code."""
    full_env = _clean_env(ALLOT_CONFIG_DIR=str(config_dir), COLUMNS="200", NO_COLOR="1", TERM="dumb",
                          **(env or {}))
    return subprocess.run([allot_executable(), *args], input=input if input is not None else "",
                          capture_output=True, text=True, env=full_env, timeout=timeout, check=False)


def ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    """Assert exit code 0, showing what the command said when it was not."""
    assert result.returncode == 0, f"exit {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    return result


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def login_config(server: Server, config_dir: Path, username: str, password: str) -> Path:
    config_dir.mkdir(parents=True, exist_ok=True)
    ok(allot("login", server.url, "--username", username, "--password-stdin", input=password + "\n",
             config_dir=config_dir))
    return config_dir


def printed_credential(stdout: str) -> tuple[str, str]:
    """(access key, secret key) from the human output of `credentials create` / `create-credential`."""
    fields = {line[:10].strip(): line[10:].strip() for line in stdout.splitlines()
              if line.startswith(("Access key", "Secret key"))}
    return fields["Access key"], fields["Secret key"]


def api(config_dir: Path, method: str, path: str, **kwargs) -> httpx.Response:
    """Call the API directly with the login saved in `config_dir` (to set up what no CLI command covers)."""
    saved = json.loads((Path(config_dir) / "config.json").read_text())
    response = httpx.request(method, f"{saved['url']}/api/v1/{path}", timeout=30,
                             headers={"Authorization": f"Bearer {saved['token']}"}, **kwargs)
    assert response.status_code < 400, response.text
    return response
