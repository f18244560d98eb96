"""Storage targets: register, change, test and remove them, and the environment a job that names one receives.

Secrets (an S3 secret key, a GCS service account's JSON key, a git token) are sealed with the server's key
(inventory/sealing.py, as the engines' secrets) and never shown back: an edit without a new secret keeps the old
one. Functions take a session and never commit."""

from __future__ import annotations

import json
import os
import re
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from allotment.core.permissions import Principal, storage_target_refusal
from allotment.db import utcnow
from allotment.errors import Conflict, FieldError, Forbidden, NotFound, ValidationFailed
from allotment.inventory.sealing import SecretsUnreadable, seal, unseal
from allotment.storage.targets_models import StorageTarget

KINDS = ("s3", "gcs", "git", "folder")
SECRET_FIELDS = {"s3": "secret_key", "gcs": "service_account_json", "git": "token"}
# What each kind needs (besides its secret) and what it may have.
REQUIRED = {"s3": ("bucket", "access_key"), "gcs": ("bucket",), "git": ("repository_url",), "folder": ("path",)}
ALLOWED = {"s3": {"endpoint", "bucket", "region", "access_key"}, "gcs": {"bucket"}, "git": {"repository_url"},
           "folder": {"path"}}
S3_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
GCS_BUCKET = re.compile(r"[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]")
REGION = re.compile(r"[a-z0-9-]{1,64}")
GIT_SCHEMES = ("https", "http", "ssh", "git", "file")
MAX_SERVICE_ACCOUNT_JSON = 16 * 1024


def authorise(principal: Principal, action: str) -> None:
    refusal = storage_target_refusal(principal, action)
    if refusal:
        raise Forbidden(refusal)


def find_target(session: Session, name: str, field: str | None = None) -> StorageTarget:
    target = session.scalar(select(StorageTarget).where(func.lower(StorageTarget.name) == str(name).strip().lower()))
    if target is None:
        if field:
            raise ValidationFailed(f"{field}: no storage target '{name}'",
                                   [FieldError(field, f"no storage target '{name}'")])
        raise NotFound(f"no storage target '{name}'")
    return target


def list_targets(session: Session) -> list[StorageTarget]:
    return list(session.scalars(select(StorageTarget).order_by(func.lower(StorageTarget.name))))


def out(target: StorageTarget) -> dict[str, Any]:
    """What anyone may see of a target: everything but its secret, of which only whether it is set."""
    return {"id": target.id, "name": target.name, "kind": target.kind, "description": target.description,
            "endpoint": target.endpoint, "bucket": target.bucket, "region": target.region,
            "access_key": target.access_key, "repository_url": target.repository_url, "path": target.path,
            "secret_set": bool(target.sealed_secrets), "last_test_at": target.last_test_at,
            "last_test_ok": target.last_test_ok, "last_test_message": target.last_test_message,
            "created_at": target.created_at, "updated_at": target.updated_at,
            "job_env": sorted(env_names(target))}


def audit_state(target: StorageTarget) -> dict[str, Any]:
    return {k: v for k, v in out(target).items()
            if k in ("name", "kind", "description", "endpoint", "bucket", "region", "access_key", "repository_url",
                     "path", "secret_set")}


# --- checks ------------------------------------------------------------------------------------------------------


def _url_problem(value: str, schemes: tuple[str, ...]) -> str | None:
    if value.startswith("git@") and "ssh" in schemes:  # scp-like: git@host:owner/repo.git
        return None if re.fullmatch(r"git@[A-Za-z0-9.-]+:[^\s]+", value) else "is not a repository address"
    parts = urlsplit(value)
    if parts.scheme not in schemes or (parts.scheme != "file" and not parts.hostname):
        return f"must be a URL starting with {', '.join(s + '://' for s in schemes)}"
    if any(c.isspace() for c in value):
        return "must not contain spaces"
    return None


def _service_account_problem(text: str) -> str | None:
    if len(text) > MAX_SERVICE_ACCOUNT_JSON:
        return f"at most {MAX_SERVICE_ACCOUNT_JSON} characters"
    try:
        info = json.loads(text)
    except json.JSONDecodeError as exc:
        return f"is not JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
    if not isinstance(info, dict) or info.get("type") != "service_account":
        return 'must be a service account key file (JSON with "type": "service_account")'
    missing = [k for k in ("client_email", "private_key", "token_uri") if not info.get(k)]
    if missing:
        return f"the key file lacks {', '.join(missing)}"
    return None


