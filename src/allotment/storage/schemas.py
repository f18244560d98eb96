"""Request and response shapes of the storage hosts and folders API."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from allotment.api.fields import Capped, Description, Name, Ref, Text

Permission = Literal["ro", "rw", "rwd"]
InvitationState = Literal["pending", "accepted", "rejected", "cancelled"]
Secret = Text(1024)


class HostBody(BaseModel):
    """An S3 host needs endpoint, bucket, access_key and secret_key; a local host may name its root directory.
    The secret is write-only: leave it out of an edit to keep the stored one."""

    model_config = ConfigDict(extra="forbid")

    name: Name("storage host") | None = None
    kind: Literal["local", "s3"] | None = None
    description: Description | None = None
    root: Text(1024) | None = None
    endpoint: Text(1024) | None = None
    bucket: Text(255) | None = None
    region: Text(64) | None = None
    access_key: Text(255) | None = None
    secret_key: Secret | None = None
    cluster_paths: dict[Name("cluster"), Text(1024)] | None = Field(default=None, max_length=256)


class HostCreate(HostBody):
    name: Name("storage host")


class HostOut(BaseModel):
    name: str
    kind: str
    description: str | None
    root: str | None
    endpoint: str | None
    bucket: str | None
    region: str | None
    access_key: str | None
    secret_set: bool
    cluster_paths: dict[str, str]
    created_at: datetime
    updated_at: datetime


class HostList(BaseModel):
    items: list[HostOut]
    total: int


class HostTest(BaseModel):
    name: str
    ok: bool
    error: str | None


class FolderCreate(BaseModel):
    """A user folder (no group), or a group folder (platform admins) whose members get `permission` (default rw).
    `capacity`: "10Gi" or a bare number of GiB; default and most: the owner's policy's folder_capacity."""

    model_config = ConfigDict(extra="forbid")

    name: Name("folder")
    host: Ref | None = None
    group: Ref | None = None
    permission: Permission | None = None
    capacity: Capped("memory", 1024 * 2**30, bare_gib=True) | None = None


class FolderOut(BaseModel):
    id: int
    name: str
    host: str | None
    type: Literal["user", "group"]
    owner: str | None
    group: str | None
    permission: str
    via: str
    group_permission: str | None
    capacity: str
    trashed: bool
    trashed_at: datetime | None
    created_at: datetime
    usage_bytes: int | None = None


class FolderList(BaseModel):
    items: list[FolderOut]
    total: int


class ShareBody(BaseModel):
    """Invite a user to a user folder with a permission (rw unless given: delete only when granted)."""

    model_config = ConfigDict(extra="forbid")

    user: Ref
    permission: Permission = "rw"


class InvitationOut(BaseModel):
    id: int
    folder: str | None
    folder_id: int
    invitee: str | None
    inviter: str | None
    permission: str
    state: str
    direction: Literal["received", "sent"]
    created_at: datetime
    decided_at: datetime | None


class InvitationList(BaseModel):
    items: list[InvitationOut]
    total: int


class EntryOut(BaseModel):
    path: str
    size: int
    modified: datetime | None
    is_dir: bool


class EntryList(BaseModel):
    folder: str
    prefix: str
    items: list[EntryOut]
    usage_bytes: int
    capacity: str


class Purged(BaseModel):
    user: str
    purged: list[str]
