"""Password policy (Backend.AI): at least 8 characters with a letter, a digit and a special character."""

from __future__ import annotations

MIN_LENGTH = 8
MAX_LENGTH = 256


def password_problems(password: str) -> list[str]:
    """Every rule the password breaks, in a fixed order; empty when it is acceptable."""
    problems = []
    if len(password) < MIN_LENGTH:
        problems.append(f"must be at least {MIN_LENGTH} characters long")
    if len(password) > MAX_LENGTH:
        problems.append(f"must be at most {MAX_LENGTH} characters long")
    if not any(c.isalpha() for c in password):
        problems.append("must contain at least one letter")
    if not any(c.isdigit() for c in password):
        problems.append("must contain at least one digit")
    if not any(not c.isalnum() and not c.isspace() for c in password):
        problems.append("must contain at least one special character")
    return problems
