"""Request and response shapes of the identity API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictBool, WithJsonSchema

from allotment.api.fields import (
    Description,
    Email,
    Name,
    Password,
    ServiceCheckedFullName,
    ServiceCheckedPolicyName,
    ServiceCheckedText,
    Username,
)


class LoginRequest(BaseModel):
    username: str = Field(min_length=1, max_length=256, description="username or e-mail")
    password: str = Field(min_length=1, max_length=1024)


class LoginResponse(BaseModel):
    token: str
    token_type: str = "bearer"
    expires_at: datetime
    username: str


class WhoAmI(BaseModel):
    id: int
    kind: str
    username: str
    is_platform_admin: bool
    cluster_roles: dict[str, str]
    groups: list[str]
    acting_as: str | None = None
    actor: str | None = None


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str | None
    username: str
    full_name: str | None
    is_active: bool
    need_password_change: bool
    resource_policy: str | None
    locked_until: datetime | None
    created_at: datetime
    updated_at: datetime


class UserDetail(UserOut):
    groups: list[str] = Field(description="explicit groups plus the built-in 'users' every user is in")
    cluster_roles: dict[str, str] = Field(description="effective role per cluster name (direct or through a group)")
    credential_count: int = Field(description="credentials that can authenticate now (not revoked, not expired)")
    is_platform_admin: bool


class UserList(BaseModel):
    items: list[UserOut]
    total: int


class UserCreate(BaseModel):
    """The schema states every rule; the service checks them, reporting every failing rule of every field at once."""

    model_config = ConfigDict(extra="forbid")

    email: Email
    username: Username
    password: Password
    full_name: ServiceCheckedFullName | None = None
    need_password_change: StrictBool = False
    is_active: StrictBool = True
    resource_policy: ServiceCheckedPolicyName | None = None


class UserUpdate(BaseModel):
    """Only the fields sent are changed. `email` is accepted only to be refused with a clear message."""

    model_config = ConfigDict(extra="forbid")

    email: Annotated[ServiceCheckedText | None, WithJsonSchema({
        "not": {}, "description": "an e-mail address cannot be changed: sending one is refused (422)"})] = None
    username: Username | None = None
    full_name: ServiceCheckedFullName | None = None
    password: Password | None = None
    current_password: ServiceCheckedText | None = Field(default=None,
                                                        description="required when changing your own password")
    is_active: StrictBool | None = None
    need_password_change: StrictBool | None = None
    resource_policy: ServiceCheckedPolicyName | None = None


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    current_password: str = Field(min_length=1, max_length=1024)
    new_password: Password


class ImportRowReport(BaseModel):
    row: int = Field(description="the row in the file as a spreadsheet numbers it: the header is row 1")
    username: str
    status: str = Field(description="created | failed | skipped (valid, but not imported because another row failed)")
    errors: list[dict[str, str]] = Field(default_factory=list)


class ImportReport(BaseModel):
    created: int
    failed: int
    rows: list[ImportRowReport]


class GroupCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name("group")
    description: Description | None = None


class GroupUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name("group") | None = None
    description: Description | None = None


class GroupOut(BaseModel):
    id: int
    name: str
    description: str | None
    builtin: bool
    member_count: int
    created_at: datetime


class GroupMemberOut(BaseModel):
    id: int
    username: str
    full_name: str | None
    kind: str
    is_active: bool


class GroupDetail(GroupOut):
    members: list[GroupMemberOut]
    cluster_roles: dict[str, str] = Field(description="roles granted to the group, by cluster name")


class GroupList(BaseModel):
    items: list[GroupOut]
    total: int
