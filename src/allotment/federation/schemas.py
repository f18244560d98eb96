"""Request and response shapes of the single sign-on API. Settings are checked per protocol by the service
(connections.py), which names each bad field; here only their shape is bounded."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from allotment.federation.connections import PROVIDERS

Scopes = Annotated[list[Annotated[str, Field(max_length=100)]], Field(max_length=50)] | Annotated[
    str, Field(max_length=2000)]


class ConnectionSettings(BaseModel):
    """Every setting any protocol has; a connection of one protocol refuses the others' settings by name."""

    model_config = ConfigDict(extra="forbid")

    web_app_url: str | None = Field(None, max_length=255, description="the console's external URL")
    issuer: str | None = Field(None, max_length=255)
    discovery_url: str | None = Field(None, max_length=255)
    client_id: str | None = Field(None, max_length=255)
    authorization_endpoint: str | None = Field(None, max_length=255)
    token_endpoint: str | None = Field(None, max_length=255)
    revocation_endpoint: str | None = Field(None, max_length=255)
    userinfo_endpoint: str | None = Field(None, max_length=255)
    jwks_uri: str | None = Field(None, max_length=255)
    userinfo_from_id_token: StrictBool | None = None
    require_email_verified: StrictBool | None = None
    create_users: StrictBool | None = None
    verify_signature: StrictBool | None = None
    code_challenge_method: Literal["none", "plain", "S256"] | None = None
    scopes: Scopes | None = Field(None, description="a list, or one comma-separated text")
    additional_scopes: Scopes | None = None
    claims: dict[str, str] | None = Field(None, max_length=20, description="our field -> the provider's claim")
    sync_groups: StrictBool | None = None
    entity_id: str | None = Field(None, max_length=255)
    idp_metadata: str | None = Field(None, max_length=200_000, description="the IdP's SAML metadata XML")
    require_signed_assertions: StrictBool | None = None
    sign_requests: StrictBool | None = None
    certificate: str | None = Field(None, max_length=20_000, description="PEM certificate for signing requests")


class ConnectionSecrets(BaseModel):
    model_config = ConfigDict(extra="forbid")

    client_secret: str | None = Field(None, max_length=20_000)
    private_key: str | None = Field(None, max_length=20_000, description="PEM private key for signing requests")


