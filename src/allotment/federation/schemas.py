"""Request and response shapes of the single sign-on API. Settings are checked per protocol by the service
(connections.py), which names each bad field; here only their shape is bounded."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

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


class ConnectionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

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
