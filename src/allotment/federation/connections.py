"""Identity provider connections: their settings per protocol, checked as a whole; their secrets, sealed at rest
(inventory.sealing) and never shown back; and the URLs a provider must be given (callback, ACS, SP metadata)."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from sqlalchemy import select
from sqlalchemy.orm import Session

from allotment.audit import service as audit
from allotment.core.permissions import Principal
from allotment.errors import Conflict, FieldError, NotFound, ValidationFailed
from allotment.federation.mapping import MAPPED, OAUTH2_DEFAULTS, OIDC_DEFAULTS, SAML_DEFAULTS
from allotment.federation.models import OAUTH2, OIDC, PROTOCOLS, SAML, IdentityConnection
from allotment.inventory.sealing import SecretsUnreadable, seal, unseal

PROVIDERS = {
    OIDC: ("auth0", "cognito", "google", "keycloak", "microsoft-ad", "azure", "okta", "ping", "custom"),
    OAUTH2: ("github", "gitlab", "custom"),
    SAML: ("duo", "google", "jumpcloud", "microsoft-ad", "okta", "ping", "custom"),
}
CODE_CHALLENGE_METHODS = ("none", "plain", "S256")
URL_FIELDS = ("web_app_url", "issuer", "discovery_url", "authorization_endpoint", "token_endpoint",
              "revocation_endpoint", "userinfo_endpoint", "jwks_uri")
TEXT_FIELDS = ("client_id", "entity_id", "certificate", "idp_metadata")
FLAGS = ("create_users", "sync_groups", "require_email_verified", "userinfo_from_id_token", "verify_signature",
         "require_signed_assertions", "sign_requests")
LISTS = ("scopes", "additional_scopes")
SECRETS = {OIDC: ("client_secret",), OAUTH2: ("client_secret",), SAML: ("private_key",)}
FIELDS_OF = {
    OIDC: ("web_app_url", "issuer", "discovery_url", "client_id", "authorization_endpoint", "token_endpoint",
           "revocation_endpoint", "userinfo_endpoint", "jwks_uri", "userinfo_from_id_token", "require_email_verified",
           "create_users", "verify_signature", "code_challenge_method", "scopes", "additional_scopes", "claims",
           "sync_groups"),
    OAUTH2: ("web_app_url", "client_id", "authorization_endpoint", "token_endpoint", "revocation_endpoint",
             "userinfo_endpoint", "require_email_verified", "create_users", "code_challenge_method", "scopes",
             "additional_scopes", "claims", "sync_groups"),
    SAML: ("web_app_url", "entity_id", "idp_metadata", "require_signed_assertions", "sign_requests", "certificate",
           "create_users", "claims", "sync_groups"),
}
DEFAULTS: dict[str, dict[str, Any]] = {
    OIDC: {"userinfo_from_id_token": True, "require_email_verified": True, "create_users": True,
           "verify_signature": True, "code_challenge_method": "S256", "scopes": ["openid", "email", "profile"],
           "additional_scopes": [], "claims": dict(OIDC_DEFAULTS), "sync_groups": False},
    OAUTH2: {"require_email_verified": False, "create_users": True, "code_challenge_method": "S256",
             "scopes": [], "additional_scopes": [], "claims": dict(OAUTH2_DEFAULTS), "sync_groups": False},
    SAML: {"require_signed_assertions": True, "sign_requests": False, "create_users": True,
           "claims": dict(SAML_DEFAULTS), "sync_groups": False},
}
MAX_TEXT = 255
MAX_METADATA = 200_000
MAX_PEM = 20_000


def _url_problem(value: str) -> str | None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an http:// or https:// URL with a host"
    return None


def _scope_list(value: Any) -> list[str] | None:
    if isinstance(value, str):
        value = value.replace(",", " ").split()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return None
    return list(dict.fromkeys(v.strip() for v in value if v.strip()))


def clean(protocol: str, values: dict[str, Any], errors: list[FieldError]) -> dict[str, Any]:
    """The settings `values` spell for `protocol`, each checked; problems are appended to `errors`."""
    out: dict[str, Any] = {}
    allowed = FIELDS_OF[protocol]
    for key, value in values.items():
        if key not in allowed:
            errors.append(FieldError(key, f"is not a setting of {protocol} connections"))
            continue
        if value is None or value == "":
            continue
        if key in URL_FIELDS or key in TEXT_FIELDS:
            limit = MAX_METADATA if key == "idp_metadata" else MAX_PEM if key == "certificate" else MAX_TEXT
            if not isinstance(value, str) or len(value) > limit:
                errors.append(FieldError(key, f"must be text of at most {limit} characters"))
                continue
            value = value.strip()
            problem = _url_problem(value) if key in URL_FIELDS else None
            if problem:
                errors.append(FieldError(key, problem))
                continue
            out[key] = value.rstrip("/") if key == "web_app_url" else value
        elif key in FLAGS:
            if not isinstance(value, bool):
                errors.append(FieldError(key, "must be true or false"))
                continue
            out[key] = value
        elif key in LISTS:
            scopes = _scope_list(value)
            if scopes is None or len(scopes) > 50 or any(len(s) > 100 or not s.isprintable() for s in scopes):
                errors.append(FieldError(key, "must be a list of at most 50 scopes (or one comma-separated text)"))
                continue
            out[key] = scopes
        elif key == "code_challenge_method":
            if value not in CODE_CHALLENGE_METHODS:
                errors.append(FieldError(key, f"must be one of {', '.join(CODE_CHALLENGE_METHODS)}"))
                continue
            out[key] = value
        elif key == "claims":
            if not isinstance(value, dict):
                errors.append(FieldError(key, f"must map some of {', '.join(MAPPED)} to claim names"))
                continue
            for name, target in value.items():
                if name not in MAPPED:
                    errors.append(FieldError(f"claims.{name}", f"is not a mapped field ({', '.join(MAPPED)})"))
                elif not isinstance(target, str) or len(target) > 200:
                    errors.append(FieldError(f"claims.{name}", "must be a claim name of at most 200 characters"))
            out[key] = {str(k): str(v).strip() for k, v in value.items() if isinstance(v, str)}
    return out


def completeness(protocol: str, settings: dict[str, Any], secrets: dict[str, str]) -> list[FieldError]:
    """What a connection of `protocol` cannot work without."""
    errors = []
    need = []
    if protocol == OIDC:
        need += ["issuer", "client_id"]  # the id token's issuer is checked; the endpoints come from discovery
    elif protocol == OAUTH2:
        need += ["client_id", "authorization_endpoint", "token_endpoint", "userinfo_endpoint"]
    else:
        need.append("idp_metadata")
        if settings.get("sign_requests") and not (settings.get("certificate") and secrets.get("private_key")):
            errors.append(FieldError("private_key", "is required to sign requests: paste a key pair "
                                                    "(certificate and private_key) or ask for a generated one"))
    errors += [FieldError(key, f"is required for {protocol} connections") for key in need if not settings.get(key)]
    if protocol == SAML and settings.get("idp_metadata"):
        from allotment.federation.saml import metadata_problem

        problem = metadata_problem(settings["idp_metadata"])
        if problem:
            errors.append(FieldError("idp_metadata", problem))
    if protocol == SAML and settings.get("certificate"):
        try:
            x509.load_pem_x509_certificate(settings["certificate"].encode())
        except ValueError:
            errors.append(FieldError("certificate", "is not a PEM certificate"))
    if protocol == SAML and secrets.get("private_key"):
        try:
            serialization.load_pem_private_key(secrets["private_key"].encode(), password=None)
        except (ValueError, TypeError):
            errors.append(FieldError("private_key", "is not an unencrypted PEM private key"))
    return errors


def generate_key_pair(common_name: str) -> tuple[str, str]:
    """(certificate, private key) in PEM: RSA 2048 and a self-signed certificate valid for ten years, what
    ClearML's openssl commands make."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64] or "allotment")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=3650)).sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem


