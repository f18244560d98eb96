"""The console's as-you-type password rules say exactly what the server says: for any password, the rules whose
test fails carry the messages core.passwords.password_problems gives, in the same order."""

from __future__ import annotations

import random
import re

import pytest

from allotment.core.passwords import password_problems
from allotment.web.password_rules import rules


def broken(rule, password: str) -> bool:
    """The rule's test as the browser's script runs it (length in characters, one of the class's characters)."""
    if rule.min_length is not None:
        return len(password) < rule.min_length
    if rule.max_length is not None:
        return len(password) > rule.max_length
    return re.search(rule.pattern, password) is None


def failing(password: str) -> list[str]:
    return [rule.message for rule in rules() if broken(rule, password)]


@pytest.mark.parametrize("password", ["", "a", "abcdefgh", "12345678", "!!!!!!!!", "abc123!?", "Ab1!" * 70,
                                      "ü" * 8 + "1!", "pass word 1", "a-b]c^d\\1", "x" * 300])
def test_the_rules_say_what_the_server_says(password):
    assert failing(password) == password_problems(password)


def test_random_passwords_agree():
    rng = random.Random(7)
    alphabet = [chr(c) for c in range(0x20, 0x7F)] + ["é", "ß", "中", "\t"]
    for _ in range(2000):
        password = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        assert failing(password) == password_problems(password), password


def test_each_rule_has_a_message_and_one_test():
    for rule in rules():
        assert rule.message.startswith("must")
        assert sum(x is not None for x in (rule.min_length, rule.max_length, rule.pattern)) == 1
