"""Command groups that several modules add commands to (`allot config` has show-quota from usage and effective from
vaults): the first module to ask creates the group, later ones get the same group back instead of replacing it."""

from __future__ import annotations

import typer


def shared_group(app: typer.Typer, name: str, help: str) -> typer.Typer:
    for info in app.registered_groups:
        if info.name == name and info.typer_instance is not None:
            return info.typer_instance
    group = typer.Typer(no_args_is_help=True, help=help)
    app.add_typer(group, name=name)
    return group
CONFIG_HELP = "Your account's settings, quotas and effective configuration (the enabled vaults merged)."