def _name_problems(name: Any) -> list[str]:
    if not isinstance(name, str) or not name.strip():
        return ["must not be empty"]
    if len(name.strip()) > 64:
        return ["must be at most 64 characters long"]
    if not name.strip().isprintable():
        return ["must be printable text"]
    return []


def find_connection(session: Session, ref: str | int) -> IdentityConnection:
    text = str(ref).strip()
    found = session.get(IdentityConnection, int(text)) if text.isdigit() and len(text) < 10 else None
    if found is None:
        found = session.scalar(select(IdentityConnection).where(IdentityConnection.name_key == text.lower()))
    if found is None:
        raise NotFound(f"identity provider connection {text} does not exist")
    return found


def list_connections(session: Session, active_only: bool = False) -> list[IdentityConnection]:
    query = select(IdentityConnection).order_by(IdentityConnection.name_key)
    if active_only:
        query = query.where(IdentityConnection.active.is_(True))
    return list(session.scalars(query))


def secrets_of(secret_key: str, connection: IdentityConnection) -> dict[str, str]:
    try:
        return unseal(secret_key, connection.sealed_secrets)
    except SecretsUnreadable as exc:
        raise Conflict(f"connection {connection.name}: its secrets cannot be opened with this server's secret key "
                       "(was the key changed?); set them again") from exc


