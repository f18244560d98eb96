"""Configuration vaults: create, change, enable, list, and the effective configuration of a principal (ClearML
configuration vault and administrator vaults). Functions take a session and never commit."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from allotment.core import config_merge
from allotment.core.permissions import Principal, vault_refusal
from allotment.db import utcnow
from allotment.errors import Conflict, FieldError, Forbidden, NotFound, ValidationFailed
from allotment.identity import groups as identity_groups
from allotment.identity import service as identity
from allotment.vaults import formats
from allotment.vaults.models import ConfigVault

MAX_CONTENT = 256 * 1024  # characters of one vault's text


@dataclass
class Owner:
    """Whom a vault belongs to: a user or service account (user_id), or a group (group_id)."""

    kind: str  # user | service_account | group
    name: str
    user_id: int | None = None
    group_id: int | None = None


def owner_of(session: Session, vault: ConfigVault) -> Owner:
    if vault.group_id is not None:
        return Owner("group", identity_groups.find_group(session, vault.group_id).name, group_id=vault.group_id)
    user = identity.find_user(session, vault.user_id)
    return Owner(user.kind, user.username, user_id=user.id)


def find_owner(session: Session, user: str | None, service_account: str | None, group: str | None,
               principal: Principal) -> Owner:
    """The owner a request names (at most one of the three; none: the caller itself)."""
    given = [(k, v) for k, v in (("user", user), ("service_account", service_account), ("group", group)) if v]
    if len(given) > 1:
        raise ValidationFailed("give one owner: user, service_account or group",
                               [FieldError(k, "give only one of user, service_account and group") for k, _ in given])
    if not given:
        found = identity.find_user(session, principal.id)
        return Owner(found.kind, found.username, user_id=found.id)
    kind, ref = given[0]
    if kind == "group":
        found_group = identity_groups.find_group(session, ref)
        return Owner("group", found_group.name, group_id=found_group.id)
    found = identity.find_user(session, ref)
    if found.kind != kind:
        raise ValidationFailed(f"{kind}: {found.username} is a {found.kind.replace('_', ' ')}",
                               [FieldError(kind, f"{found.username} is a {found.kind.replace('_', ' ')}")])
    return Owner(kind, found.username, user_id=found.id)


def authorise(principal: Principal, owner: Owner, action: str) -> None:
    refusal = vault_refusal(principal, action, owner.user_id, owner.group_id)
    if refusal:
        raise Forbidden(refusal)


def check_content(fmt: str, content: str, field: str = "content") -> dict[str, Any]:
    """The parsed configuration, or ValidationFailed naming the parser's line and column, or each machine key set."""
    if fmt not in formats.FORMATS:
        raise ValidationFailed(f"format: must be one of {', '.join(formats.FORMATS)}",
                               [FieldError("format", f"must be one of {', '.join(formats.FORMATS)}")])
    if len(content) > MAX_CONTENT:
        raise ValidationFailed(f"{field}: at most {MAX_CONTENT} characters (got {len(content)})",
                               [FieldError(field, f"at most {MAX_CONTENT} characters (got {len(content)})")])
    try:
        tree = formats.parse(fmt, content)
    except formats.Unreadable as exc:
        message = f"not valid {fmt.upper()}: {exc}"
        raise ValidationFailed(f"{field}: {message}", [FieldError(field, message)]) from None
    machine = config_merge.machine_keys_in(tree)
    if machine:
        errors = [FieldError(field, f"{key} is machine-specific: it is set where the job runs, never in a vault")
                  for key in machine]
        raise ValidationFailed(f"{field}: a vault cannot set {', '.join(machine)}", errors)
    return tree


def find_vault(session: Session, principal: Principal, name: str) -> ConfigVault:
    """The vault named `name` that the principal may read (others' vaults do not exist for it: 404)."""
    vault = session.scalar(select(ConfigVault).where(func.lower(ConfigVault.name) == name.strip().lower()))
    if vault is None or vault_refusal(principal, "read", vault.user_id, vault.group_id):
        raise NotFound(f"no vault '{name}'")
    return vault


def _name_free(session: Session, name: str, exclude_id: int | None = None) -> None:
    other = session.scalar(select(ConfigVault.id).where(func.lower(ConfigVault.name) == name.lower()))
    if other is not None and other != exclude_id:
        raise Conflict(f"a vault named {name} already exists", [FieldError("name", f"vault {name} already exists")])


def create_vault(session: Session, principal: Principal, name: str, owner: Owner, fmt: str, content: str,
                 enabled: bool, position: int) -> ConfigVault:
    authorise(principal, owner, "manage")
    check_content(fmt, content)
    _name_free(session, name)
    vault = ConfigVault(name=name, user_id=owner.user_id, group_id=owner.group_id, format=fmt, content=content,
                        enabled=enabled, position=position, updated_by=principal.actor_username or principal.username)
    session.add(vault)
    session.flush()
    return vault


