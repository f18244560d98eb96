"""Password policy (Backend.AI): at least 8 characters with a letter, a digit and a special character.

The three classes are ASCII (a letter A-Z or a-z, a digit 0-9, a punctuation mark such as ! or #), so that the rule
can be published as a JSON Schema pattern (api/fields.py PASSWORD_REGEX) that accepts exactly what this accepts:
Unicode letter and digit categories cannot be written portably in a pattern. Any other character may appear too.
"""

from __future__ import annotations

MIN_LENGTH = 8
MAX_LENGTH = 256

LETTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
DIGITS = frozenset("0123456789")
SPECIALS = frozenset(chr(c) for c in range(0x21, 0x7F)) - LETTERS - DIGITS  # ASCII punctuation: !-/ :-@ [-` {-~


def password_problems(password: str) -> list[str]:
    """Every rule the password breaks, in a fixed order; empty when it is acceptable."""
    problems = []
    if len(password) < MIN_LENGTH:
        problems.append(f"must be at least {MIN_LENGTH} characters long")
    if len(password) > MAX_LENGTH:
        problems.append(f"must be at most {MAX_LENGTH} characters long")
    if LETTERS.isdisjoint(password):
        problems.append("must contain at least one letter (A-Z or a-z)")
    if DIGITS.isdisjoint(password):
        problems.append("must contain at least one digit (0-9)")
    if SPECIALS.isdisjoint(password):
        problems.append("must contain at least one special character (ASCII punctuation such as ! or #)")
    return problems
