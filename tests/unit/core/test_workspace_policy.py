"""core.permissions' workspace decisions, table-tested: who may read, create, manage, own and leave a workspace, and
when a workspace seat or a direct binding makes a quota bound to a principal (roles, resource user roles, credential
scope)."""

from __future__ import annotations

import pytest

from allotment.core.permissions import Principal, WorkspaceSeat, bound_to, seat_may_submit, workspace_refusal

CLUSTER = 1
USER = Principal(id=10, kind="user", username="u", cluster_roles={CLUSTER: "user"})
OUTSIDER = Principal(id=11, kind="user", username="o")
CLUSTER_ADMIN = Principal(id=12, kind="user", username="a", cluster_roles={CLUSTER: "admin"})
PLATFORM_ADMIN = Principal(id=13, kind="user", username="p", is_platform_admin=True)
SCOPED = Principal(id=10, kind="user", username="u", cluster_roles={CLUSTER: "user"}, workspace_id=5)


@pytest.mark.parametrize(("principal", "role", "action", "allowed"), [
    (USER, None, "read", True), (OUTSIDER, None, "read", False), (OUTSIDER, "viewer", "read", True),
    (USER, None, "create", True), (OUTSIDER, "owner", "create", False),
    (USER, "viewer", "manage", False), (USER, "member", "manage", False), (USER, "admin", "manage", True),
    (USER, "admin", "own", False), (USER, "owner", "own", True),
    (CLUSTER_ADMIN, None, "own", True), (PLATFORM_ADMIN, None, "own", True),
    (SCOPED, "owner", "manage", False), (SCOPED, "viewer", "read", True),
    (USER, "viewer", "leave", True), (USER, None, "leave", False), (CLUSTER_ADMIN, None, "leave", False),
    (None, "owner", "read", False), (USER, "owner", "fly", False),
])
def test_workspace_refusal(principal, role, action, allowed):
    assert (workspace_refusal(principal, CLUSTER, role, action) is None) is allowed


def test_a_personal_workspace_cannot_be_left():
    assert workspace_refusal(USER, CLUSTER, "owner", "leave", personal=True) == "you cannot leave your personal workspace"


@pytest.mark.parametrize(("seat", "allowed"), [
    (WorkspaceSeat(5, "viewer"), False), (WorkspaceSeat(5, "member"), True), (WorkspaceSeat(5, "owner"), True),
    (WorkspaceSeat(5, "member", frozenset({"admin"})), False), (WorkspaceSeat(5, "admin", frozenset({"admin"})), True),
    (WorkspaceSeat(5, "viewer", frozenset({"admin"}), named=True), True),
    (WorkspaceSeat(5, "viewer", frozenset({"viewer"})), True),
])
def test_seat_may_submit(seat, allowed):
    assert seat_may_submit(USER, seat) is allowed


@pytest.mark.parametrize(("principal", "direct", "seats", "bound"), [
    (USER, True, (), True), (USER, False, (), False), (USER, False, (WorkspaceSeat(6, "member"),), True),
    # A credential scoped to workspace 5 acts there only: not through direct bindings nor another workspace.
    (SCOPED, True, (), False), (SCOPED, False, (WorkspaceSeat(6, "member"),), False),
    (SCOPED, True, (WorkspaceSeat(5, "member"),), True),
])
def test_bound_to(principal, direct, seats, bound):
    assert bound_to(principal, direct, seats) is bound
