"""core.permissions.folder_refusal: what each permission allows on a storage folder, and who manages it."""

import pytest

from allotment.core import permissions as p

ADMIN = p.Principal(1, "user", "root", is_platform_admin=True)
ANN = p.Principal(2, "user", "ann")


@pytest.mark.parametrize(
    ("principal", "access", "action", "manager", "allowed"),
    [
        (None, "rwd", "read", True, False),
        (ANN, None, "read", False, False),
        (ANN, "ro", "read", False, True),
        (ANN, "ro", "write", False, False),
        (ANN, "rw", "write", False, True),
        (ANN, "rw", "delete", False, False),  # an invitee never deletes unless granted rwd
        (ANN, "rwd", "delete", False, True),
        (ANN, "rwd", "manage", False, False),  # rwd through an invitation or a group: still not the owner
        (ANN, "rwd", "manage", True, True),
        (ANN, "rwd", "rename", True, False),  # an unknown action is denied, even to the owner
        (ADMIN, None, "manage", False, True),
        (ADMIN, None, "delete", False, True),
        (ANN, "rwd", "unknown", False, False),
    ],
)
def test_folder_refusal(principal, access, action, manager, allowed):
    refusal = p.folder_refusal(principal, access, action, manager)
    assert (refusal is None) is allowed, refusal


def test_refusals_say_what_is_missing():
    assert p.folder_refusal(ANN, "ro", "write", False) == "your permission on this folder is ro; write needs rw"
    assert p.folder_refusal(ANN, None, "read", False) == "you have no access to this folder"
    assert p.folder_refusal(ANN, "rw", "manage", False) == "only the folder's owner (or a platform admin) may do this"
