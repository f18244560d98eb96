"""Password hashing (argon2) and credential/session token handling.

Credential secrets and session tokens are 256-bit random values, so an HMAC-SHA256 keyed with the server secret is
enough to store them safely; it costs microseconds, which keeps authentication cheap on every request. Argon2 is used
for passwords, which people choose and which are therefore guessable.
"""

from __future__ import annotations

import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_hasher = PasswordHasher()
# A fixed hash to verify against when the user does not exist, so timing does not reveal which usernames exist.
_DUMMY_HASH = _hasher.hash("not-a-real-password-1!")


def configure_password_hashing(time_cost: int, memory_cost_kib: int, parallelism: int = 1) -> None:
    """Change argon2's cost (the test suite lowers it to stay fast; production keeps argon2-cffi's defaults).

    Existing hashes keep verifying: argon2 hashes carry their own parameters."""
    global _hasher, _DUMMY_HASH
    _hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_cost_kib, parallelism=parallelism)
    _DUMMY_HASH = _hasher.hash("not-a-real-password-1!")

ACCESS_KEY_PREFIX = "AK"
SESSION_PREFIX = "st_"


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def token_digest(secret_key: str, token: str) -> str:
    # hmac.digest is the one-shot C implementation: same value as hmac.new(...).hexdigest(), several times cheaper,
    # and this runs on every authenticated request.
    return hmac.digest(secret_key.encode(), token.encode(), "sha256").hex()


def session_csrf_token(secret_key: str, session_token: str) -> str:
    """The console's CSRF token for a login session: derived from the session, so it needs no storage and ends
    with it. The API accepts it too (X-CSRF-Token) from callers that authenticate with the session cookie."""
    return hmac.new(secret_key.encode(), b"csrf:" + session_token.encode(), "sha256").hexdigest()


def digests_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def new_access_key() -> str:
    return ACCESS_KEY_PREFIX + secrets.token_hex(10).upper()


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def new_session_token() -> str:
    return SESSION_PREFIX + secrets.token_urlsafe(32)
