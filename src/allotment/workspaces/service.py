"""Workspaces (PAI, ClearML): a named team space of one cluster. Its members (users, service accounts, and groups:
every member of the group) hold a role (owner, admin, member, viewer); members from `member` up may submit to the
quotas bound to the workspace (quotas/bindings.py) unless its submit rules say otherwise. Names are unique within a
cluster. Deleting a workspace removes its memberships, invitations and quota bindings (jobs stay)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from allotment.core.names import as_id
from allotment.core.permissions import WORKSPACE_ROLE_ORDER, WORKSPACE_ROLES, Principal
from allotment.errors import Conflict, FieldError, NotFound, invalid
from allotment.identity import credentials
from allotment.identity.models import USERS_GROUP, Group, GroupMember, User
from allotment.inventory.service import check_name
from allotment.quotas import bindings
from allotment.workspaces.models import Workspace, WorkspaceMember


def find_workspace(session: Session, cluster_id: int, ref: str | int) -> Workspace:
    text = str(ref).strip()
    found = session.scalar(select(Workspace).where(Workspace.cluster_id == cluster_id, Workspace.name == text))
    if found is None and as_id(text):
        found = session.scalar(select(Workspace).where(Workspace.cluster_id == cluster_id,
                                                       Workspace.id == as_id(text)))
    if found is None:
        raise NotFound(f"no workspace '{text}' in this cluster")
    return found


def list_workspaces(session: Session, cluster_id: int) -> list[Workspace]:
    return list(session.scalars(select(Workspace).where(Workspace.cluster_id == cluster_id)
                                .order_by(Workspace.name)).all())


def _check_free(session: Session, cluster_id: int, name: str, own_id: int | None = None) -> str:
    name = check_name("name", name)
    other = session.scalar(select(Workspace.id).where(Workspace.cluster_id == cluster_id, Workspace.name == name))
    if other is not None and other != own_id:
        raise Conflict(f"a workspace named {name} already exists in this cluster",
                       [FieldError("name", f"workspace {name} exists")])
    return name


def create_workspace(session: Session, cluster_id: int, name: str, description: str | None,
                     users: list[User] = (), groups: list[Group] = (), owner: User | None = None,
                     personal_user_id: int | None = None) -> Workspace:
    workspace = Workspace(cluster_id=cluster_id, name=_check_free(session, cluster_id, name), description=description,
                          personal_user_id=personal_user_id)
    session.add(workspace)
    session.flush()
    if owner is not None:
        add_member(session, workspace, user=owner, role="owner")
    for user in users:
        add_member(session, workspace, user=user)
    for group in groups:
        add_member(session, workspace, group=group)
    return workspace


def update_workspace(session: Session, workspace: Workspace, name: str | None, description: str | None,
                     clear_description: bool = False) -> None:
    if name is not None:
        workspace.name = _check_free(session, workspace.cluster_id, name, workspace.id)
    if clear_description:
        workspace.description = None
    elif description is not None:
        workspace.description = description
    session.flush()


def delete_workspace(session: Session, workspace: Workspace) -> None:
    session.delete(workspace)  # memberships, invitations, bindings and scoped credentials go with it (CASCADE)
    session.flush()


def check_role(role: str | None, field: str = "role") -> str:
    key = (role or "").strip().lower()
    if key not in WORKSPACE_ROLES:
        raise invalid(field, f"must be one of {', '.join(WORKSPACE_ROLES)}, not '{role}'")
    return key


def _member_filter(user: User | None, group: Group | None):
    if user is not None:
        kind = "service account" if user.kind == "service_account" else "user"
        return WorkspaceMember.user_id == user.id, f"{kind} {user.username}"
    assert group is not None
    return WorkspaceMember.group_id == group.id, f"group {group.name}"


def find_member(session: Session, workspace: Workspace, user: User | None = None,
                group: Group | None = None) -> WorkspaceMember:
    condition, label = _member_filter(user, group)
    member = session.scalar(select(WorkspaceMember).where(WorkspaceMember.workspace_id == workspace.id, condition))
    if member is None:
        raise NotFound(f"{label} is not a member of workspace {workspace.name}")
    return member


def add_member(session: Session, workspace: Workspace, user: User | None = None, group: Group | None = None,
               role: str = "member") -> bool:
    """Add a user, service account or group; returns False when it was a member already (idempotent: the role it
    holds stays, set-role changes it)."""
    condition, _ = _member_filter(user, group)
    if session.scalar(select(WorkspaceMember.id).where(WorkspaceMember.workspace_id == workspace.id, condition)):
        return False
    session.add(WorkspaceMember(workspace_id=workspace.id, user_id=user.id if user else None,
                                group_id=group.id if group else None, role=check_role(role)))
    session.flush()
    return True


def _owners(session: Session, workspace_id: int) -> int:
    return len(session.scalars(select(WorkspaceMember.id).where(WorkspaceMember.workspace_id == workspace_id,
                                                                WorkspaceMember.role == "owner")).all())


def _keep_an_owner(session: Session, workspace: Workspace, member: WorkspaceMember, what: str) -> None:
    if member.role == "owner" and _owners(session, workspace.id) <= 1:
        raise Conflict(f"cannot {what}: it is the last owner of workspace {workspace.name}; make another member an "
                       "owner first", [FieldError("role", "the workspace needs an owner")])


def set_role(session: Session, workspace: Workspace, member: WorkspaceMember, role: str) -> str:
    """Change a member's role; returns the role it had."""
    role, before = check_role(role), member.role
    if role != "owner":
        _keep_an_owner(session, workspace, member, "change the role")
    member.role = role
    session.flush()
    return before


