"""Request and response shapes for credentials, service accounts and cluster roles.

Kept apart from schemas.py (users, groups, login) so the two halves of the identity API change independently.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from allotment.api.fields import Description, IsoDateTime, Name, Ref, SchemaPattern, Text
from allotment.core.expiry import LIFETIME_REGEX


class CredentialCreate(BaseModel):
    """`expires_in` and `expires_at` are alternatives: a body may hold at most one of them (even as null)."""

    model_config = ConfigDict(json_schema_extra={"not": {"required": ["expires_in", "expires_at"]}})

    label: Text(64) | None = Field(default=None, description="free text; no control, zero-width or bidi characters")
    expires_in: Annotated[Text(32), SchemaPattern(LIFETIME_REGEX)] | None = Field(
        default=None, description="lifetime such as 30d, 12h or 90m: units w, d, h, m, several largest first (1d12h)")
    expires_at: IsoDateTime | None = Field(default=None, description="absolute expiry; naive times are taken as UTC; "
                                                                     "a past one makes a credential that has expired")
    user: Ref | None = Field(default=None, description="owner (platform admins only, for someone else)")

    def both_expiries(self) -> bool:
        """Both keys sent, null or not: the schema's `not required both` (refused by credentials.resolve_expiry)."""
        return {"expires_in", "expires_at"} <= self.model_fields_set


class CredentialUpdate(BaseModel):
    label: Text(64) | None = Field(default=None, description="free text; no control, zero-width or bidi characters")


class CredentialOut(BaseModel):
    access_key: str
    label: str | None
    owner: str
    owner_kind: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    last_used_from: str | None
    revoked_at: datetime | None
    status: str


class CredentialCreated(BaseModel):
    """The only response that ever carries the secret."""

    access_key: str
    secret_key: str
    label: str | None
    owner: str
    created_at: datetime
    expires_at: datetime | None
    cli_snippet: str
    env_snippet: str


class CredentialList(BaseModel):
    items: list[CredentialOut]
    total: int


class ServiceAccountCreate(BaseModel):
    name: Name("service account")
    description: Description | None = None
    allow_impersonation: StrictBool = False
    with_credential: StrictBool = Field(default=True, description="create a first credential and return its secret once")


class ServiceAccountUpdate(BaseModel):
    description: Description | None = None
    allow_impersonation: StrictBool | None = None


class ServiceAccountOut(BaseModel):
    id: int
    name: str
    description: str | None
    allow_impersonation: bool
    is_active: bool
    created_at: datetime
    deleted_at: datetime | None
    credential_count: int
    last_active_at: datetime | None
    cluster_roles: dict[str, str]


class ServiceAccountCreated(ServiceAccountOut):
    credential: CredentialCreated | None = None


class ServiceAccountList(BaseModel):
    items: list[ServiceAccountOut]
    total: int


class RoleBody(BaseModel):
    role: str = Field(min_length=1, max_length=32,
                      description="user, manager or admin; DKube's operator (= admin) and data-scientist (= user)")


class ClusterMember(BaseModel):
    username: str
    kind: str
    role: str
    via: str
    is_active: bool


class ClusterMemberList(BaseModel):
    items: list[ClusterMember]
    total: int


class ClusterGroupGrant(BaseModel):
    group: str
    role: str


class ClusterGroupList(BaseModel):
    items: list[ClusterGroupGrant]
    total: int


class RoleChange(BaseModel):
    cluster: str
    role: str | None
    previous_role: str | None
    username: str | None = None
    group: str | None = None
