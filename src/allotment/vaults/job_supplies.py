"""What a job receives besides its own declaration, and how its secrets are shown.

- Storage targets it names: their variables join its environment (storage/targets.py says which), refused when they
  clash with a variable the job declares.
- Its owner's effective configuration (the enabled vaults merged): kept with the job at submission and written by
  the engine into a file whose path is in ALLOT_CONFIG_FILE. A job submitted by a service account on behalf of a user
  is that user's job, so it gets that user's configuration.
- The hide-list in force for its owner masks its variables' values wherever they are shown (details, logs, audit,
  console), through core/hide_list.py.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.orm import Session

from allotment.core import hide_list
from allotment.core.permissions import Principal
from allotment.errors import FieldError, ValidationFailed
from allotment.inventory.sealing import SecretsUnreadable, seal, unseal
from allotment.storage import targets as storage_targets
from allotment.vaults import hide_lists
from allotment.vaults import service as vaults

CONFIG_ENV = "ALLOT_CONFIG_FILE"


def environment_with_targets(session: Session, principal: Principal, secret_key: str, names: list[str],
                             env: dict[str, str] | None, prefix: str = "") -> tuple[dict[str, str] | None, str | None]:
    """The job's environment with its targets' plain variables, and their secret ones sealed (stored apart, opened
    only to launch); a declared variable a target also sets is refused."""
    if not names:
        return env, None
    supplied = storage_targets.env_for_job(session, principal, secret_key, names, f"{prefix}targets")
    clashes = sorted(set(supplied) & set(env or {}))
    if clashes:
        errors = [FieldError(f"{prefix}env", f"{name} is set by the storage target the job names: do not declare it")
                  for name in clashes]
        raise ValidationFailed("; ".join(f"{e.field}: {e.message}" for e in errors), errors)
    secrets = {name: value for name, value in supplied.items() if name in hide_list.ALWAYS}
    plain = {name: value for name, value in supplied.items() if name not in secrets}
    return {**plain, **(env or {})}, seal(secret_key, secrets)


def job_env(job: Any, secret_key: str) -> dict[str, str]:
    """Every variable the job receives, its targets' sealed secrets opened: what the views mask (a value that cannot
    be opened with this server's key cannot appear in its output either)."""
    env = dict(job.env or {})
    if not getattr(job, "sealed_env", None):
        return env
    try:
        return {**unseal(secret_key, job.sealed_env), **env}
    except SecretsUnreadable:
        return env


def config_text(session: Session, owner_id: int) -> str:
    """The owner's effective configuration as the JSON a job reads (an empty object when no vault applies)."""
    return json.dumps(vaults.effective(session, owner_id).tree(), indent=2, sort_keys=True)


def hidden_names(session: Session, owner_id: int | None) -> frozenset[str]:
    return hide_lists.names_for(session, owner_id)


def masked_env(session: Session, owner_id: int | None, env: dict[str, str] | None) -> dict[str, str]:
    return hide_list.mask_env(env, hidden_names(session, owner_id))


def hidden_values(session: Session, owner_id: int | None, env: dict[str, str] | None) -> list[str]:
    """The values a view of the job's output must mask."""
    return hide_list.hidden_values(env, hidden_names(session, owner_id))



def audit_env(session: Session, owner_id: int | None, env: dict[str, Any] | None) -> dict[str, str] | None:
    """What the audit log keeps of a job's environment: its variables, hidden ones masked."""
    return masked_env(session, owner_id, env) if env else None
