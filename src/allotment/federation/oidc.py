"""The authorization code flow of OIDC and of plain OAuth 2.0 (Authlib for the client, joserfc for the id token).

OIDC: the endpoints come from the connection or from discovery; the id token is checked (signature against the
provider's JWKS when asked, issuer, audience, expiry, nonce) and the user's claims are read from it or from the
user-info endpoint. OAuth 2.0: the user-info endpoint, called with the access token, is the only source. Either way
the access token is revoked at the provider once the user is known, when a revocation endpoint is set: the server
keeps no provider token.
"""

from __future__ import annotations

import base64
import json
import logging
import time
import warnings
from dataclasses import dataclass
from typing import Any

import httpx
from authlib.common.security import generate_token
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from allotment.federation.mapping import MappedUser, MappingError, map_user
from allotment.federation.models import OIDC

# Authlib announces a future rename of its httpx integration on import, with a filter of its own that shows it
# always: recording it here is what keeps it out of the server's and the CLI's output.
with warnings.catch_warnings(record=True):
    from authlib.integrations.base_client.errors import OAuthError
    from authlib.integrations.httpx_client import OAuth2Client

log = logging.getLogger("allotment.federation")
TIMEOUT_S = 10.0
LEEWAY_S = 60  # clock skew tolerated on iat / exp / nbf


class ProviderError(Exception):
    """The provider refused or answered something unusable; the message says which, for the admin or the user."""


@dataclass(frozen=True)
class Endpoints:
    issuer: str | None
    authorization: str
    token: str
    userinfo: str | None
    jwks_uri: str | None
    revocation: str | None


def _get_json(url: str, what: str, headers: dict[str, str] | None = None) -> Any:
    try:
        response = httpx.get(url, headers=headers, timeout=TIMEOUT_S, follow_redirects=True)
    except httpx.HTTPError as exc:
        raise ProviderError(f"cannot reach the provider's {what} at {url}: {exc}") from exc
    if response.status_code >= 400:
        raise ProviderError(f"the provider's {what} at {url} answered {response.status_code}: "
                            f"{response.text[:200]}")
    try:
        return response.json()
    except ValueError as exc:
        raise ProviderError(f"the provider's {what} at {url} did not answer JSON") from exc


def endpoints(settings: dict[str, Any], protocol: str) -> Endpoints:
    """The connection's endpoints; for OIDC, those it leaves unset are taken from discovery."""
    found: dict[str, Any] = {}
    if protocol == OIDC and (settings.get("discovery_url") or settings.get("issuer")):
        url = settings.get("discovery_url") or settings["issuer"].rstrip("/") + "/.well-known/openid-configuration"
        found = _get_json(url, "discovery document")
        if not isinstance(found, dict):
            raise ProviderError(f"the discovery document at {url} is not a JSON object")
    authorization = settings.get("authorization_endpoint") or found.get("authorization_endpoint")
    token = settings.get("token_endpoint") or found.get("token_endpoint")
    if not authorization or not token:
        raise ProviderError("the provider's authorization and token endpoints are unknown: set them or a discovery URL")
    return Endpoints(issuer=settings.get("issuer") or found.get("issuer"), authorization=authorization, token=token,
                     userinfo=settings.get("userinfo_endpoint") or found.get("userinfo_endpoint"),
                     jwks_uri=settings.get("jwks_uri") or found.get("jwks_uri"),
                     revocation=settings.get("revocation_endpoint") or found.get("revocation_endpoint"))


def new_flow_values(settings: dict[str, Any]) -> dict[str, str | None]:
    """The per-login secrets: a nonce and, unless the code challenge method is none, a PKCE verifier."""
    method = settings.get("code_challenge_method", "S256")
    return {"nonce": generate_token(32), "code_verifier": None if method == "none" else generate_token(64)}


def _client(settings: dict[str, Any], secrets: dict[str, str], redirect_uri: str) -> OAuth2Client:
    scopes = list(dict.fromkeys([*settings.get("scopes", []), *settings.get("additional_scopes", [])]))
    method = settings.get("code_challenge_method", "S256")
    return OAuth2Client(client_id=settings["client_id"], client_secret=secrets.get("client_secret"),
                        scope=" ".join(scopes) or None, redirect_uri=redirect_uri, timeout=TIMEOUT_S,
                        code_challenge_method="S256" if method == "S256" else None,
                        token_endpoint_auth_method="client_secret_basic" if secrets.get("client_secret") else "none")


