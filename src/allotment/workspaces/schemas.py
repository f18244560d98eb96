"""Request and response shapes of the workspaces API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from allotment.api.fields import Description, Name, Refs


class WorkspaceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name("workspace", spaces=True)
    description: Description | None = None
    users: Refs = Field(default_factory=list, description="members: users (id, username or e-mail)")
    groups: Refs = Field(default_factory=list, description="members: groups (all their members)")


class WorkspaceUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name("workspace", spaces=True) | None = None
    description: Description | None = None


class MemberOut(BaseModel):
    kind: str = Field(description="user or group")
    name: str | None


class WorkspaceOut(BaseModel):
    id: int
    name: str
    cluster: str
    description: str | None
    members: list[MemberOut]
    quotas: list[str] = Field(description="quotas bound to the workspace: its members may submit to them")
    created_at: datetime


class WorkspaceList(BaseModel):
    items: list[WorkspaceOut]
    total: int
