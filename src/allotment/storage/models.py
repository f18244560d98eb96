"""Storage hosts and folders (Backend.AI vfolders): where folders live, the folders, and invitations to them.

A folder belongs to one user (a user folder, shared by invitation) or to one group (a group folder, created by a
platform admin and visible to every member of the group with the permission it was created with). Its files live
on its host under a key of the folder's id, so a rename never moves data.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, CheckConstraint, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from allotment.db import Base, UTCDateTime, utcnow


class StorageHost(Base):
    """A place folders live: a local directory of the server (`root`; NULL: `<data dir>/folders`) or an
    S3-compatible bucket (endpoint, bucket, region, access key, and the secret key only sealed). `cluster_paths`
    maps a cluster's name to where the host's folders are on that cluster's shared file system (Slurm mounts)."""

    __tablename__ = "storage_hosts"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # local | s3
    description: Mapped[str | None] = mapped_column(String(255))
    root: Mapped[str | None] = mapped_column(String(1024))
    endpoint: Mapped[str | None] = mapped_column(String(1024))
    bucket: Mapped[str | None] = mapped_column(String(255))
    region: Mapped[str | None] = mapped_column(String(64))
    access_key: Mapped[str | None] = mapped_column(String(255))
    sealed_secret: Mapped[str | None] = mapped_column(Text)
    cluster_paths: Mapped[dict | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class Folder(Base):
    """A storage folder. `permission` (ro, rw, rwd) is what the members of a group folder get; a user folder's
    owner always has rwd. `trashed_at` set: in the trash (no file access, no mounts) until restored or purged.
    `capacity_bytes`: the most its files may hold (NULL: unlimited), fixed at creation from the owner's policy."""

    __tablename__ = "folders"
    __table_args__ = (
        CheckConstraint("(owner_id IS NULL) <> (group_id IS NULL)", name="one_owner"),
        UniqueConstraint("owner_id", "name", name="uq_folders_owner_name"),
        UniqueConstraint("group_id", "name", name="uq_folders_group_name"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    host_id: Mapped[int] = mapped_column(ForeignKey("storage_hosts.id", ondelete="RESTRICT"), index=True)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    group_id: Mapped[int | None] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"), index=True)
    permission: Mapped[str] = mapped_column(String(3), default="rwd")
    capacity_bytes: Mapped[int | None] = mapped_column(BigInteger)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    trashed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class FolderInvitation(Base):
    """An invitation to a user folder: pending until the invitee accepts or rejects it, or the owner cancels it.
    An accepted invitation is the invitee's access, with its permission."""

    __tablename__ = "folder_invitations"

    id: Mapped[int] = mapped_column(primary_key=True)
    folder_id: Mapped[int] = mapped_column(ForeignKey("folders.id", ondelete="CASCADE"), index=True)
    invitee_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    inviter_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    permission: Mapped[str] = mapped_column(String(3))
    state: Mapped[str] = mapped_column(String(16), default="pending")  # pending | accepted | rejected | cancelled
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
