import pytest

from allotment.core.passwords import password_problems

LETTER = "must contain at least one letter (A-Z or a-z)"
DIGIT = "must contain at least one digit (0-9)"
SPECIAL = "must contain at least one special character (ASCII punctuation such as ! or #)"


@pytest.mark.parametrize(
    ("password", "expected"),
    [
        ("Secr3t!pw", []),
        ("short1!", ["must be at least 8 characters long"]),
        ("12345678!", [LETTER]),
        ("abcdefgh!", [DIGIT]),
        ("abcdefg12", [SPECIAL]),
        ("abc", ["must be at least 8 characters long", DIGIT,
                 SPECIAL]),
        ("pass word1", [SPECIAL]),
    ],
)
def test_password_policy_lists_every_failing_rule(password, expected):
    assert password_problems(password) == expected


@pytest.mark.parametrize(("password", "expected"), [
    ("пароль12!", [LETTER]),  # the classes are ASCII, as the published pattern states
    ("Passwort1€", [SPECIAL]),
    ("Passwort²!", [DIGIT]),
    ("Pässw0rd €!", []),  # any other character may appear too
    ("line\nbreak 1!", []),
])
def test_the_classes_are_ascii(password, expected):
    assert password_problems(password) == expected


def test_the_schema_pattern_accepts_exactly_what_the_policy_accepts():
    """api/fields.py publishes the policy as a pattern without lookaheads (fast to generate for): the two agree on
    every arrangement of a small alphabet holding each class, characters outside them and a line break."""
    import itertools
    import re

    from allotment.api.fields import PASSWORD_REGEX
    from allotment.core.passwords import MAX_LENGTH, MIN_LENGTH

    pattern = re.compile(PASSWORD_REGEX)
    assert "(?=" not in PASSWORD_REGEX
    for chars in itertools.product("a1!é²\n ", repeat=4):
        for text in ("".join(chars) + "éééé", "ééé" + "".join(chars), "é\n".join(chars)):
            schema_ok = bool(pattern.search(text)) and MIN_LENGTH <= len(text) <= MAX_LENGTH
            assert schema_ok == (password_problems(text) == []), repr(text)
