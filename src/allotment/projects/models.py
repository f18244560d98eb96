"""Projects (ClearML): a tree of named projects inside a workspace, and the models and datasets registered in them.

A project owns jobs (jobs.project_id), registered models and registered datasets. Names are unique among siblings
(projects with the same parent in the same workspace, roots included); the tree has no cycles and is at most
core.projects.MAX_DEPTH levels deep. Models and datasets are named, versioned entries that point at a folder path or a
storage target's URI and carry metadata; no file contents are stored here."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from allotment.db import Base, UTCDateTime, utcnow


class Project(Base):
    """A project of a workspace; `parent_id` NULL for a root project."""

    __tablename__ = "projects"
    __table_args__ = (
        UniqueConstraint("workspace_id", "parent_id", "name", name="uq_projects_sibling_name"),
        # SQL treats NULL parents as distinct, so root names need their own partial index.
        Index("uq_projects_root_name", "workspace_id", "name", unique=True,
              sqlite_where=text("parent_id IS NULL"), postgresql_where=text("parent_id IS NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    # The service refuses to delete a project that holds anything (unless forced); CASCADE here is for a workspace's
    # deletion, which takes its whole tree with it.
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    description: Mapped[str | None] = mapped_column(Text)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class _ArtifactColumns:
    """The columns models and datasets share: one row per version of a named entry of a project."""

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)  # 1, 2, ... per (project, name)
    # A folder path (/data/imagenet), a storage target's URI (s3://, gs://, az://, hdfs://) or a git URL.
    uri: Mapped[str] = mapped_column(String(2048))
    description: Mapped[str | None] = mapped_column(Text)
    # Free-form metadata (framework, metrics, sizes, tags), searched by key and value.
    meta: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ModelEntry(_ArtifactColumns, Base):
    """One version of a registered model."""

    __tablename__ = "model_entries"
    __table_args__ = (UniqueConstraint("project_id", "name", "version", name="uq_model_entries_version"),)

    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)


class DatasetEntry(_ArtifactColumns, Base):
    """One version of a registered dataset."""

    __tablename__ = "dataset_entries"
    __table_args__ = (UniqueConstraint("project_id", "name", "version", name="uq_dataset_entries_version"),)

    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)


class ArtifactName(Base):
    """The last version number given to a model or dataset name in a project: versions are never reused, so a
    reference to yolo@2 never comes to mean another entry after version 2 is deleted (even when every version was)."""

    __tablename__ = "artifact_names"
    __table_args__ = (UniqueConstraint("kind", "project_id", "name", name="uq_artifact_names"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # model | dataset
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    last_version: Mapped[int] = mapped_column(Integer, default=0)
