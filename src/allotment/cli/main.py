"""`allot`: the command line. Every command except `server` and `db` talks to the HTTP API."""

from __future__ import annotations

import importlib
import importlib.util
import sys

import typer
from rich.markup import escape

from allotment.cli.client import CliError
from allotment.cli.output import err_console

app = typer.Typer(no_args_is_help=True, add_completion=False, help="allotment: govern a shared GPU cluster.",
                  pretty_exceptions_enable=False)

# Command modules: each exposes `register(app)`. Missing ones are skipped so the CLI grows with the API.
MODULES = ["server", "session", "admin", "credentials", "jobs", "quotas", "usage", "bench", "simulate",
           "admin_federation", "admin_scim", "workspaces", "folders", "projects", "vaults", "targets", "hide_list",
           "access_rules"]


def _load() -> None:
    for name in MODULES:
        module = f"allotment.cli.{name}"
        if importlib.util.find_spec(module) is not None:
            importlib.import_module(module).register(app)


_load()


def _print_version(value: bool) -> None:
    if value:
        from allotment.web.about import version_line

        typer.echo(version_line())
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                       help="Print allot's version and exit.")) -> None:
    """allotment: govern a shared GPU cluster."""


def main(argv: list[str] | None = None) -> None:
    """Exit codes: 0 success, 1 error (one line naming the problem), 2 usage error.

    Typer's standalone mode already maps usage errors (unknown command or option, missing argument, BadParameter)
    to 2, Abort to 1 and typer.Exit to its code; what it lets through is ours: CliError becomes one line and 1.
    """
    try:
        app(args=argv, prog_name="allot")
    except CliError as exc:
        err_console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(1)
