"""Workspaces: team spaces of a cluster, their members, roles and invitations."""
