"""Request and response shapes of the projects, models and datasets API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter, WithJsonSchema

from allotment.api.fields import Description, Name, Ref, SchemaPattern, SchemaRules, Text
from allotment.core import limits, names
from allotment.projects import artifacts

PROJECT_REF = ("a project: its id, or WORKSPACE/PATH (e.g. vision/detection/yolo) in the cluster given by `cluster`; "
               "one that names no project is 404")
# A reference that names nothing is 404 (as for every object a request names); only a blank one is malformed.
ProjectRef = Annotated[Ref, WithJsonSchema({
    "type": "string", "minLength": 1, "maxLength": limits.MAX_SHORT_TEXT,
    "allOf": [{"pattern": names.TEXT_REGEX}, {"pattern": r"\S"}], "description": PROJECT_REF})]
# Checked by projects.artifacts.check_uri (its message says what is wrong); the schema states the same rule.
Uri = Annotated[str, StringConstraints(max_length=artifacts.MAX_URI), SchemaPattern(artifacts.URI_REGEX),
                SchemaRules((("minLength", 1),)), Field(description=(
                    "where it lives: an absolute folder path (/data/imagenet), file:///path, a storage URI "
                    f"({', '.join(s + '://' for s in artifacts.URI_SCHEMES[:6])}HOST-OR-BUCKET/path) or a git URL "
                    "(https://, ssh://, git@host:org/repo.git); nothing is read from it"))]
MetadataKey = Annotated[str, StringConstraints(min_length=1, max_length=artifacts.MAX_METADATA_KEY),
                        WithJsonSchema({"type": "string", "minLength": 1, "maxLength": artifacts.MAX_METADATA_KEY,
                                        "allOf": [{"pattern": names.TEXT_REGEX}, {"pattern": r"\S"}]})]
MetadataScalar = Text(artifacts.MAX_METADATA_TEXT) | Annotated[float, Field(allow_inf_nan=False)] | int | bool | None
MetadataValue = MetadataScalar | Annotated[list[MetadataScalar], Field(max_length=artifacts.MAX_METADATA_LIST)]
# The schema states the rule; projects.artifacts.check_metadata checks it with a message naming the key and what is
# wrong with it (pydantic's would name the union's internals).
Metadata = Annotated[dict[str, Any], WithJsonSchema({
    **TypeAdapter(dict[MetadataKey, MetadataValue]).json_schema(), "maxProperties": artifacts.MAX_METADATA_KEYS})]


class ProjectCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cluster: Ref = Field("local", description="the workspace's cluster")
    workspace: Ref = Field(description="the workspace (name or id) the project lives in")
    name: Name("project")
    parent: Ref | None = Field(None, description="the parent project: its id or its path in the workspace "
                                                 "(detection/yolo); omitted: a top-level project")
    description: Description | None = None


class ProjectUpdate(BaseModel):
    """Rename, describe or move: only the fields given change. `parent` null moves the project to the top."""

    model_config = ConfigDict(extra="forbid")

    name: Name("project") | None = None
    description: Description | None = None
    parent: Ref | None = Field(None, description="the new parent (id or path in the workspace); null: the top")


class ProjectCounts(BaseModel):
    subprojects: int = Field(description="direct sub-projects")
    jobs: int = Field(description="jobs of this project (not of its sub-projects)")
    models: int = Field(description="model names registered here (each with one or more versions)")
    datasets: int = Field(description="dataset names registered here (each with one or more versions)")


class ProjectOut(BaseModel):
    id: int
    name: str
    path: str = Field(description="names from the workspace's top project down to this one, joined by '/'")
    depth: int = Field(description="0 for a top-level project")
    parent_id: int | None
    workspace: str
    workspace_id: int
    cluster: str
    description: str | None
    counts: ProjectCounts
    created_by: str | None
    created_at: datetime
    children: list[int] = Field(default_factory=list, description="ids of the direct sub-projects")


class ProjectList(BaseModel):
    items: list[ProjectOut] = Field(description="in tree order: each project followed by its sub-projects")
    total: int


class ProjectDeleted(BaseModel):
    deleted_projects: int = Field(description="the project and its sub-projects")
    deleted_model_versions: int
    deleted_dataset_versions: int
    detached_jobs: int = Field(description="jobs that stay, without a project")


class ArtifactCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    project: ProjectRef
    cluster: Ref = Field("local", description="the cluster a WORKSPACE/PATH project is in")
    name: Name("name")
    uri: Uri
    description: Description | None = None
    metadata: Metadata | None = Field(None, description="flat JSON object (framework, metrics, tags): texts, "
                                                        "numbers, booleans, null or lists of those; searchable")


class ArtifactOut(BaseModel):
    id: int
    kind: str = Field(description="model or dataset")
    name: str
    version: int = Field(description="1, 2, ... per name in the project")
    uri: str
    description: str | None
    metadata: dict[str, Any]
    project_id: int
    project: str = Field(description="the project's path in its workspace")
    workspace: str
    cluster: str
    versions: int | None = Field(None, description="in listings: how many versions the name has")
    created_by: str | None
    created_at: datetime


class ArtifactList(BaseModel):
    items: list[ArtifactOut]
    total: int


class ArtifactDeleted(BaseModel):
    name: str
    deleted_versions: list[int]
