"""Request and response shapes of the access-rules API."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from allotment.api.fields import Ref

ResourceType = Literal["project", "job", "model", "dataset", "quota"]
Level = Literal["read", "modify"]
GranteeKind = Literal["user", "service_account", "group"]
DefaultLevel = Literal["modify", "read", "none"]


class GranteeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: GranteeKind = Field(description="user, service_account or group")
    name: Ref = Field(description="the user's, service account's or group's name (or id)")


class GranteeOut(BaseModel):
    kind: str = Field(description="user, service_account or group")
    name: str


class RuleCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cluster: Ref | None = Field(None, description="the cluster of the workspace (or of the quota); default: local")
    workspace: Ref | None = Field(None, description="the workspace whose objects the rule covers; none: a platform "
                                                    "rule (platform admins), and always none for quotas")
    resource_type: ResourceType = Field(description="project, job, model, dataset or quota")
    resource: Ref | None = Field(None, description="one object: a project's path or id, a job's, model's or "
                                                   "dataset's id, a quota's name; none: every object of the type")
    level: Level = Field(description="read (read-only) or modify (read and modify)")
    grantees: list[GranteeIn] = Field(min_length=1, max_length=200, description="users, service accounts and groups")


class RuleUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    resource_type: ResourceType | None = Field(None, description="a new resource type (give resource too, or none "
                                                                 "for every object of it)")
    resource: Ref | None = None
    level: Level | None = None
    grantees: list[GranteeIn] | None = Field(None, min_length=1, max_length=200, description="replaces the grantees")


class RuleOut(BaseModel):
    id: int
    cluster: str | None
    workspace: str | None = Field(description="none: a platform rule")
    resource_type: str
    resource_id: int | None = Field(description="none: every object of the type")
    resource: str = Field(description="what the rule covers, in words")
    level: str
    grantees: list[GranteeOut]
    created_at: datetime
    updated_at: datetime


class RuleList(BaseModel):
    items: list[RuleOut]
    total: int


class DefaultIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    default: DefaultLevel = Field(description="what objects no rule covers grant every member: modify, read or none")


class DefaultOut(BaseModel):
    cluster: str
    workspace: str
    default: str
