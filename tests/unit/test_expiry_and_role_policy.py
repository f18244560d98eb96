from datetime import UTC, datetime, timedelta

import pytest

from allotment.core.cluster_roles import assignment_refusal
from allotment.core.expiry import BadLifetime, credential_status, parse_lifetime

NOW = datetime(2030, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(("text", "expected"), [
    ("30d", timedelta(days=30)), ("12h", timedelta(hours=12)), ("90m", timedelta(minutes=90)),
    ("2w", timedelta(weeks=2)), ("1d12h", timedelta(hours=36)), (" 1D 6H ", timedelta(hours=30)),
    ("3650d", timedelta(days=3650)),
])
def test_lifetimes(text, expected):
    assert parse_lifetime(text) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("", "not a duration"), ("30", "not a duration"), ("d", "not a duration"), ("30x", "not a duration"),
    ("-1d", "not a duration"), ("1.5h", "not a duration"), ("0m", "longer than zero"), ("3651d", "at most 3650d"),
])
def test_bad_lifetimes(text, message):
    with pytest.raises(BadLifetime, match=message):
        parse_lifetime(text)


@pytest.mark.parametrize(("revoked_at", "expires_at", "status"), [
    (None, None, "active"),
    (None, NOW + timedelta(seconds=1), "active"),
    (None, NOW, "expired"),
    (NOW - timedelta(days=1), None, "revoked"),
    (NOW - timedelta(days=1), NOW - timedelta(days=2), "revoked"),  # revocation is what happened to it
])
def test_credential_status(revoked_at, expires_at, status):
    assert credential_status(revoked_at, expires_at, NOW) == status


@pytest.mark.parametrize(("actor_role", "platform_admin", "old", "new", "allowed"), [
    (None, True, None, "admin", True),
    ("admin", False, "admin", None, True),
    ("admin", False, None, "admin", True),
    ("manager", False, None, "user", True),
    ("manager", False, "user", "manager", True),
    ("manager", False, "manager", None, True),
    ("manager", False, None, "admin", False),
    ("manager", False, "manager", "admin", False),
    ("manager", False, "admin", "manager", False),
    ("manager", False, "admin", None, False),
    ("user", False, None, "user", False),
    (None, False, None, "user", False),
])
def test_who_may_assign_cluster_roles(actor_role, platform_admin, old, new, allowed):
    assert (assignment_refusal(actor_role, platform_admin, old, new) is None) is allowed
