"""Request and response bodies of the provisioning clients' admin API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from allotment.api.fields import Description, IdPath, Name, Text

Label = Text(64)


class ScimClientCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name("provisioning client")
    description: Description | None = None


class ScimTokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: Label | None = None


class ScimTokenOut(BaseModel):
    id: int
    hint: str = Field(description="the token's first characters, to tell tokens apart")
    label: str | None
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    status: str


class ScimTokenCreated(ScimTokenOut):
    token: str = Field(description="the bearer token, shown only in this answer")
    scim_url: str = Field(description="the SCIM base URL to configure in the identity provider")


class ScimClientOut(BaseModel):
    id: int
    name: str
    description: str | None
    created_at: datetime
    tokens: list[ScimTokenOut]


class ScimClientList(BaseModel):
    items: list[ScimClientOut]
    total: int


TokenId = IdPath