def authorization_url(settings: dict[str, Any], secrets: dict[str, str], protocol: str, redirect_uri: str,
                      state: str, nonce: str, code_verifier: str | None) -> str:
    ends = endpoints(settings, protocol)
    extra: dict[str, str] = {}
    if protocol == OIDC:
        extra["nonce"] = nonce
    method = settings.get("code_challenge_method", "S256")
    if code_verifier and method == "plain":
        extra.update(code_challenge=code_verifier, code_challenge_method="plain")
    with _client(settings, secrets, redirect_uri) as client:
        url, _ = client.create_authorization_url(ends.authorization, state=state,
                                                 code_verifier=code_verifier if method == "S256" else None, **extra)
    return url


def _b64json(part: str) -> dict[str, Any]:
    padded = part + "=" * (-len(part) % 4)
    value = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    if not isinstance(value, dict):
        raise TypeError("not an object")
    return value


def verify_id_token(id_token: str, *, client_id: str, issuer: str | None, nonce: str | None,
                    jwks: dict[str, Any] | None, now: int | None = None) -> dict[str, Any]:
    """The id token's claims after every check; ProviderError naming the one that failed.

    With `jwks` the signature must verify against one of its keys; without it (signature verification turned off
    on the connection) the token is read as sent. Issuer, audience, expiry and nonce are checked either way."""
    try:
        if jwks is not None:
            claims = jwt.decode(id_token, KeySet.import_key_set(jwks)).claims
        else:
            parts = id_token.split(".")
            if len(parts) != 3:
                raise ProviderError("the id token is not a JWT")
            claims = _b64json(parts[1])
    except ProviderError:
        raise
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise ProviderError(f"the id token's signature does not verify against the provider's keys ({exc})") from exc
    options: dict[str, Any] = {"aud": {"essential": True, "value": client_id}, "exp": {"essential": True},
                               "sub": {"essential": True}}
    if issuer:
        options["iss"] = {"essential": True, "value": issuer}
    if nonce:
        options["nonce"] = {"essential": True, "value": nonce}
    try:
        jwt.JWTClaimsRegistry(now=now if now is not None else int(time.time()), leeway=LEEWAY_S,
                              **options).validate(claims)
    except JoseError as exc:
        raise ProviderError(f"the id token was refused: {exc.description or exc.error}") from exc
    return dict(claims)


def complete(settings: dict[str, Any], secrets: dict[str, str], protocol: str, redirect_uri: str,
             code: str, code_verifier: str | None, nonce: str | None) -> MappedUser:
    """Exchange the code, check what comes back, and map the user (ProviderError when any step fails)."""
    ends = endpoints(settings, protocol)
    with _client(settings, secrets, redirect_uri) as client:
        try:
            token = client.fetch_token(ends.token, code=code, code_verifier=code_verifier,
                                       redirect_uri=redirect_uri)
        except (OAuthError, httpx.HTTPError, ValueError) as exc:
            raise ProviderError(f"the provider refused the authorization code: {exc}") from exc
        access_token = token.get("access_token")
        claims: dict[str, Any] = {}
        if protocol == OIDC:
            id_token = token.get("id_token")
            if not id_token:
                raise ProviderError("the provider's token answer has no id_token (is the openid scope set?)")
            jwks = None
            if settings.get("verify_signature", True):
                if not ends.jwks_uri:
                    raise ProviderError("verifying the token signature needs the provider's JWKS URI")
                jwks = _get_json(ends.jwks_uri, "JWKS")
            claims = verify_id_token(id_token, client_id=settings["client_id"], issuer=ends.issuer, nonce=nonce,
                                     jwks=jwks)
        if protocol != OIDC or not settings.get("userinfo_from_id_token", True):
            if not ends.userinfo:
                raise ProviderError("the provider's user-info endpoint is unknown")
            info = _get_json(ends.userinfo, "user-info endpoint", {"Authorization": f"Bearer {access_token}"})
            if not isinstance(info, dict):
                raise ProviderError("the provider's user-info answer is not a JSON object")
            if protocol == OIDC and info.get("sub") != claims.get("sub"):
                raise ProviderError("the user-info answer names another subject than the id token")
            claims = {**claims, **info}
        if ends.revocation and access_token:
            try:
                client.revoke_token(ends.revocation, token=access_token, token_type_hint="access_token")
            except (OAuthError, httpx.HTTPError) as exc:  # the login stands; the token expires by itself
                log.warning("could not revoke the access token at %s: %s", ends.revocation, exc)
    try:
        return map_user(claims, settings.get("claims") or {})
    except MappingError as exc:
        raise ProviderError(str(exc)) from exc
