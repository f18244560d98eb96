"""Credential lifetimes: parse `expires_in` ("30d", "12h", "90m", "1d12h") and tell a credential's status.

Pure: the clock is passed in.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

UNITS = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}
# Ten years: longer than any sane credential, short enough that the date stays far from datetime's limits.
MAX_LIFETIME = timedelta(days=3650)
_PART = re.compile(r"([0-9]+)\s*([mhdw])", re.IGNORECASE)
_WHOLE = re.compile(r"\s*(?:[0-9]+\s*[mhdw]\s*)+", re.IGNORECASE)


def _up_to(most: int) -> str:
    """A pattern for the whole numbers 1..most written without leading zeros."""
    text = str(most)
    alternatives = [f"[1-9][0-9]{{0,{len(text) - 2}}}"] if len(text) > 1 else []
    for i, digit in enumerate(text):  # numbers as long as `most`: equal up to position i, then a smaller digit
        low = "1" if i == 0 else "0"
        if int(digit) > int(low):
            alternatives.append(text[:i] + f"[{low}-{int(digit) - 1}]" + "[0-9]" * (len(text) - i - 1))
    alternatives.append(text)
    return "(?:" + "|".join(alternatives) + ")"


# Spaces as \s reads them, less the control characters that the API's text fields refuse before this is read.
_SP = r"[ \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"


def _unit(number: str, unit: str) -> str:
    return number + _SP + "*[" + unit + unit.upper() + "]"


# Every lifetime parse_lifetime accepts, as one pattern (published as the API's `expires_in` pattern): one unit up to
# the ten years, or several units, largest first, each once, with at most 2, 3, 4 and 6 digits (less than ten years
# in all). No zero, no leading zeros: every text that matches is a lifetime the server takes.
_SINGLE = "|".join(_unit(_up_to(MAX_LIFETIME // UNITS[u]), u) for u in "wdhm")
_W, _D, _H, _M = (_unit(f"[1-9][0-9]{{0,{n}}}", u) for n, u in ((1, "w"), (2, "d"), (3, "h"), (5, "m")))
_SEVERAL = (rf"{_W}(?:{_SP}*{_D})?(?:{_SP}*{_H})?(?:{_SP}*{_M})?|{_D}(?:{_SP}*{_H})?(?:{_SP}*{_M})?|{_H}(?:{_SP}*{_M})?")
LIFETIME_REGEX = rf"^{_SP}*(?:{_SINGLE}|{_SEVERAL}){_SP}*$"
_LIFETIME = re.compile(LIFETIME_REGEX)

ACTIVE = "active"
REVOKED = "revoked"
EXPIRED = "expired"


class BadLifetime(ValueError):
    """The text is not a lifetime; the message says what is accepted."""


def parse_lifetime(text: str) -> timedelta:
    """"30d" -> 30 days. Units: m (minutes), h (hours), d (days), w (weeks); parts add up ("1d12h")."""
    if not _WHOLE.fullmatch(text or ""):
        raise BadLifetime(f"'{text}' is not a duration: use a number and a unit m, h, d or w, for example 30d, 12h or 90m")
    total = sum((int(n) * UNITS[u.lower()] for n, u in _PART.findall(text)), timedelta())
    if total <= timedelta():
        raise BadLifetime("must be longer than zero")
    if total > MAX_LIFETIME:
        raise BadLifetime(f"must be at most {MAX_LIFETIME.days}d")
    if not _LIFETIME.search(text):
        raise BadLifetime(f"'{text}' is not a duration as the API states it: give each unit once, largest first "
                          "(for example 1d12h), without leading zeros, and at most 2, 3, 4 and 6 digits for w, d, h "
                          "and m when there are several")
    return total


def credential_status(revoked_at: datetime | None, expires_at: datetime | None, now: datetime) -> str:
    if revoked_at is not None:
        return REVOKED
    if expires_at is not None and expires_at <= now:
        return EXPIRED
    return ACTIVE
