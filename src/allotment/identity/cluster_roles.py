"""Per-cluster roles (Neu.ro): user, manager, admin, granted to a user directly or to a group. Functions never commit.

Adding a user to a cluster and changing their role are one operation (`set_user_role`). Removing them deletes only the
grant: the user's jobs, storage and usage are untouched, and adding them back restores access. Without a role on the
cluster they can no longer submit there (core.permissions.submit_refusal), and their jobs on it that still wait for
admission are cancelled (audited, the reason naming the cluster), so nothing of theirs starts there after the removal;
their running jobs keep running (an admin cancels them if need be). DKube's role names are
accepted as aliases (operator = admin, data-scientist = user). Who may grant what is decided by
core.cluster_roles.assignment_refusal. A principal's effective role on a cluster is the highest of its direct grant and
the grants of its groups, where every principal is implicitly in the built-in `users` group.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from allotment.api.state import mark_identity_changed
from allotment.audit import service as audit
from allotment.core.cluster_roles import assignment_refusal
from allotment.core.names import as_id
from allotment.core.permissions import ROLE_ORDER, Principal, normalise_role
from allotment.errors import Conflict, Forbidden, NotFound, invalid
from allotment.identity.models import ADMINS_GROUP, USERS_GROUP, ClusterRoleGrant, Group, GroupMember, User
from allotment.inventory.models import Cluster

ROLE_HELP = "must be one of user, manager, admin (or DKube's operator = admin, data-scientist = user)"


@dataclass(frozen=True)
class RoleChange:
    cluster: str
    role: str | None
    previous_role: str | None
    username: str | None = None
    group: str | None = None

    def as_dict(self) -> dict:
        return {"cluster": self.cluster, "role": self.role, "previous_role": self.previous_role,
                "username": self.username, "group": self.group}


def parse_role(text: str) -> str:
    role = normalise_role(text)
    if role is None:
        raise invalid("role", f"'{text}' {ROLE_HELP}")
    return role


def _check_actor(actor: Principal | None, cluster: Cluster, old: str | None, new: str | None) -> None:
    if actor is None:  # the server itself (bootstrap, cluster creation)
        return
    refusal = assignment_refusal(actor.role_on(cluster.id), actor.is_platform_admin, old, new)
    if refusal:
        raise Forbidden(refusal)


def _grant_for_user(session: Session, cluster: Cluster, user: User) -> ClusterRoleGrant | None:
    return session.scalar(select(ClusterRoleGrant).where(ClusterRoleGrant.cluster_id == cluster.id,
                                                         ClusterRoleGrant.user_id == user.id))


def _grant_for_group(session: Session, cluster: Cluster, group: Group) -> ClusterRoleGrant | None:
    return session.scalar(select(ClusterRoleGrant).where(ClusterRoleGrant.cluster_id == cluster.id,
                                                         ClusterRoleGrant.group_id == group.id))


def _apply(session: Session, grant: ClusterRoleGrant | None, new_grant: ClusterRoleGrant, role: str,
           actor: Principal | None, target: str, source: str | None) -> str | None:
    """Create or change the grant; record it. Returns the previous role."""
    previous = grant.role if grant else None
    if previous == role:
        return previous
    if grant is None:
        session.add(new_grant)
    else:
        grant.role = role
    session.flush()
    action = "cluster_role.grant" if previous is None else "cluster_role.change"
    audit.record(session, actor, action, "cluster_role", target, changes=audit.diff({"role": previous}, {"role": role}),
                 source=source)
    mark_identity_changed(session)
    return previous


def set_user_role(session: Session, cluster: Cluster, user: User, role_text: str, actor: Principal | None,
                  source: str | None = None) -> RoleChange:
    """Add `user` to `cluster` with a role, or change their role, in one step."""
    role = parse_role(role_text)
    if user.deleted_at is not None:
        raise Conflict(f"service account {user.username} has been deleted")
    grant = _grant_for_user(session, cluster, user)
    _check_actor(actor, cluster, grant.role if grant else None, role)
    previous = _apply(session, grant, ClusterRoleGrant(cluster_id=cluster.id, user_id=user.id, role=role), role,
                      actor, f"{cluster.name}/{user.username}", source)
    return RoleChange(cluster.name, role, previous, username=user.username)


def remove_user(session: Session, cluster: Cluster, user: User, actor: Principal | None,
                source: str | None = None) -> RoleChange:
    """Revoke the user's direct role on the cluster; everything they own stays."""
    grant = _grant_for_user(session, cluster, user)
    if grant is None:
        via = effective_roles(session, cluster).get(user.id)
        hint = f" (their access comes from {via[1]}: change that group's grant instead)" if via else ""
        raise NotFound(f"{user.username} has no role of their own on cluster {cluster.name}{hint}")
    _check_actor(actor, cluster, grant.role, None)
    previous = grant.role
    session.delete(grant)
    session.flush()
    audit.record(session, actor, "cluster_role.revoke", "cluster_role", f"{cluster.name}/{user.username}",
                 changes=audit.diff({"role": previous}, {"role": None}), source=source)
    cancel_waiting_without_access(session, cluster, [user.id], actor, source)
    mark_identity_changed(session)
    return RoleChange(cluster.name, None, previous, username=user.username)


