"""The secret hide-list (ClearML "hide specific container arguments"): environment-variable names whose values are
shown as `********` wherever allotment shows them (job details, job logs, the audit log, the console).

This is the one place masking happens: every view asks `mask_env` (a job's variables), `mask_text` (free text) or
`mask_span` (a chunk of a job's log, which may print a hidden variable's value, cut anywhere by the chunk's ends)
with the names in force for the job's owner, which are
`effective` of the platform's list (set by admins; the defaults below until they change it) and the owner's own
additions. Names compare case-sensitively, as the environment does.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

MASK = "********"

# Common secret names (cloud storage keys, git passwords and tokens) and allotment's own secret variables: the server's
# secret key, the bootstrap admin's password, and the CLI's token and secret.
DEFAULT_NAMES: tuple[str, ...] = (
    "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AZURE_STORAGE_KEY", "AZURE_STORAGE_SAS_TOKEN",
    "GIT_PASSWORD", "GIT_TOKEN", "GITHUB_TOKEN", "GITLAB_TOKEN", "GCS_SERVICE_ACCOUNT_JSON",
    "ALLOT_SECRET_KEY", "ALLOT_BOOTSTRAP_ADMIN_PASSWORD", "ALLOT_TOKEN", "ALLOT_SECRET",
)
# The variables through which storage targets hand their secrets to jobs (storage/targets.py): hidden whatever the
# platform's list says, since a target's secret is never shown back anywhere else either.
ALWAYS: frozenset[str] = frozenset({"AWS_SECRET_ACCESS_KEY", "GCS_SERVICE_ACCOUNT_JSON", "GIT_TOKEN"})
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MAX_NAME = 128
MAX_NAMES = 200
RULE = f"names are letters, digits and _ (not starting with a digit), at most {MAX_NAME} characters"


def name_problem(name: object) -> str | None:
    """Why `name` cannot be on a hide-list, or None."""
    if not isinstance(name, str) or not name or len(name) > MAX_NAME or not NAME.fullmatch(name):
        return RULE
    return None


def problems(names: Iterable[object]) -> list[tuple[int, str]]:
    """(position, problem) of every name that cannot be listed, and of a list that is too long."""
    names = list(names)
    found = [(i, p) for i, n in enumerate(names) if (p := name_problem(n)) is not None]
    if len(names) > MAX_NAMES:
        found.append((MAX_NAMES, f"at most {MAX_NAMES} names (got {len(names)})"))
    return found


def normalised(names: Iterable[str]) -> list[str]:
    """The names once each, in the order given (surrounding spaces dropped)."""
    return list(dict.fromkeys(n.strip() for n in names if n and n.strip()))


def effective(platform: Iterable[str] | None, user: Iterable[str] = ()) -> frozenset[str]:
    """The names hidden for one user: the platform's list (None: it was never set, the defaults apply), theirs, and
    the storage targets' secret variables."""
    base = DEFAULT_NAMES if platform is None else platform
    return frozenset(base) | frozenset(user) | ALWAYS


def hidden_values(env: Mapping[str, str] | None, names: Iterable[str]) -> list[str]:
    """The values to hide: those of the listed variables that are set and not empty, longest first (so that a value
    that contains another is replaced whole)."""
    names = frozenset(names)
    values = {str(v) for k, v in (env or {}).items() if k in names and v}
    return sorted(values, key=lambda v: (-len(v), v))


def mask_env(env: Mapping[str, str] | None, names: Iterable[str]) -> dict[str, str]:
    """The variables with every listed one's value replaced by MASK, and any other value that contains a hidden
    value masked inside it (TOKEN_URL=https://user:SECRET@host shows https://user:********@host)."""
    names = frozenset(names)
    values = hidden_values(env, names)
    return {k: MASK if k in names else mask_text(str(v), values) for k, v in (env or {}).items()}


def mask_text(text: str, values: Iterable[str]) -> str:
    """`text` with every occurrence of each hidden value replaced by MASK (values as `hidden_values` gives them)."""
    values = [v for v in values if v]
    if not values or not text:
        return text
    pattern = re.compile("|".join(re.escape(v) for v in sorted(set(values), key=lambda v: (-len(v), v))))
    return pattern.sub(MASK, text)


def mask_span(data: bytes, start: int, end: int, values: Iterable[str], growing: bool) -> tuple[int, str]:
    """The text of ``data[start:end]`` (UTF-8, both ends on character boundaries) with every part of a hidden value
    masked, wherever the span's edges cut the value: (the span's new end, its text).

    ``data`` must hold, where the file has them, ``longest value - 1`` bytes before ``start`` and after ``end``, so
    that an occurrence crossing either edge is seen whole. One crossing ``start`` shows as MASK for its part inside;
    one crossing ``end`` moves the end to its own end (masked whole here, not in two halves across two reads).
    ``growing``: ``data`` ends where the file ends as written so far; a part of the span that may be the first part
    of a value running to that end is then held back (the new end stops before it) until the rest is written or the
    file is complete."""
    encoded = sorted({v.encode() for v in values if v}, key=lambda v: (-len(v), v))
    if not encoded:
        return end, data[start:end].decode("utf-8", errors="replace")
    pattern = re.compile(b"|".join(re.escape(v) for v in encoded))
    longest = len(encoded[0])
    parts: list[str] = []
    at = start
    for found in pattern.finditer(data, max(0, start - longest + 1), min(len(data), end + longest - 1)):
        a, b = found.span()
        if b <= start or a >= end:
            continue
        if a > at:
            parts.append(data[at:a].decode("utf-8", errors="replace"))
        parts.append(MASK)
        at = b
        end = max(end, b)
    if growing:
        # the longest tail (to the end of what is written) that is a beginning of a value waits for the rest
        for cut in range(max(at, len(data) - longest + 1), end):
            tail = data[cut:]
            if any(v.startswith(tail) for v in encoded):
                end = cut
                break
    if end > at:
        parts.append(data[at:end].decode("utf-8", errors="replace"))
    return end, "".join(parts)
