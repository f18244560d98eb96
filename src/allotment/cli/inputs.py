"""Reading secrets from stdin and asking for confirmation, the same way in every command."""

from __future__ import annotations

import sys

import typer

from allotment.cli.client import CliError


def read_stdin_secret(what: str) -> str:
    """The first line of stdin without its line ending (`--password-stdin`, `--secret-stdin`)."""
    line = sys.stdin.readline()
    value = line.rstrip("\r\n")
    if not value:
        raise CliError(f"no {what} on stdin: pipe it in, for example `printf '%s\\n' \"$PASSWORD\" | allot ...`")
    return value


def prompt_new_password() -> str:
    """Ask twice on a terminal; refuse when there is no terminal to ask on."""
    if not sys.stdin.isatty():
        raise CliError("no password given: pass --password-stdin and pipe the password in")
    return typer.prompt("Password", hide_input=True, confirmation_prompt=True)


def confirm(question: str, yes: bool, refusal: str) -> None:
    """Go on when --yes was given or the person answers yes; otherwise stop with `refusal` (exit 1).

    Without a terminal and without --yes nothing is changed: a script must say --yes explicitly.
    """
    if yes:
        return
    if not sys.stdin.isatty():
        raise CliError(f"{refusal}: no terminal to confirm on, pass --yes")
    try:
        answer = typer.confirm(question, default=False)
    except typer.Abort:
        answer = False
    if not answer:
        raise CliError(f"{refusal}: not confirmed")