def draft(protocol: Any, provider: Any, values: dict[str, Any], secrets_in: dict[str, Any],
          generate_keys: bool = False, current: IdentityConnection | None = None,
          current_secrets: dict[str, str] | None = None) -> tuple[dict[str, Any], dict[str, str]]:
    """The settings and secrets a create or update leads to, checked as a whole (raises 422 naming each field)."""
    errors: list[FieldError] = []
    if protocol not in PROTOCOLS:
        raise ValidationFailed(f"protocol: must be one of {', '.join(PROTOCOLS)}",
                               [FieldError("protocol", f"must be one of {', '.join(PROTOCOLS)}")])
    if provider not in PROVIDERS[protocol]:
        errors.append(FieldError("provider", f"must be one of {', '.join(PROVIDERS[protocol])} for {protocol}"))
    base = dict(DEFAULTS[protocol]) if current is None or current.protocol != protocol else dict(current.settings)
    cleared = [k for k, v in values.items() if v is None or v == ""]
    settings = {**base, **clean(protocol, values, errors)}
    for key in cleared:
        settings.pop(key, None)
        if key in DEFAULTS[protocol]:
            settings[key] = DEFAULTS[protocol][key]
    if "claims" in values and isinstance(values["claims"], dict):
        settings["claims"] = {**DEFAULTS[protocol]["claims"], **settings.get("claims", {})}
    secrets = dict(current_secrets or {}) if current is not None and current.protocol == protocol else {}
    for key, value in secrets_in.items():
        if key not in SECRETS[protocol]:
            if value is not None:
                errors.append(FieldError(key, f"is not a secret of {protocol} connections"))
            continue
        if value is None or value == "":
            secrets.pop(key, None)
        elif not isinstance(value, str) or len(value) > MAX_PEM:
            errors.append(FieldError(key, f"must be text of at most {MAX_PEM} characters"))
        else:
            secrets[key] = value.strip()
    if generate_keys:
        if protocol != SAML:
            errors.append(FieldError("generate_key_pair", "applies to SAML connections only"))
        else:
            settings["certificate"], secrets["private_key"] = generate_key_pair(settings.get("entity_id") or "sp")
    if not errors:
        errors = completeness(protocol, settings, secrets)
    if errors:
        raise ValidationFailed("; ".join(f"{e.field}: {e.message}" for e in errors), errors)
    return settings, secrets


def _ensure_name_free(session: Session, name: str, exclude_id: int | None) -> None:
    other = session.scalar(select(IdentityConnection).where(IdentityConnection.name_key == name.lower()))
    if other is not None and other.id != exclude_id:
        raise Conflict(f"name: a connection named {other.name} exists; display names must be unique",
                       [FieldError("name", f"is taken by another connection ({other.name})")])


def create_connection(session: Session, secret_key: str, actor: Principal, name: Any, protocol: Any,
                      provider: Any, values: dict[str, Any], secrets_in: dict[str, Any], active: bool = True,
                      generate_keys: bool = False, source: str | None = None) -> IdentityConnection:
    problems = _name_problems(name)
    if problems:
        raise ValidationFailed(f"name: {problems[0]}", [FieldError("name", p) for p in problems])
    name = name.strip()
    settings, secrets = draft(protocol, provider, values, secrets_in, generate_keys)
    _ensure_name_free(session, name, None)
    connection = IdentityConnection(name=name, name_key=name.lower(), protocol=protocol, provider=provider,
                                    active=active, settings=settings, sealed_secrets=seal(secret_key, secrets))
    session.add(connection)
    session.flush()
    audit.record(session, actor, "sso.connection_create", "identity_connection", name, connection.id,
                 changes={"after": {"protocol": protocol, "provider": provider, "active": active,
                                    "settings": sorted(settings), "secrets": sorted(secrets)}}, source=source)
    return connection