def _problems(kind: str, values: dict[str, Any], creating: bool) -> list[FieldError]:
    """Every problem of a target's values (on an update: its current values with the changes over them; its secret
    is then kept when none is given)."""
    errors: list[FieldError] = []
    for field in REQUIRED[kind]:
        if not (values.get(field) or "").strip():
            errors.append(FieldError(field, f"is required for a {kind} target"))
    for field in ("endpoint", "bucket", "region", "access_key", "repository_url", "path"):
        if values.get(field) and field not in ALLOWED[kind]:
            errors.append(FieldError(field, f"a {kind} target has no {field.replace('_', ' ')}"))
    secret_field = SECRET_FIELDS.get(kind)
    for other in set(SECRET_FIELDS.values()) - {secret_field}:
        if values.get(other):
            errors.append(FieldError(other, f"a {kind} target has no {other.replace('_', ' ')}"))
    if creating and kind in ("s3", "gcs") and not values.get(secret_field):
        errors.append(FieldError(secret_field, f"is required for a {kind} target"))
    bucket = values.get("bucket")
    if bucket and kind == "s3" and (not S3_BUCKET.fullmatch(bucket) or ".." in bucket):
        errors.append(FieldError("bucket", "an S3 bucket name is 3 to 63 lower-case letters, digits, dots and "
                                           "hyphens, starting and ending with a letter or digit"))
    if bucket and kind == "gcs" and not GCS_BUCKET.fullmatch(bucket):
        errors.append(FieldError("bucket", "a GCS bucket name is 3 to 222 lower-case letters, digits, dots, "
                                           "hyphens and underscores, starting and ending with a letter or digit"))
    if values.get("region") and not REGION.fullmatch(values["region"]):
        errors.append(FieldError("region", "a region is lower-case letters, digits and hyphens (e.g. eu-west-1)"))
    if values.get("endpoint") and (problem := _url_problem(values["endpoint"], ("https", "http"))):
        errors.append(FieldError("endpoint", problem))
    if values.get("repository_url") and (problem := _url_problem(values["repository_url"], GIT_SCHEMES)):
        errors.append(FieldError("repository_url", problem))
    if values.get("path") and not os.path.isabs(values["path"]):
        errors.append(FieldError("path", "must be an absolute path on the cluster"))
    if kind == "gcs" and values.get("service_account_json") and (
            problem := _service_account_problem(values["service_account_json"])):
        errors.append(FieldError("service_account_json", problem))
    return errors


def _raise(errors: list[FieldError]) -> None:
    if errors:
        raise ValidationFailed("; ".join(f"{e.field}: {e.message}" for e in errors), errors)


def _apply(target: StorageTarget, values: dict[str, Any], secret_key: str) -> None:
    for field in ("description", "endpoint", "bucket", "region", "access_key", "repository_url", "path"):
        if field in values:
            setattr(target, field, (values[field] or "").strip() or None)
    secret_field = SECRET_FIELDS.get(target.kind)
    if secret_field and values.get(secret_field):  # an edit without a new secret keeps the old one
        target.sealed_secrets = seal(secret_key, {secret_field: str(values[secret_field])})


def create_target(session: Session, principal: Principal, secret_key: str, values: dict[str, Any]) -> StorageTarget:
    authorise(principal, "manage")
    kind = values.get("kind")
    if kind not in KINDS:
        _raise([FieldError("kind", f"must be one of {', '.join(KINDS)}")])
    _raise(_problems(kind, values, creating=True))
    if session.scalar(select(StorageTarget.id).where(func.lower(StorageTarget.name) == values["name"].lower())):
        raise Conflict(f"a storage target named {values['name']} already exists",
                       [FieldError("name", f"storage target {values['name']} already exists")])
    target = StorageTarget(name=values["name"], kind=kind)
    _apply(target, values, secret_key)
    session.add(target)
    session.flush()
    return target