def update_vault(session: Session, principal: Principal, vault: ConfigVault, changes: dict[str, Any]) -> ConfigVault:
    """Apply `changes` (name, format, content, enabled, position); content is checked in the format it will have."""
    authorise(principal, owner_of(session, vault), "manage")
    fmt = changes.get("format") or vault.format
    if "content" in changes or "format" in changes:
        check_content(fmt, changes["content"] if changes.get("content") is not None else vault.content)
    if changes.get("name"):
        _name_free(session, changes["name"], vault.id)
        vault.name = changes["name"]
    vault.format = fmt
    if changes.get("content") is not None:
        vault.content = changes["content"]
    if changes.get("enabled") is not None:
        vault.enabled = changes["enabled"]
    if changes.get("position") is not None:
        vault.position = changes["position"]
    vault.updated_at = utcnow()
    vault.updated_by = principal.actor_username or principal.username
    session.flush()
    return vault


def delete_vault(session: Session, principal: Principal, vault: ConfigVault) -> None:
    authorise(principal, owner_of(session, vault), "manage")
    session.delete(vault)
    session.flush()


def list_vaults(session: Session, principal: Principal, owner: Owner | None = None) -> list[ConfigVault]:
    """The vaults the principal may read (or those of `owner`): group vaults first in merge order, then the rest."""
    query = select(ConfigVault)
    if owner is not None:
        authorise(principal, owner, "read")
        query = query.where(ConfigVault.user_id == owner.user_id) if owner.user_id is not None \
            else query.where(ConfigVault.group_id == owner.group_id)
    elif not principal.is_platform_admin:
        query = query.where(or_(ConfigVault.user_id == principal.id, ConfigVault.group_id.in_(principal.group_ids)))
    rows = session.scalars(query).all()
    return sorted(rows, key=lambda v: (v.group_id is None, v.position, v.name.lower()))


@dataclass
class EffectiveView:
    user: str
    values: dict[str, Any]
    sources: dict[str, str]
    vaults: list[str]  # the enabled vaults merged, in order
    updated_at: datetime | None

    def tree(self) -> dict[str, Any]:
        return config_merge.unflatten(self.values)


def layers_for(session: Session, user_id: int) -> list[ConfigVault]:
    """The enabled vaults that apply to a user or service account, in merge order: its groups' vaults by position
    (then name), then its own by position (then name)."""
    person = identity.find_user(session, user_id)
    group_ids = identity_groups.group_ids(session, person)
    rows = session.scalars(select(ConfigVault).where(
        ConfigVault.enabled.is_(True),
        or_(ConfigVault.user_id == person.id, ConfigVault.group_id.in_(group_ids)))).all()
    return sorted(rows, key=lambda v: (v.group_id is None, v.position, v.name.lower()))


def effective(session: Session, user_id: int) -> EffectiveView:
    """The merged configuration of one user or service account, with the vault each key came from."""
    person = identity.find_user(session, user_id)
    rows = layers_for(session, user_id)
    merged = config_merge.merge(config_merge.Layer(v.name, formats.parse(v.format, v.content)) for v in rows)
    return EffectiveView(user=person.username, values=merged.values, sources=merged.sources,
                         vaults=[v.name for v in rows], updated_at=max((v.updated_at for v in rows), default=None))


def effective_for(session: Session, principal: Principal, user: str | None) -> EffectiveView:
    """`allot config effective [--user U]`: the caller's own, or (admins, and the user themselves) another's."""
    if user is None:
        return effective(session, principal.id)
    target = identity.find_user(session, user)
    if not principal.is_platform_admin and target.id != principal.id:
        raise Forbidden("only platform admins see another principal's effective configuration")
    return effective(session, target.id)


def snapshot(session: Session, vault: ConfigVault) -> dict[str, Any]:
    owner = owner_of(session, vault)
    return {"id": vault.id, "name": vault.name, "owner_kind": owner.kind, "owner": owner.name,
            "format": vault.format, "content": vault.content, "enabled": vault.enabled, "position": vault.position,
            "created_at": vault.created_at, "updated_at": vault.updated_at, "updated_by": vault.updated_by}


def audit_state(vault: ConfigVault) -> dict[str, Any]:
    """What audit records keep of a vault: not its content (it may hold credentials), only its size."""
    return {"name": vault.name, "format": vault.format, "enabled": vault.enabled, "position": vault.position,
            "content_chars": len(vault.content)}
