"""The password rule's pieces for the console's as-you-type check: each rule with the server's own message
(core.passwords.password_problems, so the words cannot drift) and a test the browser can run. The server stays the
authority: the form is checked again there, and its answer is what counts."""

from __future__ import annotations

from dataclasses import dataclass

from allotment.core import passwords


@dataclass(frozen=True)
class Rule:
    key: str
    message: str
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None  # a JavaScript character class the password must contain one of


def _js_class(chars: frozenset[str]) -> str:
    """Only the characters that mean something inside a class are escaped, so JavaScript (u flag too) reads it."""
    return "[" + "".join("\\" + c if c in "[]\\^-" else c for c in sorted(chars)) + "]"


def _message(sample: str, index: int = 0) -> str:
    return passwords.password_problems(sample)[index]


def rules() -> list[Rule]:
    """In the order the server states them. The samples break exactly the rule whose message they fetch."""
    return [
        Rule("min_length", _message("a1!"), min_length=passwords.MIN_LENGTH),
        Rule("max_length", _message("a1!" * (passwords.MAX_LENGTH // 3 + 1)), max_length=passwords.MAX_LENGTH),
        Rule("letter", _message("12345678!"), pattern=_js_class(passwords.LETTERS)),
        Rule("digit", _message("abcdefgh!"), pattern=_js_class(passwords.DIGITS)),
        Rule("special", _message("abcdefg1"), pattern=_js_class(passwords.SPECIALS)),
    ]
