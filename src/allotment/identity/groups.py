"""Groups: create, rename, delete, membership. Functions take a session and never commit.

Built-in groups: `users` holds every human user implicitly (no membership rows; it cannot be changed), `admins`,
whose members are platform admins (its last active member cannot leave), and `queue-admins`, whose members create,
change and delete quotas and profiles without being cluster admins. Built-ins cannot be renamed or deleted.
Deleting a group that has members or grants anything is refused unless forced; forced, it removes only what it
granted: its memberships, cluster role grants, quota bindings and workspace memberships.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from allotment.api.state import mark_identity_changed
from allotment.audit import service as audit
from allotment.core.names import as_id, confusable_with, is_digits
from allotment.core.permissions import Principal
from allotment.errors import Conflict, FieldError, NotFound, ValidationFailed
from allotment.identity.models import ADMINS_GROUP, USER, USERS_GROUP, ClusterRoleGrant, Group, GroupMember, User
from allotment.identity.service import ensure_admin_remains
from allotment.inventory.models import Cluster

MAX_NAME = 64
MAX_DESCRIPTION = 255
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def name_problems(name: str) -> list[str]:
    problems = []
    if not name:
        return ["must not be empty"]
    if len(name) > MAX_NAME:
        problems.append(f"must be at most {MAX_NAME} characters long")
    if not NAME_PATTERN.fullmatch(name):
        problems.append("must start with a letter or digit and contain only letters, digits, '.', '_' and '-'")
    if is_digits(name):
        problems.append("must not be only digits (it would be mistaken for a group id)")
    return problems


def description_problems(description: str | None) -> list[str]:
    if description and len(description) > MAX_DESCRIPTION:
        return [f"must be at most {MAX_DESCRIPTION} characters long"]
    return []


def _raise(problems: dict[str, list[str]]) -> None:
    errors = [FieldError(f, m) for f, msgs in problems.items() for m in msgs]
    if errors:
        raise ValidationFailed("; ".join(f"{e.field} {e.message}" for e in errors), errors)


def group_ids(session: Session, user: User) -> list[int]:
    """The ids of a user's groups (identity.service.group_names' groups), in one query (a job submission asks for them with every batch)."""
    condition = Group.id.in_(select(GroupMember.group_id).where(GroupMember.user_id == user.id))
    if user.kind == USER:
        condition = condition | (Group.name == USERS_GROUP)
    return list(session.scalars(select(Group.id).where(condition)))


def find_group(session: Session, ref: str | int) -> Group:
    text = str(ref).strip()
    group = session.get(Group, as_id(text)) if as_id(text) else None
    group = group or session.scalar(select(Group).where(func.lower(Group.name) == text.lower()))
    if group is None:
        raise NotFound(f"no group '{text}'")
    return group


def _ensure_name_free(session: Session, name: str, exclude_id: int | None = None) -> None:
    other = session.scalar(select(Group.id).where(func.lower(Group.name) == name.lower()))
    if other is not None and other != exclude_id:
        raise Conflict(f"a group named {name} already exists", [FieldError("name", f"group {name} already exists")])
    look_alike = confusable_with(name, session.scalars(select(Group.name).where(Group.id != (exclude_id or 0))))
    if look_alike is not None:
        message = f"group {name} could be taken for the existing group {look_alike}: choose a name that looks different"
        raise Conflict(message, [FieldError("name", message)])


def builtin_group_ids(session: Session, name: str) -> set[int]:
    return set(session.scalars(select(Group.id).where(Group.name == name, Group.builtin.is_(True))))


def names_of_groups(session: Session, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    return dict(session.execute(select(Group.id, Group.name).where(Group.id.in_(sorted(ids)))).all())


def _everyone():
    """Who `users` holds: every user, and every service account that is not deleted (ClearML: service accounts
    included)."""
    return (User.kind == USER) | User.deleted_at.is_(None)


def member_counts(session: Session) -> dict[int, int]:
    counts = dict(session.execute(select(GroupMember.group_id, func.count()).group_by(GroupMember.group_id)).all())
    everyone = session.scalar(select(func.count()).select_from(User).where(_everyone()))
    users_group = session.scalar(select(Group.id).where(Group.name == USERS_GROUP))
    if users_group is not None:
        counts[users_group] = everyone
    return counts


def group_out(group: Group, member_count: int) -> dict[str, Any]:
    return {"id": group.id, "name": group.name, "description": group.description, "builtin": group.builtin,
            "member_count": member_count, "created_at": group.created_at}


def list_groups(session: Session) -> list[dict[str, Any]]:
    counts = member_counts(session)
    groups = session.scalars(select(Group).order_by(Group.builtin.desc(), func.lower(Group.name))).all()
    return [group_out(g, counts.get(g.id, 0)) for g in groups]


def members(session: Session, group: Group) -> list[User]:
    if group.name == USERS_GROUP:
        query = select(User).where(_everyone())
    else:
        query = select(User).join(GroupMember, GroupMember.user_id == User.id).where(GroupMember.group_id == group.id)
    return list(session.scalars(query.order_by(User.username_key)))


def granted_roles(session: Session, group: Group) -> dict[str, str]:
    rows = session.execute(
        select(Cluster.name, ClusterRoleGrant.role).join(Cluster, Cluster.id == ClusterRoleGrant.cluster_id)
        .where(ClusterRoleGrant.group_id == group.id).order_by(Cluster.name)
    ).all()
    return dict(rows)


def group_detail(session: Session, group: Group) -> dict[str, Any]:
    people = members(session, group)
    out = group_out(group, len(people))
    out["members"] = [{"id": u.id, "username": u.username, "full_name": u.full_name, "kind": u.kind,
                       "is_active": u.is_active} for u in people]
    out["cluster_roles"] = granted_roles(session, group)
    return out


def create_group(session: Session, actor: Principal, name: str, description: str | None,
                 source: str | None) -> Group:
    name = name.strip()
    _raise({"name": name_problems(name), "description": description_problems(description)})
    _ensure_name_free(session, name)
    group = Group(name=name, description=description, builtin=False)
    session.add(group)
    session.flush()
    audit.record(session, actor, "group.create", "group", group.name, group.id,
                 changes=audit.diff({}, {"name": name, "description": description}), source=source)
    mark_identity_changed(session)
    return group


def _refuse_if_users(group: Group, what: str) -> None:
    if group.name == USERS_GROUP:
        raise Conflict(f"cannot {what} the built-in group '{USERS_GROUP}': it always holds every user")


def update_group(session: Session, actor: Principal, group: Group, changes: dict[str, Any],
                 source: str | None) -> Group:
    """Rename and/or describe a group. `users` cannot be modified; `admins` cannot be renamed."""
    _refuse_if_users(group, "modify")
    problems: dict[str, list[str]] = {}
    new_name = changes.get("name")
    if "name" in changes:
        new_name = (new_name or "").strip()
        problems["name"] = name_problems(new_name)
    if "description" in changes:
        problems["description"] = description_problems(changes["description"])
    _raise(problems)
    if new_name is not None and new_name != group.name:
        if group.builtin:
            raise Conflict(f"cannot rename the built-in group '{group.name}'")
        _ensure_name_free(session, new_name, exclude_id=group.id)
    before = {"name": group.name, "description": group.description}
    if new_name is not None:
        group.name = new_name
    if "description" in changes:
        group.description = changes["description"]
    session.flush()
    diff = audit.diff(before, {"name": group.name, "description": group.description})
    if diff["after"]:
        audit.record(session, actor, "group.update", "group", group.name, group.id, changes=diff, source=source)
        mark_identity_changed(session)
    return group


def granted_through(session: Session, group: Group) -> dict[str, list[str]]:
    """Who is in the group and what it grants: members, cluster roles, quota bindings, workspace memberships."""
    from allotment.access.service import rules_granting_group  # access reads groups through this module
    from allotment.quotas.group_grants import granted_to_group  # quotas imports identity's models

    return {"members": [u.username for u in members(session, group)],
            "cluster_roles": [f"{c} ({r})" for c, r in granted_roles(session, group).items()],
            **granted_to_group(session, group.id), "access_rules": rules_granting_group(session, group.id)}


LABELS = {"members": "members", "cluster_roles": "cluster roles", "quotas": "quota bindings",
          "workspaces": "workspace memberships", "access_rules": "access rules"}


def delete_group(session: Session, actor: Principal, group: Group, source: str | None, force: bool = False) -> None:
    """Delete a group. One that has members or grants anything (cluster roles, quota bindings, workspace
    memberships) is refused, listing them (DKube), unless `force`: then its members lose only what was granted
    through it (ClearML): what they were granted directly stays. Their jobs waiting on a cluster they no longer have
    any access to are cancelled, as when they are removed from it (cluster_roles.cancel_waiting_without_access)."""
    from allotment.identity.cluster_roles import cancel_waiting_without_access
    from allotment.quotas.group_grants import revoke_group

    _refuse_if_users(group, "delete")
    if group.builtin:
        raise Conflict(f"cannot delete the built-in group '{group.name}'")
    from allotment.storage.folders import group_folder_names

    owned = group_folder_names(session, group.id)
    if owned:  # force takes memberships and grants, never files: deleting the rows would leave them on the host
        message = (f"group {group.name} owns storage folders ({', '.join(owned)}): trash and purge them first "
                   f"(allot folders trash|purge)")
        raise Conflict(message, [FieldError("force", message)])
    held = granted_through(session, group)
    if any(held.values()) and not force:
        parts = [f"{LABELS[k]} ({', '.join(v)})" for k, v in held.items() if v]
        message = (f"group {group.name} still has {'; '.join(parts)}: remove them first, or delete it with force "
                   f"(its members keep what was granted to them directly)")
        raise Conflict(message, [FieldError("force", message)])
    member_ids = list(session.scalars(select(GroupMember.user_id).where(GroupMember.group_id == group.id)))
    clusters = list(session.scalars(select(Cluster).join(ClusterRoleGrant, ClusterRoleGrant.cluster_id == Cluster.id)
                                    .where(ClusterRoleGrant.group_id == group.id)))
    before = {"name": group.name, "description": group.description, "members": held["members"],
              "cluster_roles": granted_roles(session, group), "quotas": held["quotas"],
              "workspaces": held["workspaces"]}
    revoke_group(session, group.id)
    from allotment.access.service import remove_group_everywhere as leave_rules

    leave_rules(session, group.id)
    if held["access_rules"]:
        before["access_rules"] = held["access_rules"]
    session.execute(delete(ClusterRoleGrant).where(ClusterRoleGrant.group_id == group.id))
    session.execute(delete(GroupMember).where(GroupMember.group_id == group.id))
    session.expire(group, ["members"])
    group_id = group.id
    session.delete(group)
    session.flush()
    cancelled = [job for cluster in clusters
                 for job in cancel_waiting_without_access(session, cluster, member_ids, actor, source)]
    changes = {"before": before, "after": None, "forced": force, "jobs_cancelled": cancelled}
    revoked = _revoke_lost_scopes(session, set(member_ids), actor, source)
    if revoked:
        changes["revoked_credentials"] = revoked
    audit.record(session, actor, "group.delete", "group", before["name"], group_id, changes=changes, source=source)
    mark_identity_changed(session)


def add_member(session: Session, actor: Principal, group: Group, user: User, source: str | None) -> bool:
    """Add a user (or service account) to a group; False when already a member."""
    _refuse_if_users(group, "change the members of")
    if user.deleted_at is not None:
        raise Conflict(f"{user.username} was deleted and cannot join groups")
    if session.get(GroupMember, (group.id, user.id)) is not None:
        return False
    session.add(GroupMember(group_id=group.id, user_id=user.id))
    session.flush()
    audit.record(session, actor, "group.add_member", "group", group.name, group.id,
                 changes={"before": {"member": None}, "after": {"member": user.username}}, source=source)
    mark_identity_changed(session)
    return True


def remove_member(session: Session, actor: Principal, group: Group, user: User, source: str | None) -> None:
    _refuse_if_users(group, "change the members of")
    membership = session.get(GroupMember, (group.id, user.id))
    if membership is None:
        raise NotFound(f"{user.username} is not a member of {group.name}")
    if group.name == ADMINS_GROUP:
        ensure_admin_remains(session, user.id, f"remove {user.username} from {ADMINS_GROUP}")
    session.delete(membership)
    session.flush()
    audit.record(session, actor, "group.remove_member", "group", group.name, group.id,
                 changes={"before": {"member": user.username}, "after": {"member": None}}, source=source)
    _cancel_without_access(session, group, [user.id], actor, source)
    _revoke_lost_scopes(session, {user.id}, actor, source)
    mark_identity_changed(session)


def _revoke_lost_scopes(session: Session, user_ids: set[int], actor: Principal, source: str | None) -> list[str]:
    """Credentials scoped to a workspace the users were members of only through this group are revoked."""
    from allotment.workspaces.service import revoke_lost_scopes  # workspaces imports identity

    return revoke_lost_scopes(session, user_ids, actor, source)


def _cancel_without_access(session: Session, group: Group, user_ids: list[int], actor: Principal,
                           source: str | None) -> list[int]:
    """Jobs of `user_ids` waiting on the clusters the group granted a role on, where they now have no access."""
    from allotment.identity.cluster_roles import cancel_waiting_without_access

    clusters = list(session.scalars(select(Cluster).join(ClusterRoleGrant, ClusterRoleGrant.cluster_id == Cluster.id)
                                    .where(ClusterRoleGrant.group_id == group.id)))
    return [job for cluster in clusters
            for job in cancel_waiting_without_access(session, cluster, user_ids, actor, source)]
