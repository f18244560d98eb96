"""core.permissions.submit_refusal: submitting to a quota needs access to its cluster as well as the quota."""

import pytest

from allotment.core import permissions as p

ROOT = p.Principal(1, "user", "root", is_platform_admin=True)
MEMBER = p.Principal(2, "user", "dev1", cluster_roles={10: "user"})
MANAGER = p.Principal(3, "user", "lead", cluster_roles={10: "manager"})
CLUSTER_ADMIN = p.Principal(4, "user", "ops", cluster_roles={10: "admin"})
OUTSIDER = p.Principal(5, "user", "ws-member")  # bound through a workspace, never added to the cluster
ON_BEHALF = p.Principal(2, "user", "dev1", actor_id=9, actor_username="ci-bot")  # impersonated, no role left


@pytest.mark.parametrize(
    ("principal", "cluster_id", "bound", "refused"),
    [
        (ROOT, 10, False, None),
        (ROOT, 99, False, None),
        (MEMBER, 10, True, None),
        (MEMBER, 10, False, "bound"),
        (MEMBER, 11, True, "cluster"),
        (MANAGER, 10, False, "bound"),
        (MANAGER, 10, True, None),
        (CLUSTER_ADMIN, 10, False, None),
        (CLUSTER_ADMIN, 11, True, "cluster"),
        (OUTSIDER, 10, True, "cluster"),
        (ON_BEHALF, 10, True, "cluster"),
        (None, 10, True, "sign in"),
    ],
)
def test_submit_refusal(principal, cluster_id, bound, refused):
    reason = p.submit_refusal(principal, cluster_id, "cml", "Dev", bound)
    if refused is None:
        assert reason is None
        assert p.may_submit(principal, cluster_id, bound)
        return
    assert not p.may_submit(principal, cluster_id, bound)
    expected = {"cluster": "you may not submit to quota Dev: you have no access to cluster cml",
                "bound": "you may not submit to quota Dev: it is not bound to you, your groups or your workspaces",
                "sign in": "sign in to submit jobs"}[refused]
    assert reason.startswith(expected)
