"""Storage targets (DKube DVS targets, ClearML web-app cloud access): where versioned metadata and data live.

Kinds: `s3` (S3 or MinIO: endpoint, bucket, region, access key and the secret key), `gcs` (bucket and the service
account's JSON key), `git` (a metadata source: repository URL and token) and `folder` (a folder on the cluster). The
secrets are stored only sealed (inventory/sealing.py) and never shown back."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from allotment.db import Base, UTCDateTime, utcnow


class StorageTarget(Base):
    __tablename__ = "storage_targets"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(8))  # s3 | gcs | git | folder
    description: Mapped[str | None] = mapped_column(String(255))
    endpoint: Mapped[str | None] = mapped_column(String(1024))  # s3: the server's URL (MinIO); NULL: AWS
    bucket: Mapped[str | None] = mapped_column(String(255))  # s3, gcs
    region: Mapped[str | None] = mapped_column(String(64))  # s3
    access_key: Mapped[str | None] = mapped_column(String(255))  # s3 (an identifier, not a secret)
    repository_url: Mapped[str | None] = mapped_column(String(2048))  # git
    path: Mapped[str | None] = mapped_column(String(1024))  # folder
    # s3: {"secret_key"}; gcs: {"service_account_json"}; git: {"token"}
    sealed_secrets: Mapped[str | None] = mapped_column(Text)
    last_test_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_test_ok: Mapped[bool | None] = mapped_column(Boolean)
    last_test_message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
