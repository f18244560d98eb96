"""Request and response shapes of the storage targets API."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from allotment.api.fields import Description, Name, Text

Url = Text(2048)
Secret = Text(16 * 1024, multiline=True)


class TargetFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: Description | None = None
    endpoint: Url | None = Field(None, description="s3: the server's URL (MinIO, seaweedfs); empty: AWS")
    bucket: Text(255) | None = Field(None, description="s3, gcs")
    region: Text(64) | None = Field(None, description="s3")
    access_key: Text(255) | None = Field(None, description="s3: the access key id")
    secret_key: Secret | None = Field(None, description="s3: the secret access key (write-only)")
    service_account_json: Secret | None = Field(None, description="gcs: the service account's JSON key (write-only)")
    repository_url: Url | None = Field(None, description="git: the repository's URL")
    token: Secret | None = Field(None, description="git: an access token (write-only)")
    path: Text(1024) | None = Field(None, description="folder: its absolute path on the cluster")


class TargetCreate(TargetFields):
    name: Name("storage target")
    kind: Literal["s3", "gcs", "git", "folder"]


class TargetUpdate(TargetFields):
    name: Name("storage target") | None = None
    kind: Literal["s3", "gcs", "git", "folder"] | None = None


class TargetOut(BaseModel):
    id: int
    name: str
    kind: str
    description: str | None
    endpoint: str | None
    bucket: str | None
    region: str | None
    access_key: str | None
    repository_url: str | None
    path: str | None
    secret_set: bool = Field(description="whether its secret is stored (it is never shown)")
    last_test_at: datetime | None
    last_test_ok: bool | None
    last_test_message: str | None
    created_at: datetime
    updated_at: datetime
    job_env: list[str] = Field(description="the variables a job that names the target receives")


class TargetList(BaseModel):
    items: list[TargetOut]
    total: int


class TargetTest(BaseModel):
    ok: bool
    message: str | None = Field(description="the service's error when it failed")
    target: TargetOut
