"""Storage hosts: the local directory host `local` (always there, under the server's data directory unless given a
root) and S3-compatible hosts. An S3 host's secret key is stored only sealed (inventory/sealing.py, the engines'
Fernet sealing) and never shown back; an edit without a new secret keeps the old one. A resource policy's
`allowed_storage_hosts` names the hosts its users may put folders on (NULL: any).

`cluster_paths` ({cluster name: path}) says where a host's folders are on a cluster's shared file system: the Slurm
engine mounts a folder as `<path>/<folder id>` there."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from allotment.audit import service as audit
from allotment.core.names import name_problems
from allotment.core.permissions import Principal
from allotment.errors import Conflict, FieldError, NotFound, ValidationFailed, invalid
from allotment.inventory.sealing import SecretsUnreadable, seal, unseal
from allotment.storage.models import Folder, StorageHost
from allotment.storage.stores import LocalStore, S3Store, StoreError

DEFAULT_HOST = "local"
KINDS = ("local", "s3")


@dataclass(frozen=True)
class StorageContext:
    """What the storage service needs of the server: its secret key (sealing) and data directory (the default
    local host's root)."""

    secret_key: str
    data_dir: Path

    @classmethod
    def of(cls, state: Any) -> StorageContext:
        return cls(state.secret_key, Path(state.settings.data_dir))


def ensure_default_host(session: Session) -> StorageHost:
    host = session.scalar(select(StorageHost).where(StorageHost.name == DEFAULT_HOST))
    if host is None:
        host = StorageHost(name=DEFAULT_HOST, kind="local", description="a directory of the server")
        session.add(host)
        session.flush()
    return host


def list_hosts(session: Session) -> list[StorageHost]:
    ensure_default_host(session)
    return list(session.scalars(select(StorageHost).order_by(StorageHost.name)).all())


def find_host(session: Session, name: str, field: str | None = None) -> StorageHost:
    ensure_default_host(session)
    host = session.scalar(select(StorageHost).where(StorageHost.name == (name or "").strip()))
    if host is None:
        if field is not None:
            raise invalid(field, f"no storage host '{name}'")
        raise NotFound(f"no storage host '{name}'")
    return host


def local_root(host: StorageHost, ctx: StorageContext) -> Path:
    return Path(host.root) if host.root else ctx.data_dir.resolve() / "folders"


def store_for(host: StorageHost, ctx: StorageContext) -> LocalStore | S3Store:
    if host.kind == "local":
        return LocalStore(local_root(host, ctx))
    try:
        secret = unseal(ctx.secret_key, host.sealed_secret).get("secret_key", "")
    except SecretsUnreadable:
        raise StoreError(f"storage host {host.name}'s secret key cannot be opened with this server's key (was the "
                         f"key changed?): set it again") from None
    return S3Store(host.endpoint or "", host.bucket or "", host.access_key or "", secret, host.region)


def host_out(host: StorageHost) -> dict[str, Any]:
    return {"name": host.name, "kind": host.kind, "description": host.description, "root": host.root,
            "endpoint": host.endpoint, "bucket": host.bucket, "region": host.region, "access_key": host.access_key,
            "secret_set": bool(host.sealed_secret), "cluster_paths": host.cluster_paths or {},
            "created_at": host.created_at, "updated_at": host.updated_at}


def _check_paths(value: Any, errors: list[FieldError]) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or any(not isinstance(k, str) or not isinstance(v, str) or not v.startswith("/")
                                          for k, v in value.items()):
        errors.append(FieldError("cluster_paths", "must map cluster names to absolute paths"))
        return None
    return {k.strip(): v.rstrip("/") or "/" for k, v in value.items()}


def _apply(host: StorageHost, values: dict[str, Any], ctx: StorageContext, creating: bool) -> None:
    values = {k: (None if isinstance(v, str) and not v.strip() else v) for k, v in values.items()}  # "" = not given
    errors: list[FieldError] = []
    if "description" in values:
        host.description = values["description"]
    if "cluster_paths" in values:
        host.cluster_paths = _check_paths(values["cluster_paths"], errors)
    if host.kind == "local":
        for field in ("endpoint", "bucket", "region", "access_key", "secret_key"):
            if values.get(field) is not None:
                errors.append(FieldError(field, "applies to S3 hosts only"))
        if values.get("root") is not None:
            root = str(values["root"]).strip()
            if not root.startswith("/"):
                errors.append(FieldError("root", "must be an absolute directory path"))
            else:
                host.root = root
    else:
        if values.get("root") is not None:
            errors.append(FieldError("root", "applies to local hosts only"))
        for field in ("endpoint", "bucket", "region", "access_key"):
            if field in values and values[field] is not None:
                setattr(host, field, str(values[field]).strip() or None)
        if host.endpoint and urlparse(host.endpoint).scheme not in ("http", "https"):
            errors.append(FieldError("endpoint", "must be an http:// or https:// URL"))
        for field in ("endpoint", "bucket", "access_key"):
            if not getattr(host, field):
                errors.append(FieldError(field, "is required for an S3 host"))
        if values.get("secret_key"):
            host.sealed_secret = seal(ctx.secret_key, {"secret_key": str(values["secret_key"])})
        elif creating:
            errors.append(FieldError("secret_key", "is required for an S3 host"))
    if errors:
        raise ValidationFailed("; ".join(f"{e.field}: {e.message}" for e in errors), errors)


def create_host(session: Session, ctx: StorageContext, values: dict[str, Any], actor: Principal,
                source: str | None = None) -> StorageHost:
    name = (values.get("name") or "").strip()
    problems = name_problems(name) if name else ["is required"]
    if problems:
        raise invalid("name", "; ".join(problems))
    kind = values.get("kind") or "s3"
    if kind not in KINDS:
        raise invalid("kind", f"must be one of {', '.join(KINDS)}")
    ensure_default_host(session)
    if session.scalar(select(StorageHost.id).where(StorageHost.name == name)):
        raise Conflict(f"a storage host named {name} already exists", [FieldError("name", "already exists")])
    host = StorageHost(name=name, kind=kind)
    _apply(host, values, ctx, creating=True)
    session.add(host)
    session.flush()
    audit.record(session, actor, "storage_host.create", "storage_host", host.name, host.id,
                 changes={"after": _audited(host)}, source=source)
    return host


def _audited(host: StorageHost) -> dict[str, Any]:
    return {k: v for k, v in host_out(host).items() if k not in ("created_at", "updated_at")}


def update_host(session: Session, ctx: StorageContext, host: StorageHost, values: dict[str, Any], actor: Principal,
                source: str | None = None) -> StorageHost:
    if values.get("kind") not in (None, host.kind):
        raise invalid("kind", "cannot be changed: create another host")
    if values.get("name") not in (None, host.name):
        raise invalid("name", "cannot be changed: folders and resource policies refer to it")
    before = _audited(host)
    _apply(host, values, ctx, creating=False)
    session.flush()
    audit.record(session, actor, "storage_host.update", "storage_host", host.name, host.id,
                 changes=audit.diff(before, _audited(host)), source=source)
    return host


def delete_host(session: Session, host: StorageHost, actor: Principal, source: str | None = None) -> None:
    if host.name == DEFAULT_HOST:
        raise Conflict("the local host cannot be deleted")
    count = session.scalar(select(func.count()).select_from(Folder).where(Folder.host_id == host.id)) or 0
    if count:
        raise Conflict(f"storage host {host.name} holds {count} folder(s): purge or move them first")
    session.delete(host)
    session.flush()
    audit.record(session, actor, "storage_host.delete", "storage_host", host.name, host.id, source=source)


def test_host(host: StorageHost, ctx: StorageContext) -> str | None:
    """Try the host for real; the error it answered, or None when it works."""
    try:
        store_for(host, ctx).check()
    except StoreError as exc:
        return str(exc)
    return None
