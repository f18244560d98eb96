"""Secrets at rest: an engine's secrets are stored only sealed (Fernet: AES-128-CBC with HMAC-SHA256), under a key
derived from the server's secret key with HKDF and a purpose label, so that this key opens nothing else and the
server's other uses of its secret key (token digests, CSRF tokens) never meet it.

Changing the server's secret key makes sealed secrets unreadable: the clusters concerned report it in their status
and their secrets have to be set again.
"""

from __future__ import annotations

import base64
import json
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

PURPOSE = b"allotment/cluster-engine-secrets/v1"


class SecretsUnreadable(Exception):
    """Sealed secrets that this server's key cannot open (the secret key changed, or the text was altered)."""


@lru_cache(maxsize=4)
def _fernet(secret_key: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=PURPOSE).derive(secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def seal(secret_key: str, secrets: dict[str, str]) -> str | None:
    """The secrets as one sealed text; None when there are none (nothing is stored)."""
    if not secrets:
        return None
    return _fernet(secret_key).encrypt(json.dumps(secrets, sort_keys=True).encode()).decode("ascii")


def unseal(secret_key: str, sealed: str | None) -> dict[str, str]:
    if not sealed:
        return {}
    try:
        opened = json.loads(_fernet(secret_key).decrypt(sealed.encode("ascii")))
    except (InvalidToken, ValueError, UnicodeError) as exc:
        raise SecretsUnreadable("the engine's secrets cannot be opened with this server's secret key (was the key "
                                "changed?): set them again") from exc
    if not isinstance(opened, dict):
        raise SecretsUnreadable("the engine's sealed secrets are damaged: set them again")
    return {str(k): str(v) for k, v in opened.items()}