def update_target(session: Session, principal: Principal, secret_key: str, target: StorageTarget,
                  values: dict[str, Any]) -> StorageTarget:
    authorise(principal, "manage")
    if values.get("kind") not in (None, target.kind):
        _raise([FieldError("kind", f"a target's kind cannot change (it is {target.kind}): register a new target")])
    merged = {f: getattr(target, f) for f in ALLOWED[target.kind]} | {k: v for k, v in values.items() if k != "kind"}
    _raise(_problems(target.kind, merged, creating=False))
    renamed = values.get("name") and values["name"].lower() != target.name.lower()
    if renamed and session.scalar(select(StorageTarget.id).where(
            func.lower(StorageTarget.name) == values["name"].lower())):
        raise Conflict(f"a storage target named {values['name']} already exists",
                       [FieldError("name", f"storage target {values['name']} already exists")])
    if values.get("name"):
        target.name = values["name"]
    _apply(target, values, secret_key)
    target.last_test_at = target.last_test_ok = target.last_test_message = None  # a test said nothing of this
    target.updated_at = utcnow()
    session.flush()
    return target


def delete_target(session: Session, principal: Principal, target: StorageTarget) -> None:
    authorise(principal, "manage")
    session.delete(target)
    session.flush()


def secrets_of(target: StorageTarget, secret_key: str) -> dict[str, str]:
    try:
        return unseal(secret_key, target.sealed_secrets)
    except SecretsUnreadable:
        raise ValidationFailed(f"storage target {target.name}: its secret cannot be opened with this server's key "
                               f"(was the key changed?): set it again",
                               [FieldError(SECRET_FIELDS.get(target.kind, "secret"),
                                           "cannot be opened with this server's key: set it again")]) from None


# --- what a job receives -----------------------------------------------------------------------------------------


def env_names(target: StorageTarget) -> set[str]:
    return set(job_env(target, {SECRET_FIELDS[target.kind]: "x"} if target.kind in SECRET_FIELDS else {}))


def job_env(target: StorageTarget, secrets: dict[str, str]) -> dict[str, str]:
    """The variables a job that names the target receives: the standard names its clients read (boto3 and the AWS
    CLI read AWS_*; git reads the token from GIT_TOKEN through the job's own helper). The secret-bearing ones are on
    the default hide-list (core/hide_list.py)."""
    if target.kind == "s3":
        env = {"AWS_ACCESS_KEY_ID": target.access_key or "", "S3_BUCKET": target.bucket or ""}
        if secrets.get("secret_key"):
            env["AWS_SECRET_ACCESS_KEY"] = secrets["secret_key"]
        if target.region:
            env["AWS_DEFAULT_REGION"] = target.region
        if target.endpoint:
            env["AWS_ENDPOINT_URL"] = target.endpoint
        return env
    if target.kind == "gcs":
        env = {"GCS_BUCKET": target.bucket or ""}
        if secrets.get("service_account_json"):
            env["GCS_SERVICE_ACCOUNT_JSON"] = secrets["service_account_json"]
        return env
    if target.kind == "git":
        env = {"GIT_REPOSITORY_URL": target.repository_url or ""}
        if secrets.get("token"):
            env["GIT_TOKEN"] = secrets["token"]
        return env
    return {"STORAGE_FOLDER": target.path or ""}


def env_for_job(session: Session, principal: Principal, secret_key: str, names: list[str],
                field: str = "targets") -> dict[str, str]:
    """The variables of the targets a job names (`field` names them in errors); two targets that would set the same
    variable are refused."""
    authorise(principal, "use")
    env: dict[str, str] = {}
    origin: dict[str, str] = {}
    errors: list[FieldError] = []
    for i, name in enumerate(dict.fromkeys(names)):
        try:
            target = find_target(session, name, f"{field}.{i}")
        except ValidationFailed as exc:
            errors.extend(exc.errors)
            continue
        for key, value in job_env(target, secrets_of(target, secret_key)).items():
            if key in origin:
                errors.append(FieldError(f"{field}.{i}", f"targets {origin[key]} and {target.name} would both set "
                                                          f"{key}: a job takes one target of each kind"))
                break
            origin[key] = target.name
            env[key] = value
    _raise(errors)
    return env


def test_connection(session: Session, principal: Principal, secret_key: str, target: StorageTarget) -> str | None:
    """Try the real service (storage/targets_probe.py) and keep its answer on the target; None when it works."""
    from allotment.storage import targets_probe

    authorise(principal, "manage")
    problem = targets_probe.probe(target, secrets_of(target, secret_key))
    target.last_test_at, target.last_test_ok, target.last_test_message = utcnow(), problem is None, problem
    session.flush()
    return problem
