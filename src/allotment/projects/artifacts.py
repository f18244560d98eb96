"""Registered models and datasets of a project: named, versioned entries that point at a folder path or a storage
target's URI and carry metadata. No file contents are stored or read here.

Registering a name again adds its next version (1, 2, ...); earlier versions stay until deleted, and a version number
is never given twice (models.ArtifactName). Listings show each
name's latest version with its number of versions; a search matches names, descriptions, URIs, metadata keys and
values (case-insensitive), or with KEY=VALUE one metadata key's value exactly (as text)."""

from __future__ import annotations

import json
import math
import re
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from allotment.core.names import TEXT_FORBIDDEN, name_problems, text_problems
from allotment.errors import Conflict, FieldError, NotFound, ValidationFailed, invalid
from allotment.projects.models import ArtifactName, DatasetEntry, ModelEntry, Project

KINDS: dict[str, type[ModelEntry | DatasetEntry]] = {"model": ModelEntry, "dataset": DatasetEntry}
# Storage targets an entry may point at: object stores, distributed file systems, and git (over https or ssh).
URI_SCHEMES = ("s3", "gs", "az", "abfs", "abfss", "hdfs", "http", "https", "git", "ssh", "git+ssh", "git+https")
MAX_URI = 2048
_URI_CHAR = r"[^\s" + TEXT_FORBIDDEN + "]"
# What `uri` accepts, stated once for the API's schema and the service: an absolute folder path, file:///path, a URI
# of a known scheme with its host or bucket, or an scp-style git address (git@github.com:org/repo.git). Lower-case
# schemes, no spaces, controls or invisible characters. Without lookarounds, so every engine reads it alike.
URI_REGEX = ("^(?:/" + _URI_CHAR + "*|file:///" + _URI_CHAR + "*|(?:" + "|".join(re.escape(s) for s in URI_SCHEMES)
             + ")://[^/\\s" + TEXT_FORBIDDEN + "]+(?:/" + _URI_CHAR + "*)?|[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:"
             + _URI_CHAR + "+)$")
_URI = re.compile(URI_REGEX)
MAX_METADATA_KEYS = 64
MAX_METADATA_KEY = 63
MAX_METADATA_TEXT = 1024
MAX_METADATA_LIST = 64


def check_uri(uri: str) -> str:
    """The URI as given when URI_REGEX accepts it; otherwise a 422 that says what is wrong with it."""
    if uri and len(uri) <= MAX_URI and _URI.fullmatch(uri):
        return uri
    if not uri:
        raise invalid("uri", "must not be empty: give a folder path (/data/set) or a URI (s3://bucket/path)")
    if len(uri) > MAX_URI:
        raise invalid("uri", f"must be at most {MAX_URI} characters long")
    if text_problems(uri) or any(c.isspace() for c in uri):
        raise invalid("uri", "must not contain spaces, control, zero-width or bidirectional formatting characters")
    scheme = uri.split("://", 1)[0] if "://" in uri else ""
    if not scheme:
        raise invalid("uri", "give an absolute folder path (/data/set) or a URI with its scheme (s3://bucket/path); "
                             "a relative path means nothing to the server")
    if scheme not in (*URI_SCHEMES, "file"):
        raise invalid("uri", f"unknown scheme '{scheme}': use one of {', '.join(URI_SCHEMES)}, file:/// or a "
                             f"folder path (schemes in lower case)")
    if scheme == "file":
        raise invalid("uri", "a file URI is file:///absolute/path")
    raise invalid("uri", f"a {scheme} URI names its host or bucket: {scheme}://BUCKET-OR-HOST/path")


def _scalar_problem(value: Any) -> str | None:
    if value is None or isinstance(value, bool | int):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else "numbers must be finite"
    if isinstance(value, str):
        if len(value) > MAX_METADATA_TEXT:
            return f"texts are at most {MAX_METADATA_TEXT} characters"
        return "; ".join(text_problems(value)) or None
    return "values are texts, numbers, true, false, null or lists of those (no nested objects)"


def check_metadata(metadata: Any) -> dict[str, Any] | None:
    """Flat metadata, as ClearML keeps it: keys to texts, numbers, booleans, null or lists of those."""
    if metadata is None:
        return None
    if not isinstance(metadata, dict):
        raise invalid("metadata", "must be a JSON object of keys and values")
    if len(metadata) > MAX_METADATA_KEYS:
        raise invalid("metadata", f"at most {MAX_METADATA_KEYS} keys")
    for key, value in metadata.items():
        if not isinstance(key, str) or not key.strip() or len(key) > MAX_METADATA_KEY or text_problems(key):
            raise invalid("metadata", f"key {str(key)[:MAX_METADATA_KEY]!r} must be 1 to {MAX_METADATA_KEY} "
                                      f"printable characters, not only spaces")
        items = value if isinstance(value, list) else [value]
        if isinstance(value, list) and len(value) > MAX_METADATA_LIST:
            raise invalid("metadata", f"{key}: lists hold at most {MAX_METADATA_LIST} values")
        problem = next((p for p in map(_scalar_problem, items) if p), None)
        if problem:
            raise invalid("metadata", f"{key}: {problem}")
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
    from allotment.access.service import forget_object  # access reads entries through this module

    forget_object(session, kind, session.scalars(select(model.id).where(*where)))  # their access rules go too
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
