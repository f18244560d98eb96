"""Who may give which cluster role (Neu.ro semantics), decided without I/O.

A cluster manager manages the cluster's users: adds them, removes them and changes their roles, but only among
`user` and `manager`. Granting `admin`, or changing or removing an existing admin, takes a cluster admin (or a
platform admin).
"""

from __future__ import annotations

from allotment.core.permissions import ROLE_ORDER


def assignment_refusal(actor_role: str | None, actor_is_platform_admin: bool, old_role: str | None,
                       new_role: str | None) -> str | None:
    """Why the actor may not move a grant from `old_role` to `new_role` (None = no grant); None when allowed."""
    if actor_is_platform_admin or actor_role == "admin":
        return None
    if actor_role is None or ROLE_ORDER.get(actor_role, 0) < ROLE_ORDER["manager"]:
        return "managing a cluster's users takes the cluster's manager or admin role"
    if new_role == "admin":
        return "only a cluster admin can grant the admin role"
    if old_role == "admin":
        return "only a cluster admin can change or remove a cluster admin"
    return None