def _user_ids_of(session: Session, member: WorkspaceMember) -> set[int]:
    if member.user_id is not None:
        return {member.user_id}
    return set(session.scalars(select(GroupMember.user_id).where(GroupMember.group_id == member.group_id)).all())


def remove_member(session: Session, workspace: Workspace, member: WorkspaceMember, actor: Principal | None,
                  source: str | None = None, what: str = "remove it") -> list[str]:
    """Remove a member: it loses what the workspace gave (its quotas, from the next submission; its jobs stay), and
    the credentials scoped to the workspace of every user who is no longer a member are revoked. Returns their
    access keys. Rejoining takes a new invitation."""
    if member.user_id is not None and member.user_id == workspace.personal_user_id:
        raise Conflict(f"{workspace.name} is the personal workspace of its owner: they cannot leave it or be removed")
    _keep_an_owner(session, workspace, member, what)
    affected = _user_ids_of(session, member)
    session.delete(member)
    session.flush()
    gone = {u for u in affected if workspace.id not in _workspaces_of_user(session, u)}
    return credentials.revoke_scoped(session, gone, workspace.id, actor, source)


def revoke_lost_scopes(session: Session, user_ids: set[int], actor: Principal | None,
                       source: str | None = None) -> list[str]:
    """Revoke the credentials of `user_ids` scoped to a workspace they are no longer a member of, however they lost
    it (they left the group that was the member, or it was deleted). Returns the access keys."""
    revoked: list[str] = []
    memberships: dict[int, set[int]] = {}
    for user_id, workspace_id in sorted(credentials.scoped_workspaces(session, user_ids)):
        if user_id not in memberships:
            memberships[user_id] = _workspaces_of_user(session, user_id)
        if workspace_id not in memberships[user_id]:
            revoked += credentials.revoke_scoped(session, {user_id}, workspace_id, actor, source)
    return revoked


def _workspaces_of_user(session: Session, user_id: int) -> set[int]:
    groups = set(session.scalars(select(GroupMember.group_id).where(GroupMember.user_id == user_id)).all())
    groups |= set(session.scalars(select(Group.id).where(Group.name == USERS_GROUP)).all())
    return set(member_roles(session, user_id, "user", groups))


def member_roles(session: Session, user_id: int, kind: str, group_ids: set[int] | frozenset[int]) -> dict[int, str]:
    """Workspace id -> the principal's highest role there, directly or through one of its groups."""
    condition = WorkspaceMember.group_id.in_(group_ids)
    if kind in ("user", "service_account"):
        condition = condition | (WorkspaceMember.user_id == user_id)
    roles: dict[int, str] = {}
    for workspace_id, role in session.execute(select(WorkspaceMember.workspace_id, WorkspaceMember.role)
                                              .where(condition)).all():
        if WORKSPACE_ROLE_ORDER.get(role, 0) > WORKSPACE_ROLE_ORDER.get(roles.get(workspace_id, ""), 0):
            roles[workspace_id] = role
    return roles


def role_of(session: Session, principal: Principal, workspace: Workspace) -> str | None:
    return member_roles(session, principal.id, principal.kind, set(principal.group_ids)).get(workspace.id)


def members(session: Session, workspace_id: int) -> list[dict[str, Any]]:
    rows = session.execute(
        select(WorkspaceMember, User.username, User.kind, Group.name)
        .outerjoin(User, User.id == WorkspaceMember.user_id).outerjoin(Group, Group.id == WorkspaceMember.group_id)
        .where(WorkspaceMember.workspace_id == workspace_id).order_by(WorkspaceMember.id)).all()
    return [{"kind": ("service_account" if kind == "service_account" else "user") if m.user_id else "group",
             "name": username or group, "role": m.role, "since": m.created_at}
            for m, username, kind, group in rows]


def bound_quotas(session: Session, workspace_id: int) -> list[str]:
    return bindings.quotas_bound_to_workspace(session, workspace_id)


def snapshot(session: Session, workspace: Workspace, cluster: str) -> dict[str, Any]:
    """The workspace as the API shows it (and as audit records keep it)."""
    return {"id": workspace.id, "name": workspace.name, "cluster": cluster, "description": workspace.description,
            "members": members(session, workspace.id), "quotas": bound_quotas(session, workspace.id),
            "created_at": workspace.created_at}


def workspace_ids_of(session: Session, user_id: int, kind: str, group_ids: set[int]) -> set[int]:
    """The workspaces a principal is a member of (any role): directly, or through one of its groups."""
    return set(member_roles(session, user_id, kind, group_ids))


def workspaces_of_group(session: Session, group_id: int) -> list[tuple[str, int]]:
    """(workspace name, cluster id) of each workspace the group is a member of, by name."""
    return [tuple(r) for r in session.execute(
        select(Workspace.name, Workspace.cluster_id).join(WorkspaceMember, WorkspaceMember.workspace_id == Workspace.id)
        .where(WorkspaceMember.group_id == group_id).order_by(Workspace.name)).all()]


def remove_group_everywhere(session: Session, group_id: int) -> None:
    """The group leaves every workspace (it is being deleted); what its members hold directly stays."""
    session.execute(delete(WorkspaceMember).where(WorkspaceMember.group_id == group_id))


def names_by_id(session: Session, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    return dict(session.execute(select(Workspace.id, Workspace.name).where(Workspace.id.in_(ids))).all())
