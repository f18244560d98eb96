"""The real `allot` CLI run in process against the test app: its HTTP client is pointed at the TestClient, so a
command goes through the same routes, services and database as the API tests, with nothing listening on a port."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from typer.testing import CliRunner

from allotment.cli import client as cli_client
from allotment.cli.main import app as cli_app

Run = Callable[..., tuple[int, str]]


def cli_runner(client, monkeypatch, config_dir: Path) -> Callable[[dict[str, str]], Run]:
    """as_(headers)(*args) -> (exit code, output): `allot ARGS...` signed in with `headers`' bearer token. The output
    holds stdout and stderr, and a refusal's message when the command ended with an exception other than exit."""

    def pointed_at_the_app(base_url, headers, timeout):
        client.headers.update(headers)
        return client

    monkeypatch.setattr(cli_client.httpx, "Client", pointed_at_the_app)
    runner = CliRunner()

    def as_(headers: dict[str, str]) -> Run:
        token = headers["Authorization"].removeprefix("Bearer ")
        env = {"ALLOT_URL": "http://testserver", "ALLOT_TOKEN": token, "ALLOT_CONFIG_DIR": str(config_dir),
               "COLUMNS": "200"}

        def run(*args: str) -> tuple[int, str]:
            client.headers.update({"Authorization": f"Bearer {token}"})
            result = runner.invoke(cli_app, list(args), env=env)
            refusal = result.exception if result.exception and not isinstance(result.exception, SystemExit) else ""
            return result.exit_code, result.output + (str(refusal) if refusal else "")

        return run

    return as_
