"""Request and response shapes of the resource policies API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from allotment.api.fields import Capped, Count, Description, Name, Refs
from allotment.policies.service import CAP_BY_FIELD


class PolicyBody(BaseModel):
    """Caps; null or "unlimited" = unlimited. Quantities as text: cpu "8", memory "64Gi" (a bare number
    is GiB), fgpu "2.5"."""

    model_config = ConfigDict(extra="forbid")

    name: Name("resource policy", spaces=True) | None = None
    description: Description | None = None
    cpu: Capped("cpu", CAP_BY_FIELD["cpu"].bound) | None = None
    memory: Capped("memory", CAP_BY_FIELD["memory"].bound, bare_gib=True) | None = None
    gpu: Count(CAP_BY_FIELD["gpu"].bound) | None = None
    fgpu: Capped("gpu", CAP_BY_FIELD["fgpu"].bound) | None = None
    containers_per_job: Count(CAP_BY_FIELD["containers_per_job"].bound) | None = None
    idle_timeout_s: Count(CAP_BY_FIELD["idle_timeout_s"].bound) | None = None
    concurrent_jobs: Count(CAP_BY_FIELD["concurrent_jobs"].bound) | None = None
    folders: Count(CAP_BY_FIELD["folders"].bound) | None = None
    folder_capacity: Capped("memory", CAP_BY_FIELD["folder_capacity"].bound, bare_gib=True) | None = None
    allowed_storage_hosts: Refs | None = None


class PolicyCreate(PolicyBody):
    """A new policy: its name is its key, so it is required here (PATCH takes the same body without it)."""

    name: Name("resource policy", spaces=True)


class PolicyOut(BaseModel):
    name: str
    description: str | None
    cpu: str
    memory: str
    gpu: int | None
    fgpu: str
    containers_per_job: int | None
    idle_timeout_s: int | None
    concurrent_jobs: int | None
    folders: int | None
    folder_capacity: str
    allowed_storage_hosts: list[str] | None
    created_at: datetime
    updated_at: datetime


class PolicyList(BaseModel):
    items: list[PolicyOut]
    total: int


class Allowance(BaseModel):
    user: str
    policy: str
    caps: dict[str, dict[str, Any]]
    allowed_storage_hosts: list[str] | None
