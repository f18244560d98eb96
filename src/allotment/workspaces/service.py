"""PAI workspaces: a named team space of one cluster. Its members (users, and groups: every member of the group) may
submit to the quotas bound to the workspace (quotas/bindings.py), as a user or group bound directly may. Names are
unique within a cluster. Deleting a workspace removes its memberships and its quota bindings (jobs stay)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from allotment.core.names import as_id
from allotment.errors import Conflict, FieldError, NotFound
from allotment.identity.models import Group, User
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
                     users: list[User] = (), groups: list[Group] = ()) -> Workspace:
    workspace = Workspace(cluster_id=cluster_id, name=_check_free(session, cluster_id, name), description=description)
    session.add(workspace)
    session.flush()
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
    session.delete(workspace)  # memberships and bindings go with it (ON DELETE CASCADE)
    session.flush()


def _member_filter(user: User | None, group: Group | None):
    if user is not None:
        return WorkspaceMember.user_id == user.id, f"user {user.username}"
    assert group is not None
    return WorkspaceMember.group_id == group.id, f"group {group.name}"


def add_member(session: Session, workspace: Workspace, user: User | None = None, group: Group | None = None) -> bool:
    """Add a user or a group; returns False when it was a member already (idempotent)."""
    condition, _ = _member_filter(user, group)
    if session.scalar(select(WorkspaceMember.id).where(WorkspaceMember.workspace_id == workspace.id, condition)):
        return False
    session.add(WorkspaceMember(workspace_id=workspace.id, user_id=user.id if user else None,
                                group_id=group.id if group else None))
    session.flush()
    return True


def remove_member(session: Session, workspace: Workspace, user: User | None = None, group: Group | None = None) -> None:
    condition, label = _member_filter(user, group)
    member = session.scalar(select(WorkspaceMember).where(WorkspaceMember.workspace_id == workspace.id, condition))
    if member is None:
        raise NotFound(f"{label} is not a member of workspace {workspace.name}")
    session.delete(member)
    session.flush()


def members(session: Session, workspace_id: int) -> list[dict[str, str]]:
    rows = session.execute(
        select(WorkspaceMember.user_id, User.username, Group.name)
        .outerjoin(User, User.id == WorkspaceMember.user_id).outerjoin(Group, Group.id == WorkspaceMember.group_id)
        .where(WorkspaceMember.workspace_id == workspace_id).order_by(WorkspaceMember.id)).all()
    return [{"kind": "user" if user_id else "group", "name": username or group} for user_id, username, group in rows]


def bound_quotas(session: Session, workspace_id: int) -> list[str]:
    return bindings.quotas_bound_to_workspace(session, workspace_id)


def snapshot(session: Session, workspace: Workspace, cluster: str) -> dict[str, Any]:
    """The workspace as the API shows it (and as audit records keep it)."""
    return {"id": workspace.id, "name": workspace.name, "cluster": cluster, "description": workspace.description,
            "members": members(session, workspace.id), "quotas": bound_quotas(session, workspace.id),
            "created_at": workspace.created_at}


def workspace_ids_of(session: Session, user_id: int, kind: str, group_ids: set[int]) -> set[int]:
    """The workspaces a principal is a member of: directly, or through one of its groups."""
    condition = WorkspaceMember.group_id.in_(group_ids)
    if kind == "user":
        condition = condition | (WorkspaceMember.user_id == user_id)
    return set(session.scalars(select(WorkspaceMember.workspace_id).where(condition)).all())


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
