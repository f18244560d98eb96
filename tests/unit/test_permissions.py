import pytest

from allotment.core import permissions as p

ADMIN = p.Principal(1, "user", "root", is_platform_admin=True)
ALICE = p.Principal(2, "user", "alice", cluster_roles={10: "manager"})
BOB = p.Principal(3, "user", "bob", cluster_roles={10: "user", 11: "admin"})
CAROL = p.Principal(4, "user", "carol", group_ids=frozenset({1, 7}))  # 1: the built-in `users`, 7: a team


@pytest.mark.parametrize(
    ("principal", "permission", "scope", "expected"),
    [
        (None, p.PUBLIC, p.Scope(), True),
        (None, p.AUTHENTICATED, p.Scope(), False),
        (ALICE, p.AUTHENTICATED, p.Scope(), True),
        (ALICE, p.PLATFORM_ADMIN, p.Scope(), False),
        (ADMIN, p.PLATFORM_ADMIN, p.Scope(), True),
        (ALICE, p.SELF_OR_ADMIN, p.Scope(user_id=2), True),
        (ALICE, p.SELF_OR_ADMIN, p.Scope(user_id=3), False),
        (ALICE, p.SELF_OR_ADMIN, p.Scope(), False),
        (ADMIN, p.SELF_OR_ADMIN, p.Scope(user_id=3), True),
        (ALICE, p.cluster("user"), p.Scope(cluster_id=10), True),
        (ALICE, p.cluster("manager"), p.Scope(cluster_id=10), True),
        (ALICE, p.cluster("admin"), p.Scope(cluster_id=10), False),
        (ALICE, p.cluster("user"), p.Scope(cluster_id=11), False),
        (BOB, p.cluster("manager"), p.Scope(cluster_id=10), False),
        (BOB, p.cluster("admin"), p.Scope(cluster_id=11), True),
        (BOB, p.cluster("user"), p.Scope(), False),
        (ADMIN, p.cluster("admin"), p.Scope(cluster_id=99), True),
        (None, p.cluster("user"), p.Scope(cluster_id=10), False),
        (ALICE, p.Permission("made_up", "unknown"), p.Scope(), False),
        # Group members: admins; members of a group that is not built in; nobody else.
        (ADMIN, p.GROUP_MEMBER, p.Scope(group_id=7, builtin_group=True), True),
        (ADMIN, p.GROUP_MEMBER, p.Scope(), True),
        (CAROL, p.GROUP_MEMBER, p.Scope(group_id=7), True),
        (CAROL, p.GROUP_MEMBER, p.Scope(group_id=8), False),
        (CAROL, p.GROUP_MEMBER, p.Scope(group_id=1, builtin_group=True), False),
        (CAROL, p.GROUP_MEMBER, p.Scope(), False),
        (None, p.GROUP_MEMBER, p.Scope(group_id=7), False),
    ],
)
def test_policy(principal, permission, scope, expected):
    assert p.allowed(principal, permission, scope) is expected


@pytest.mark.parametrize(
    ("given", "expected"),
    [("user", "user"), ("Manager", "manager"), ("admin", "admin"), ("Operator", "admin"),
     ("data-scientist", "user"), ("Data_Scientist", "user"), ("owner", None)],
)
def test_role_aliases(given, expected):
    assert p.normalise_role(given) == expected
