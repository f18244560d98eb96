"""`allot`: the command line. Every command except `server` and `db` talks to the HTTP API."""

from __future__ import annotations

import importlib
import importlib.util
import sys

import typer

from allotment.cli.client import CliError
from allotment.cli.output import err_console

app = typer.Typer(no_args_is_help=True, add_completion=False, help="allotment: govern a shared GPU cluster.",
                  pretty_exceptions_enable=False)

# Command modules: each exposes `register(app)`. Missing ones are skipped so the CLI grows with the API.
MODULES = ["server", "session", "admin", "credentials", "jobs", "quotas", "bench"]


def _load() -> None:
    for name in MODULES:
        module = f"allotment.cli.{name}"
        if importlib.util.find_spec(module) is not None:
            importlib.import_module(module).register(app)


_load()


def main() -> None:
    """Exit codes: 0 success, 1 error (one line naming the problem), 2 usage error."""
    try:
        app(standalone_mode=False)
    except CliError as exc:
        err_console.print(f"[red]error:[/red] {exc}", highlight=False)
        sys.exit(1)
    except typer.Abort:
        err_console.print("aborted")
        sys.exit(1)
    except (typer.BadParameter, typer.Exit) as exc:
        if isinstance(exc, typer.Exit):
            sys.exit(exc.exit_code)
        raise
    except Exception as exc:  # click usage errors
        import click

        if isinstance(exc, click.exceptions.UsageError):
            exc.show()
            sys.exit(2)
        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            sys.exit(1)
        raise
