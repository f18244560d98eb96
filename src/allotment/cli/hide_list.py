"""`allot hide-list ...`: the environment-variable names whose values show as ******** (job details, logs, the
audit log, the console): show, add and remove your own names, and (admins) set or reset the platform's list."""

from __future__ import annotations

import typer

from allotment.cli.client import Client, segment
from allotment.cli.output import console, emit_json


def register(app: typer.Typer) -> None:
    hide = typer.Typer(help="Secret hide-list: variables whose values are never shown.", no_args_is_help=True)
    app.add_typer(hide, name="hide-list")

    @hide.command("show")
    def show_list(user: str = typer.Option(None, "--user", help="another user's (admins)"),
                  json_: bool = typer.Option(False, "--json")) -> None:
        out = Client().get("hide-list", params={"user": user} if user else None)
        if json_:
            emit_json(out)
            return
        console.print(f"platform: {', '.join(out['platform']) or '(none)'}", highlight=False)
        console.print(f"{out['user']}'s own: {', '.join(out['own']) or '(none)'}", highlight=False)

    def _change(names: list[str], user: str | None, adding: bool) -> None:
        client = Client()
        current = client.get("hide-list", params={"user": user} if user else None)
        own = [n for n in current["own"] if adding or n not in names] + ([n for n in names if n not in current["own"]]
                                                                        if adding else [])
        out = client.put(f"hide-list/users/{segment(user) if user else 'me'}", json={"names": own})
        console.print(f"{out['user']}'s own names: {', '.join(out['own']) or '(none)'}", highlight=False)

    @hide.command("add")
    def add(names: list[str], user: str = typer.Option(None, "--user", help="another user's (admins)")) -> None:
        """Hide these variables' values in your jobs (besides the platform's list)."""
        _change(names, user, adding=True)

    @hide.command("remove")
    def remove(names: list[str], user: str = typer.Option(None, "--user")) -> None:
        """Take names off your own list (the platform's list still applies)."""
        _change(names, user, adding=False)

    @hide.command("set-platform")
    def set_platform(names: list[str]) -> None:
        """Replace the platform's list (admins)."""
        out = Client().put("hide-list/platform", json={"names": names})
        console.print(f"platform list: {', '.join(out['platform'])}", highlight=False)

    @hide.command("reset-platform")
    def reset_platform() -> None:
        """Back to the defaults (admins)."""
        out = Client().delete("hide-list/platform")
        console.print(f"platform list: {', '.join(out['platform'])}", highlight=False)