URL_RULE = {"pattern": "^https?://[A-Za-z0-9._~%-]+(:[0-9]{1,5})?(/[^\\s]*)?$", "maxLength": 255}
BOOLEAN = {"type": "boolean"}
TEXT = {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^\\S(.*\\S)?$"}
SCOPES = {"type": "array", "maxItems": 50, "items": {"type": "string", "minLength": 1, "maxLength": 100,
                                                     "pattern": "^[!#-\\[\\]-~]+$"}}
CLAIMS = {"type": "object", "maxProperties": 7, "additionalProperties": False,
          "properties": {name: {"type": "string", "maxLength": 200} for name in
                         ("user_id", "email", "name", "given_name", "family_name", "picture", "groups", "username")}}
OAUTH_COMMON = {"web_app_url": URL_RULE, "client_id": TEXT, "authorization_endpoint": URL_RULE,
                "token_endpoint": URL_RULE, "revocation_endpoint": URL_RULE, "userinfo_endpoint": URL_RULE,
                "require_email_verified": BOOLEAN, "create_users": BOOLEAN,
                "code_challenge_method": {"enum": ["none", "plain", "S256"]}, "scopes": SCOPES,
                "additional_scopes": SCOPES, "claims": CLAIMS, "sync_groups": BOOLEAN}
SETTINGS_BY_PROTOCOL = {
    "oidc": ({**OAUTH_COMMON, "issuer": URL_RULE, "discovery_url": URL_RULE, "jwks_uri": URL_RULE,
              "userinfo_from_id_token": BOOLEAN, "verify_signature": BOOLEAN}, ["issuer", "client_id"],
             ["client_secret"]),
    "oauth2": (OAUTH_COMMON, ["client_id", "authorization_endpoint", "token_endpoint", "userinfo_endpoint"],
               ["client_secret"]),
    "saml": ({"web_app_url": URL_RULE, "entity_id": TEXT,
              "idp_metadata": {"type": "string", "minLength": 1, "maxLength": 200_000,
                               "description": "the IdP's SAML metadata (XML) naming one identity provider"},
              "require_signed_assertions": BOOLEAN, "sign_requests": {"type": "boolean",
                                                                      "description": "true needs a key pair"},
              "certificate": {"type": "string", "maxLength": 20_000}, "create_users": BOOLEAN, "claims": CLAIMS,
              "sync_groups": BOOLEAN}, ["idp_metadata"], ["private_key"]),
}


def _variant(protocol: str) -> dict[str, Any]:
    settings, required, secrets = SETTINGS_BY_PROTOCOL[protocol]
    properties: dict[str, Any] = {
        "name": {"type": "string", "minLength": 1, "maxLength": 64, "pattern": "^\\S(.*\\S)?$",
                 "description": "display name on the login page, unique"},
        "protocol": {"const": protocol},
        "provider": {"enum": list(PROVIDERS[protocol])},
        "active": BOOLEAN,
        "settings": {"type": "object", "additionalProperties": False, "properties": settings,
                     "required": required},
        "secrets": {"type": "object", "additionalProperties": False,
                    "properties": {name: {"type": "string", "minLength": 1, "maxLength": 20_000} for name in secrets}},
    }
    if protocol == "saml":
        properties["generate_key_pair"] = {"type": "boolean", "description": "generate the key pair that signs "
                                                                             "requests"}
    return {"type": "object", "title": f"{protocol} connection", "additionalProperties": False,
            "properties": properties, "required": ["name", "protocol", "settings"]}


class ConnectionIn(BaseModel):
    """Read loosely, so that the service can report every problem of a connection at once in its own words; the
    OpenAPI states the rules per protocol."""

    model_config = ConfigDict(extra="forbid")

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema, handler):
        return {"oneOf": [_variant(protocol) for protocol in SETTINGS_BY_PROTOCOL],
                "description": "An identity provider connection: one schema per protocol, with its settings."}

    name: str = Field(min_length=1, max_length=64, description="display name on the login page, unique")
    protocol: Literal["oidc", "oauth2", "saml"]
    provider: str = Field("custom", max_length=32)
    active: StrictBool = True
    settings: ConnectionSettings = ConnectionSettings()
    secrets: ConnectionSecrets = ConnectionSecrets()
    generate_key_pair: StrictBool = Field(False, description="SAML: generate the key pair that signs requests")


class ConnectionUpdate(BaseModel):
    """What is named changes; a setting or secret given as null is reset (a secret: cleared)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=64)
    protocol: Literal["oidc", "oauth2", "saml"] | None = None
    provider: str | None = Field(None, max_length=32)
    active: StrictBool | None = None
    settings: ConnectionSettings | None = None
    secrets: ConnectionSecrets | None = None
    generate_key_pair: StrictBool = False


class ConnectionOut(BaseModel):
    id: int
    name: str
    protocol: str
    provider: str
    active: bool
    settings: dict[str, Any]
    secrets: dict[str, dict[str, bool]] = Field(description="whether each secret is set; never its value")
    secrets_readable: bool
    callback_url: str | None = None
    acs_url: str | None = None
    metadata_url: str | None = None
    sp_entity_id: str | None = None
    created_at: datetime
    updated_at: datetime


class ConnectionList(BaseModel):
    items: list[ConnectionOut]


class ProviderButton(BaseModel):
    id: int
    name: str
    protocol: str
    login_url: str


class ProviderList(BaseModel):
    items: list[ProviderButton]
    password_login: bool


class TestStart(BaseModel):
    test_id: int | None = None
    authorize_url: str | None = None
    status: Literal["pending", "error"]
    error: str | None = None


class TestResult(BaseModel):
    status: Literal["pending", "ok", "error"]
    connection: str | None = None
    user: dict[str, Any] | None = None
    claims: list[str] | None = None
    error: str | None = None


class PasswordLoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: StrictBool
    break_glass: list[str] | None = Field(None, max_length=20, description="usernames that keep password sign-in")


class PasswordLoginOut(BaseModel):
    enabled: bool
    break_glass: list[str]


class CodeExchange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1, max_length=200)
    code_verifier: str = Field(min_length=43, max_length=128)


class CodeExchangeOut(BaseModel):
    token: str
    token_type: str = "bearer"