def cancel_waiting_without_access(session: Session, cluster: Cluster, user_ids: list[int], actor: Principal | None,
                                  source: str | None) -> list[int]:
    """Cancel the waiting jobs on the cluster of those of `user_ids` who have no access to it any more (no role of
    their own or through a group, and not platform admins). Returns the ids of the cancelled jobs."""
    from allotment.workloads import owner_jobs  # workloads imports identity's models

    if actor is None or not user_ids:
        return []
    roles = effective_roles(session, cluster)
    admins = set(session.scalars(select(GroupMember.user_id).join(Group, Group.id == GroupMember.group_id)
                                 .where(Group.name == ADMINS_GROUP)))
    cancelled: list[int] = []
    for user_id in user_ids:
        if user_id in roles or user_id in admins:
            continue
        username = session.scalar(select(User.username).where(User.id == user_id))
        reason = f"{username} no longer has access to cluster {cluster.name}"
        cancelled += [j.id for j in owner_jobs.cancel_waiting(session, actor, user_id, cluster.id, reason, source)]
    return cancelled


def set_group_role(session: Session, cluster: Cluster, group: Group, role_text: str, actor: Principal | None,
                   source: str | None = None) -> RoleChange:
    role = parse_role(role_text)
    grant = _grant_for_group(session, cluster, group)
    _check_actor(actor, cluster, grant.role if grant else None, role)
    previous = _apply(session, grant, ClusterRoleGrant(cluster_id=cluster.id, group_id=group.id, role=role), role,
                      actor, f"{cluster.name}/group:{group.name}", source)
    return RoleChange(cluster.name, role, previous, group=group.name)


def remove_group(session: Session, cluster: Cluster, group: Group, actor: Principal | None,
                 source: str | None = None) -> RoleChange:
    grant = _grant_for_group(session, cluster, group)
    if grant is None:
        raise NotFound(f"group {group.name} has no role on cluster {cluster.name}")
    _check_actor(actor, cluster, grant.role, None)
    previous = grant.role
    session.delete(grant)
    session.flush()
    audit.record(session, actor, "cluster_role.revoke", "cluster_role", f"{cluster.name}/group:{group.name}",
                 changes=audit.diff({"role": previous}, {"role": None}), source=source)
    cancel_waiting_without_access(session, cluster, _member_ids(session, group), actor, source)
    mark_identity_changed(session)
    return RoleChange(cluster.name, None, previous, group=group.name)


def _member_ids(session: Session, group: Group) -> list[int]:
    if group.name == USERS_GROUP:  # everyone, without membership rows
        return list(session.scalars(select(User.id).where(User.deleted_at.is_(None))))
    return list(session.scalars(select(GroupMember.user_id).where(GroupMember.group_id == group.id)))


def find_group(session: Session, ref: str) -> Group:
    text = ref.strip()
    group = session.scalar(select(Group).where(Group.name == text))
    if group is None and as_id(text):
        group = session.get(Group, as_id(text))
    if group is None:
        raise NotFound(f"no group '{text}'")
    return group


def effective_roles(session: Session, cluster: Cluster) -> dict[int, tuple[str, str]]:
    """user id -> (highest role, where it comes from: "direct" or "group:NAME"); direct wins ties."""
    best: dict[int, tuple[str, str]] = {}

    def offer(user_id: int, role: str, via: str) -> None:
        held = best.get(user_id)
        if held is None or ROLE_ORDER[role] > ROLE_ORDER[held[0]]:
            best[user_id] = (role, via)

    grants = session.execute(select(ClusterRoleGrant.user_id, ClusterRoleGrant.role)
                             .where(ClusterRoleGrant.cluster_id == cluster.id,
                                    ClusterRoleGrant.user_id.is_not(None))).all()
    for user_id, role in grants:
        offer(user_id, role, "direct")
    group_grants = session.execute(select(Group.id, Group.name, ClusterRoleGrant.role)
                                   .join(ClusterRoleGrant, ClusterRoleGrant.group_id == Group.id)
                                   .where(ClusterRoleGrant.cluster_id == cluster.id)).all()
    for group_id, name, role in group_grants:
        if name == USERS_GROUP:  # everyone, without membership rows
            members = session.scalars(select(User.id).where(User.deleted_at.is_(None)))
        else:
            members = session.scalars(select(GroupMember.user_id).where(GroupMember.group_id == group_id))
        for user_id in members:
            offer(user_id, role, f"group:{name}")
    return best


def list_members(session: Session, cluster: Cluster) -> list[dict]:
    """Everyone with a role on the cluster, by username."""
    roles = effective_roles(session, cluster)
    if not roles:
        return []
    users = session.scalars(select(User).where(User.id.in_(list(roles))).order_by(User.username_key))
    return [{"username": u.username, "kind": u.kind, "role": roles[u.id][0], "via": roles[u.id][1],
             "is_active": u.is_active} for u in users]


def list_group_grants(session: Session, cluster: Cluster) -> list[dict]:
    rows = session.execute(select(Group.name, ClusterRoleGrant.role)
                           .join(ClusterRoleGrant, ClusterRoleGrant.group_id == Group.id)
                           .where(ClusterRoleGrant.cluster_id == cluster.id).order_by(Group.name)).all()
    return [{"group": name, "role": role} for name, role in rows]


def make_creator_admin(session: Session, cluster: Cluster, creator: User) -> None:
    """A cluster's creator is its admin (Neu.ro). Call when creating a cluster on someone's behalf."""
    set_user_role(session, cluster, creator, "admin", None)
