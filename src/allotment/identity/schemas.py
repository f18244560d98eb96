"""Request and response shapes of the identity API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


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
