"""Credential lifetimes: parse `expires_in` ("30d", "12h", "90m", "1d12h") and tell a credential's status.

Pure: the clock is passed in.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

UNITS = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}
# Ten years: longer than any sane credential, short enough that the date stays far from datetime's limits.
MAX_LIFETIME = timedelta(days=3650)
_PART = re.compile(r"(\d+)\s*([mhdw])", re.IGNORECASE)
_WHOLE = re.compile(r"\s*(?:\d+\s*[mhdw]\s*)+", re.IGNORECASE)

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
    return total


def credential_status(revoked_at: datetime | None, expires_at: datetime | None, now: datetime) -> str:
    if revoked_at is not None:
        return REVOKED
    if expires_at is not None and expires_at <= now:
        return EXPIRED
    return ACTIVE
