"""`allot admin ...`: platform and cluster administration. Each subject lives in its own admin_* module."""

from __future__ import annotations

import typer

from allotment.cli import (
    admin_audit,
    admin_clusters,
    admin_groups,
    admin_inventory,
    admin_service_accounts,
    admin_users,
    admin_workspaces,
    usage,
)


def register(app: typer.Typer) -> None:
    admin = typer.Typer(help="Administration: users, clusters and roles, nodes and devices, groups, workspaces, "
                             "service accounts, audit.", no_args_is_help=True)
    app.add_typer(admin, name="admin")
    for module in (admin_users, admin_clusters, admin_inventory, admin_groups, admin_workspaces,
                   admin_service_accounts, admin_audit):
        module.register(admin)
    usage.register_admin(admin)  # set-user-quota, add-user-quota, recalculate-usage
