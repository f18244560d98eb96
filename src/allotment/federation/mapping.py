"""From a provider's claims (OIDC / OAuth 2.0) or attributes (SAML) to the user they describe. Pure.

A mapping names, for each of our fields, the provider's claim; a dotted name reaches into nested objects
(`profile.email`). SAML attributes arrive as lists: single-valued fields take the first value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

FIELDS = ("user_id", "email", "name", "given_name", "family_name", "picture", "groups")
OIDC_DEFAULTS = {"user_id": "sub", "email": "email", "name": "name", "given_name": "given_name",
                 "family_name": "family_name", "picture": "picture", "groups": "groups",
                 "username": "preferred_username"}
# GitHub-style user-info documents (DKube's OAuth login): a numeric id and a login.
OAUTH2_DEFAULTS = {**OIDC_DEFAULTS, "user_id": "id", "picture": "avatar_url", "username": "login"}
# SAML: the NameID is the user id unless an attribute is named; LDAP's friendly attribute names otherwise.
SAML_DEFAULTS = {"user_id": "", "email": "mail", "name": "displayName", "given_name": "givenName",
                 "family_name": "sn", "picture": "", "groups": "isMemberOf", "username": "uid"}
MAPPED = (*FIELDS, "username")


@dataclass(frozen=True)
class MappedUser:
    user_id: str
    email: str | None = None
    name: str | None = None
    username: str | None = None
    picture: str | None = None
    groups: tuple[str, ...] = ()
    email_verified: bool | None = None
    claims: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        shown = asdict(self)
        shown["groups"] = list(self.groups)
        shown.pop("claims")
        return shown


class MappingError(ValueError):
    """The provider's answer lacks what the mapping needs (said in words an admin can act on)."""


def claim(claims: Mapping[str, Any], name: str) -> Any:
    value: Any = claims
    for part in name.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _single(value: Any) -> str | None:
    if isinstance(value, list | tuple):
        value = value[0] if value else None
    if value is None or isinstance(value, dict):
        return None
    text = str(value).strip()
    return text or None


def _groups(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [part for part in value.replace(",", " ").split()]
    if not isinstance(value, list | tuple):
        return ()
    return tuple(dict.fromkeys(str(v).strip() for v in value if str(v).strip()))


def _verified(value: Any) -> bool | None:
    if isinstance(value, list | tuple):
        value = value[0] if value else None
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


def map_user(claims: Mapping[str, Any], mapping: Mapping[str, str], subject: str | None = None) -> MappedUser:
    """The user the claims describe. `subject` is the protocol's own identifier (SAML's NameID), used when the
    mapping names no user-id claim. The full name falls back to given + family name."""
    def get(key: str) -> Any:
        name = mapping.get(key) or ""
        return claim(claims, name) if name else None

    user_id = _single(get("user_id")) or (subject.strip() if subject else None)
    if not user_id:
        raise MappingError(f"the provider's answer has no user id (claim {mapping.get('user_id') or 'NameID'!r})")
    name = _single(get("name"))
    if not name:
        name = " ".join(p for p in (_single(get("given_name")), _single(get("family_name"))) if p) or None
    return MappedUser(user_id=user_id, email=_single(get("email")), name=name, username=_single(get("username")),
                      picture=_single(get("picture")), groups=_groups(get("groups")),
                      email_verified=_verified(claim(claims, "email_verified")), claims=dict(claims))


def username_candidate(user: MappedUser) -> str:
    """A local username for a user created on first login: the provider's username, else the e-mail's local part,
    else its user id; reduced to the characters usernames allow."""
    base = user.username or (user.email.split("@")[0] if user.email else "") or user.user_id
    cleaned = "".join(c if c.isalnum() or c in "._-" else "-" for c in base).strip("-._")
    return (cleaned or "user")[:48]