def update_connection(session: Session, secret_key: str, actor: Principal, connection: IdentityConnection,
                      changes: dict[str, Any], values: dict[str, Any], secrets_in: dict[str, Any],
                      generate_keys: bool = False, source: str | None = None) -> IdentityConnection:
    """Change what is named: `changes` may hold name, provider, protocol and active; settings and secrets not named
    stay as they are (a new protocol starts from its defaults)."""
    before = {"name": connection.name, "provider": connection.provider, "protocol": connection.protocol,
              "active": connection.active}
    if "name" in changes:
        problems = _name_problems(changes["name"])
        if problems:
            raise ValidationFailed(f"name: {problems[0]}", [FieldError("name", p) for p in problems])
        _ensure_name_free(session, changes["name"].strip(), connection.id)
    if "active" in changes and not isinstance(changes["active"], bool):
        raise ValidationFailed("active: must be true or false", [FieldError("active", "must be true or false")])
    protocol = changes.get("protocol", connection.protocol)
    provider = changes.get("provider", connection.provider if protocol == connection.protocol else "custom")
    current_secrets = secrets_of(secret_key, connection) if connection.protocol == protocol else {}
    settings, secrets = draft(protocol, provider, values, secrets_in, generate_keys, connection, current_secrets)
    changed_settings = sorted(k for k in set(settings) | set(connection.settings)
                              if settings.get(k) != connection.settings.get(k))
    changed_secrets = sorted(k for k in set(secrets) | set(current_secrets) if secrets.get(k) != current_secrets.get(k))
    if "name" in changes:
        connection.name = changes["name"].strip()
        connection.name_key = connection.name.lower()
    connection.protocol, connection.provider = protocol, provider
    connection.active = changes.get("active", connection.active)
    connection.settings = settings
    connection.sealed_secrets = seal(secret_key, secrets)
    session.flush()
    after = {"name": connection.name, "provider": provider, "protocol": protocol, "active": connection.active}
    diff = audit.diff(before, after)
    if changed_settings:
        diff.setdefault("after", {})["settings_changed"] = changed_settings
    if changed_secrets:
        diff.setdefault("after", {})["secrets_changed"] = changed_secrets
    audit.record(session, actor, "sso.connection_update", "identity_connection", connection.name, connection.id,
                 changes=diff, source=source)
    return connection


def delete_connection(session: Session, actor: Principal, connection: IdentityConnection,
                      source: str | None = None) -> None:
    """Deleting a connection unlinks its accounts (they stay, with their groups) and ends logins in flight."""
    audit.record(session, actor, "sso.connection_delete", "identity_connection", connection.name, connection.id,
                 source=source)
    session.delete(connection)
    session.flush()


# One callback and one ACS for every connection: the login's state (OAuth) or RelayState (SAML) names the login in
# flight, and with it the connection, so a connection can be tested before it is saved.
CALLBACK_PATH = "/login/sso/callback"
ACS_PATH = "/login/sso/acs"


def metadata_path(connection_id: int) -> str:
    return f"/login/sso/{connection_id}/metadata"


def public_base(settings: dict[str, Any], request_base: str) -> str:
    """The console's external URL: the connection's web app URL, or else the address the request came to."""
    return (settings.get("web_app_url") or request_base).rstrip("/")


def view(secret_key: str, connection: IdentityConnection, request_base: str) -> dict[str, Any]:
    """What an admin sees: every setting, the URLs to copy into the provider, and whether each secret is set."""
    try:
        secrets = unseal(secret_key, connection.sealed_secrets)
        readable = True
    except SecretsUnreadable:
        secrets, readable = {}, False
    base = public_base(connection.settings, request_base)
    shown: dict[str, Any] = {
        "id": connection.id, "name": connection.name, "protocol": connection.protocol,
        "provider": connection.provider, "active": connection.active, "settings": dict(connection.settings),
        "secrets": {key: {"set": key in secrets} for key in SECRETS[connection.protocol]},
        "secrets_readable": readable, "created_at": connection.created_at, "updated_at": connection.updated_at,
    }
    if connection.protocol == SAML:
        shown["acs_url"] = base + ACS_PATH
        shown["metadata_url"] = base + metadata_path(connection.id)
        shown["sp_entity_id"] = connection.settings.get("entity_id") or shown["metadata_url"]
    else:
        shown["callback_url"] = base + CALLBACK_PATH
    return shown
