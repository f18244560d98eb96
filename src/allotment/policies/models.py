"""Backend.AI per-user resource policies (the table; the rules are in policies/service.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from allotment.db import Base, UTCDateTime, utcnow


class ResourcePolicy(Base):
    """Backend.AI per-user caps checked at submission. NULL = unlimited. The name is the key and never changes;
    users refer to it by name (users.resource_policy; NULL there means the policy named 'default')."""

    __tablename__ = "resource_policies"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    description: Mapped[str | None] = mapped_column(String(255))
    max_cpu_milli: Mapped[int | None] = mapped_column(BigInteger)  # per job, at most 512 cores
    max_memory_bytes: Mapped[int | None] = mapped_column(BigInteger)  # per job, at most 1024 GiB
    max_gpu: Mapped[int | None] = mapped_column(Integer)  # whole devices per job, at most 64
    max_fgpu_milli: Mapped[int | None] = mapped_column(BigInteger)  # GPU amount per job, fractions, at most 256
    max_containers_per_job: Mapped[int | None] = mapped_column(Integer)  # at most 100
    idle_timeout_s: Mapped[int | None] = mapped_column(BigInteger)  # at most 15,552,000 (180 days)
    max_concurrent_jobs: Mapped[int | None] = mapped_column(Integer)  # at most 100
    max_folders: Mapped[int | None] = mapped_column(Integer)  # at most 50
    max_folder_bytes: Mapped[int | None] = mapped_column(BigInteger)  # at most 1024 GiB
    allowed_storage_hosts: Mapped[list[str] | None] = mapped_column(JSON)  # NULL = any
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
