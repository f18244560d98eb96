import pytest

from allotment.core.passwords import password_problems


@pytest.mark.parametrize(
    ("password", "expected"),
    [
        ("Secr3t!pw", []),
        ("short1!", ["must be at least 8 characters long"]),
        ("12345678!", ["must contain at least one letter"]),
        ("abcdefgh!", ["must contain at least one digit"]),
        ("abcdefg12", ["must contain at least one special character"]),
        ("abc", ["must be at least 8 characters long", "must contain at least one digit",
                 "must contain at least one special character"]),
        ("pass word1", ["must contain at least one special character"]),
    ],
)
def test_password_policy_lists_every_failing_rule(password, expected):
    assert password_problems(password) == expected
