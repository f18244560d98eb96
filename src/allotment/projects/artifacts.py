"""Registered models and datasets of a project: named, versioned entries that point at a folder path or a storage
target's URI and carry metadata. No file contents are stored or read here.

Registering a name again adds its next version (1, 2, ...); earlier versions stay until deleted, and a version number
is never given twice (models.ArtifactName). Listings show each
name's latest version with its number of versions; a search matches names, descriptions, URIs, metadata keys and
values (case-insensitive), or with KEY=VALUE one metadata key's value exactly (as text)."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from allotment.core.names import name_problems, text_problems
from allotment.errors import Conflict, FieldError, NotFound, ValidationFailed, invalid
from allotment.projects.models import ArtifactName, DatasetEntry, ModelEntry, Project

KINDS: dict[str, type[ModelEntry | DatasetEntry]] = {"model": ModelEntry, "dataset": DatasetEntry}
# Storage targets an entry may point at: object stores, distributed file systems, and git (over https or ssh).
URI_SCHEMES = ("s3", "gs", "az", "abfs", "abfss", "hdfs", "file", "http", "https", "git", "ssh", "git+ssh",
               "git+https")
MAX_URI = 2048
MAX_METADATA_CHARS = 16 * 1024
MAX_METADATA_KEYS = 64
MAX_METADATA_KEY = 63
MAX_METADATA_DEPTH = 4
_SCP_GIT = re.compile(r"^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^\s]+$")  # git@github.com:org/repo.git


def check_uri(uri: str) -> str:
    """An absolute folder path, a URI of a known storage scheme with a host or bucket, or an scp-style git address."""
    uri = (uri or "").strip()
    if not uri:
        raise invalid("uri", "must not be empty: give a folder path (/data/set) or a URI (s3://bucket/path)")
    if len(uri) > MAX_URI:
        raise invalid("uri", f"must be at most {MAX_URI} characters long")
    if text_problems(uri) or any(c.isspace() for c in uri):
        raise invalid("uri", "must not contain spaces, control, zero-width or bidirectional formatting characters")
    if uri.startswith("/"):
        if any(part == ".." for part in uri.split("/")):
            raise invalid("uri", "a folder path must not contain '..' segments")
        return uri
    if _SCP_GIT.fullmatch(uri):
        return uri
    scheme = uri.split(":", 1)[0].lower() if "://" in uri else ""
    if not scheme:
        raise invalid("uri", "give an absolute folder path (/data/set) or a URI with its scheme (s3://bucket/path); "
                             "a relative path means nothing to the server")
    if scheme not in URI_SCHEMES:
        raise invalid("uri", f"unknown scheme '{scheme}': use one of {', '.join(URI_SCHEMES)} or a folder path")
    parts = urlsplit(uri)
    if scheme != "file" and not parts.netloc:
        raise invalid("uri", f"a {scheme} URI names its host or bucket: {scheme}://BUCKET-OR-HOST/path")
    return uri


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


def check_metadata(metadata: Any) -> dict[str, Any] | None:
    if metadata is None:
        return None
    if not isinstance(metadata, dict):
        raise invalid("metadata", "must be a JSON object of keys and values")
    if len(metadata) > MAX_METADATA_KEYS:
        raise invalid("metadata", f"at most {MAX_METADATA_KEYS} keys")
    for key in metadata:
        if not isinstance(key, str) or not key.strip() or len(key) > MAX_METADATA_KEY or text_problems(key):
            raise invalid("metadata", f"key {str(key)[:MAX_METADATA_KEY]!r} must be 1 to {MAX_METADATA_KEY} "
                                      f"printable characters")
    try:
        text = json.dumps(metadata, allow_nan=False)
    except ValueError:
        raise invalid("metadata", "numbers must be finite (no NaN or Infinity)") from None
    if len(text) > MAX_METADATA_CHARS:
        raise invalid("metadata", f"must be at most {MAX_METADATA_CHARS} characters as JSON (got {len(text)})")
    if _depth(metadata) > MAX_METADATA_DEPTH:
        raise invalid("metadata", f"nests at most {MAX_METADATA_DEPTH} levels deep")
    return metadata


def check_name(name: str, kind: str) -> str:
    name = (name or "").strip()
    problems = name_problems(name, kind)
    if problems:
        raise ValidationFailed(f"name: {problems[0]}", [FieldError("name", p) for p in problems])
    return name


def register(session: Session, kind: str, project: Project, name: str, uri: str, description: str | None = None,
             metadata: dict[str, Any] | None = None, created_by_id: int | None = None):
    """Add the next version of `name` in the project (version 1 for a new name)."""
    model = KINDS[kind]
    name = check_name(name, kind)
    uri = check_uri(uri)
    metadata = check_metadata(metadata)
    try:
        with session.begin_nested():
            counter = session.scalar(select(ArtifactName).where(
                ArtifactName.kind == kind, ArtifactName.project_id == project.id, ArtifactName.name == name)
                .with_for_update())
            if counter is None:
                counter = ArtifactName(kind=kind, project_id=project.id, name=name, last_version=0)
                session.add(counter)
            counter.last_version += 1
            entry = model(project_id=project.id, name=name, version=counter.last_version, uri=uri,
                          description=description, meta=metadata, created_by_id=created_by_id)
            session.add(entry)
            session.flush()
    except IntegrityError:
        raise Conflict(f"another version of {kind} {name} was registered at the same moment: register again",
                       [FieldError("name", "registered concurrently")]) from None
    return entry


def get(session: Session, kind: str, entry_id: int):
    entry = session.get(KINDS[kind], entry_id)
    if entry is None:
        raise NotFound(f"no {kind} {entry_id}")
    return entry


def versions(session: Session, kind: str, project_id: int, name: str) -> list:
    """Every version of the name in the project, newest first."""
    model = KINDS[kind]
    return list(session.scalars(select(model).where(model.project_id == project_id, model.name == name.strip())
                                .order_by(model.version.desc())))


def _matches(entry, needle: str) -> bool:
    key, sep, value = needle.partition("=")
    meta = entry.meta or {}
    if sep and key.strip() and key.strip() in meta:
        found = meta[key.strip()]
        return (found if isinstance(found, str) else json.dumps(found)).lower() == value.strip().lower()
    haystack = [entry.name, entry.description or "", entry.uri, json.dumps(meta, ensure_ascii=False)]
    return any(needle in text.lower() for text in haystack)


def list_latest(session: Session, kind: str, project_ids: list[int], search: str | None = None,
                name: str | None = None) -> list[tuple[Any, int]]:
    """(latest version, number of versions) of each name in the projects, by project then name; with `search`, the
    names whose latest version matches; with `name`, that name only."""
    if not project_ids:
        return []
    model = KINDS[kind]
    query = select(model).where(model.project_id.in_(project_ids))
    if name:
        query = query.where(model.name == name.strip())
    latest: dict[tuple[int, str], Any] = {}
    count: dict[tuple[int, str], int] = {}
    for entry in session.scalars(query):
        key = (entry.project_id, entry.name)
        count[key] = count.get(key, 0) + 1
        if key not in latest or entry.version > latest[key].version:
            latest[key] = entry
    needle = (search or "").strip().lower()
    rows = [(entry, count[key]) for key, entry in latest.items() if not needle or _matches(entry, needle)]
    return sorted(rows, key=lambda row: (row[0].project_id, row[0].name))


def delete_entry(session: Session, kind: str, entry, all_versions: bool = False) -> list[int]:
    """Delete one version, or every version of its name; the versions deleted."""
    model = KINDS[kind]
    where = [model.project_id == entry.project_id, model.name == entry.name]
    if not all_versions:
        where.append(model.version == entry.version)
    gone = sorted(session.scalars(select(model.version).where(*where)))
    session.execute(delete(model).where(*where).execution_options(synchronize_session=False))
    session.expunge(entry)
    return gone


def snapshot(entry, kind: str, project_path: str, workspace: str, cluster: str, versions_count: int | None = None,
             creator: str | None = None) -> dict[str, Any]:
    """An entry as the API shows it (and as audit records keep it)."""
    return {"id": entry.id, "kind": kind, "name": entry.name, "version": entry.version, "uri": entry.uri,
            "description": entry.description, "metadata": entry.meta or {}, "project_id": entry.project_id,
            "project": project_path, "workspace": workspace, "cluster": cluster, "versions": versions_count,
            "created_by": creator, "created_at": entry.created_at}
