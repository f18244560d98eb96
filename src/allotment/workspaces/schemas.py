"""Request and response shapes of the workspaces API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from allotment.api.fields import Description, Name, Refs, Text


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
    kind: str = Field(description="user, service_account or group")
    name: str | None
    role: str = Field(description="owner, admin, member or viewer")
    since: datetime


class WorkspaceOut(BaseModel):
    id: int
    name: str
    cluster: str
    description: str | None
    members: list[MemberOut]
    quotas: list[str] = Field(description="quotas bound to the workspace: its members may submit to them")
    personal: bool = Field(False, description="a user's personal workspace (they cannot leave it)")
    my_role: str | None = Field(None, description="the caller's role in it, if a member")
    created_at: datetime


class WorkspaceList(BaseModel):
    items: list[WorkspaceOut]
    total: int


class MemberIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Text(16) = Field("member", description="owner, admin, member or viewer")


class RoleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Text(16) = Field(description="owner, admin, member or viewer")


class InvitationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Text(254) = Field(description="the invitee's e-mail address, with or without an account")
    role: Text(16) = Field("member", description="the role accepting gives: owner, admin, member or viewer")
    lifetime_days: int = Field(7, ge=1, le=90, description="days the invitation may be accepted in (default 7)")


class InvitationOut(BaseModel):
    id: int
    email: str
    role: str
    invited_at: datetime = Field(description="pending since")
    expires_at: datetime = Field(description="it cannot be accepted after this")
    lifetime_days: int = Field(description="days it may be accepted in, from invited_at")
    status: str = Field(description="pending, or expired (it can no longer be accepted; cancel it to clear it)")
    workspace: str | None = None
    cluster: str | None = None


class InvitationCreated(InvitationOut):
    token: str = Field(description="shown once: accept with it (allot workspaces accept TOKEN)")
    link: str = Field(description="the console page that accepts it")


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: Text(128)


class LeaveOut(BaseModel):
    revoked_credentials: list[str] = Field(description="access keys of credentials scoped to the workspace, revoked")


class ScopedCredentialIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: Text(64) | None = None


class ScopedCredentialOut(BaseModel):
    access_key: str
    secret_key: str = Field(description="shown once")
    workspace: str


class SubmitRulesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    roles: list[Text(16)] = Field(default_factory=list, description="roles that may submit to the quota")
    users: Refs = Field(default_factory=list, description="members who may submit whatever their role")


class SubmitRulesOut(BaseModel):
    quota: str
    roles: list[str] | None = Field(description="null: no rule, members from `member` up may submit")
    users: list[str]
