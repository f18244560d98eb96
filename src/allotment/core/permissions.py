"""Authorisation: one pure policy function answers every permission question. Deny by default.

A Permission names what a route needs:
- PUBLIC: anyone, signed in or not.
- AUTHENTICATED: any active principal (what it may then see is narrowed by the service).
- SELF_OR_ADMIN: the principal acting on its own account (the route passes the target user id), or a platform admin.
- PLATFORM_ADMIN: platform admins only.
- cluster(role): a principal holding at least `role` on the cluster named by the route (platform admins always may).
- GROUP_MEMBER: a member of the group named by the route, unless it is a built-in group (`users` holds everyone and
  `admins` names the admins: their member lists are the user directory), or a platform admin.
- JOB_READER: reading a job's output: the job's owner (scope.owner_id), a manager or admin of the job's cluster
  (scope.cluster_id), or a platform admin. A job's output may hold what its owner would not show to every user of
  the cluster, so a plain cluster role is not enough.
- SCIM_CLIENT: a SCIM provisioning client's bearer token (federation/scim). No principal holds it: those tokens are
  not principals' credentials, and the SCIM routes check them themselves.

Submitting a job is decided by `submit_refusal` (below): it needs access to the quota's cluster as well as the quota.
Workspaces (member roles owner > admin > member > viewer) are decided by `workspace_refusal`; whether a workspace seat
or a direct binding makes a quota "bound" to a principal by `bound_to` (credential scope, PAI's resource user roles).
Projects, jobs, models, datasets, quotas and folders under access rules are decided by `resource_refusal`, which asks
core.access; managing the rules themselves by `access_rules_refusal`; quotas and profiles by `quota_admin`
(cluster admins and the built-in `queue-admins` group).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from allotment.core import access

ROLE_ORDER = {"user": 1, "manager": 2, "admin": 3}
# DKube's roles are aliases of the cluster roles.
ROLE_ALIASES = {"operator": "admin", "data-scientist": "user", "data_scientist": "user", "datascientist": "user"}


def normalise_role(role: str) -> str | None:
    key = role.strip().lower()
    key = ROLE_ALIASES.get(key, key)
    return key if key in ROLE_ORDER else None


@dataclass(frozen=True)
class Permission:
    name: str
    kind: str  # public | authenticated | self_or_admin | platform_admin | cluster | group_member | job_reader
    min_role: str | None = None


PUBLIC = Permission("public", "public")
AUTHENTICATED = Permission("authenticated", "authenticated")
SELF_OR_ADMIN = Permission("self_or_admin", "self_or_admin")
PLATFORM_ADMIN = Permission("platform_admin", "platform_admin")
GROUP_MEMBER = Permission("group_member", "group_member")
JOB_READER = Permission("job_reader", "job_reader")
# Reading a user's usage and hour quotas (Neu.ro show-quota): the same rule as JOB_READER, the user
# (scope.owner_id), a manager or admin of the cluster, or a platform admin.
USAGE_READER = Permission("usage_reader", "job_reader")
SCIM_CLIENT = Permission("scim_client", "scim_client")
# Creating, renaming and deleting quotas and profiles: admins of the cluster (scope.cluster_id) and members of the
# built-in `queue-admins` group (see `quota_admin`).
QUOTA_ADMIN = Permission("quota_admin", "quota_admin")


def cluster(role: str) -> Permission:
    assert role in ROLE_ORDER, role
    return Permission(f"cluster_{role}", "cluster", role)


@dataclass(frozen=True)
class Principal:
    id: int
    kind: str  # user | service_account
    username: str
    is_platform_admin: bool = False
    cluster_roles: Mapping[int, str] = field(default_factory=dict)
    group_ids: frozenset[int] = frozenset()
    credential_id: int | None = None
    session_id: int | None = None
    # Set when a service account acts on behalf of this principal.
    actor_id: int | None = None
    actor_username: str | None = None
    # Names for display (whoami), resolved together with the ids so showing them needs no query.
    group_names: frozenset[str] = frozenset()
    cluster_names: Mapping[int, str] = field(default_factory=dict)
    # The workspace a credential is scoped to: the principal then acts in that workspace only.
    workspace_id: int | None = None

    def role_on(self, cluster_id: int) -> str | None:
        return self.cluster_roles.get(cluster_id)


@dataclass(frozen=True)
class Scope:
    """What the route is about: a cluster id, a target user id or a group (and whether it is built in)."""

    cluster_id: int | None = None
    user_id: int | None = None
    group_id: int | None = None
    builtin_group: bool = False
    owner_id: int | None = None  # the user an object (a job) belongs to


def allowed(principal: Principal | None, permission: Permission, scope: Scope = Scope()) -> bool:
    if permission.kind == "public":
        return True
    if principal is None:
        return False
    if permission.kind == "authenticated":
        return True
    if principal.is_platform_admin:
        return True
    if permission.kind == "self_or_admin":
        return scope.user_id is not None and scope.user_id == principal.id
    if permission.kind == "cluster":
        if scope.cluster_id is None or permission.min_role is None:
            return False
        role = principal.role_on(scope.cluster_id)
        return role is not None and ROLE_ORDER[role] >= ROLE_ORDER[permission.min_role]
    if permission.kind == "group_member":
        return scope.group_id is not None and not scope.builtin_group and scope.group_id in principal.group_ids
    if permission.kind == "job_reader":
        if scope.owner_id is not None and scope.owner_id == principal.id:
            return True
        role = principal.role_on(scope.cluster_id) if scope.cluster_id is not None else None
        return role is not None and ROLE_ORDER[role] >= ROLE_ORDER["manager"]
    if permission.kind == "quota_admin":
        return quota_admin(principal, scope.cluster_id)
    return False  # platform_admin and anything unknown: deny


def submit_refusal(principal: Principal | None, cluster_id: int, cluster_name: str, quota_name: str,
                   bound: bool) -> str | None:
    """Why the principal may not submit to quota `quota_name` on cluster `cluster_name`; None when it may.

    `bound` says whether the quota is bound to the principal: directly, through one of its groups or through one of
    its workspaces. A binding is not enough on its own: the principal also needs a role on the quota's cluster
    (Neu.ro: removing a user from a cluster revokes their access to it, whatever else they were granted), so a
    workspace member who was never a cluster member cannot submit, and adding them back restores access. Platform
    admins may submit anywhere; a cluster admin to every quota of their cluster, bound or not. A service account is
    judged as itself (its own roles and bindings); acting on behalf of a user it is judged as that user, who must
    then have the access.
    """
    if principal is None:
        return "sign in to submit jobs"
    if principal.is_platform_admin:
        return None
    role = principal.role_on(cluster_id)
    if role is None:
        return (f"you may not submit to quota {quota_name}: you have no access to cluster {cluster_name} "
                f"(a manager of cluster {cluster_name} can add you to it)")
    if role == "admin" or bound:
        return None
    return f"you may not submit to quota {quota_name}: it is not bound to you, your groups or your workspaces"


def may_submit(principal: Principal | None, cluster_id: int, bound: bool) -> bool:
    """`submit_refusal` as a yes/no, for lists (which quotas to offer) that need no message."""
    return submit_refusal(principal, cluster_id, "", "", bound) is None


# --- workspaces ---------------------------------------------------------------------------------------------------

WORKSPACE_ROLE_ORDER = {"viewer": 1, "member": 2, "admin": 3, "owner": 4}
WORKSPACE_ROLES = tuple(WORKSPACE_ROLE_ORDER)


@dataclass(frozen=True)
class WorkspaceSeat:
    """The principal's place in one workspace bound to a quota: its highest role there (directly or through a group)
    and the workspace's submit rules for that quota (PAI resource user roles): `rule_roles` None means no rule
    (member and up may submit), else only those roles may, besides members the rules name (`named`)."""

    workspace_id: int
    role: str
    rule_roles: frozenset[str] | None = None
    named: bool = False


def seat_may_submit(principal: Principal, seat: WorkspaceSeat) -> bool:
    if principal.workspace_id is not None and principal.workspace_id != seat.workspace_id:
        return False  # a credential scoped to another workspace
    if seat.named:
        return True
    if seat.rule_roles is None:
        return WORKSPACE_ROLE_ORDER.get(seat.role, 0) >= WORKSPACE_ROLE_ORDER["member"]
    return seat.role in seat.rule_roles


def bound_to(principal: Principal, direct: bool, seats: tuple[WorkspaceSeat, ...] = ()) -> bool:
    """Whether a quota is bound to the principal (submit_refusal's `bound`): a binding to it or one of its groups
    (`direct`; not for a credential scoped to a workspace, which acts in that workspace only), or a seat in a bound
    workspace that may submit to it."""
    return (direct and principal.workspace_id is None) or any(seat_may_submit(principal, s) for s in seats)


def workspace_refusal(principal: Principal | None, cluster_id: int, member_role: str | None, action: str,
                      personal: bool = False) -> str | None:
    """Why the principal may not do `action` on a workspace of cluster `cluster_id` where it holds `member_role`
    (None: not a member); None when it may. Actions: `read` (members and users of the cluster), `create` (users of
    the cluster), `leave` (members, not of their personal workspace), `manage` (rename, describe, invite, cancel
    invitations, remove members and set roles below owner: owners and admins of the workspace) and `own` (set or
    remove an owner, delete: owners). Admins of the cluster and platform admins may do everything but leave."""
    if principal is None:
        return "sign in first"
    level = WORKSPACE_ROLE_ORDER.get(member_role or "", 0)
    if action == "leave":
        if level == 0:
            return "you are not a member of this workspace"
        return "you cannot leave your personal workspace" if personal else None
    if principal.is_platform_admin or principal.role_on(cluster_id) == "admin":
        return None
    if principal.workspace_id is not None and action != "read":
        return "a credential scoped to a workspace cannot manage workspaces"
    if action in ("read", "create"):
        reader = principal.role_on(cluster_id) is not None or (action == "read" and level > 0)
        return None if reader else "you have no access to this workspace's cluster"
    need = {"manage": "admin", "own": "owner"}.get(action)
    if need is None:
        return f"unknown workspace action {action}"
    if level >= WORKSPACE_ROLE_ORDER[need]:
        return None
    return f"only the workspace's {'owners' if need == 'owner' else 'owners and admins'} may do this"


# --- access rules (ClearML) -----------------------------------------------------------------------------------------

QUEUE_ADMINS = "queue-admins"


def subject_of(principal: Principal, index: access.RuleIndex) -> access.Subject:
    """The principal as access rules see it: acting on behalf of a user (a job's owner) it is that user without
    admin rights."""
    key = (principal.id, principal.group_ids, principal.is_platform_admin, principal.actor_id is not None)
    found = index.subjects.get(key)
    if found is None:
        found = index.subjects[key] = access.subject(principal.id, principal.group_ids, principal.is_platform_admin,
                                                     acting_for_owner=key[3], admin_group_ids=index.admin_groups)
    return found


def resource_refusal(principal: Principal | None, index: access.RuleIndex, resource: access.Resource, action: str,
                     default: int = access.MODIFY, label: str | None = None, role_level: int = access.MODIFY,
                     role_refusal: str | None = None, cluster_id: int | None = None) -> str | None:
    """Why the principal may not `action` (read | modify) `resource` under the access rules in `index` and its
    workspace's `default`; None when it may.

    `role_level` is what the principal's place in the resource's workspace allows by itself (NONE: not a reader of
    the workspace, refused with `role_refusal`; READ: a viewer). Where rules cover the resource they decide, for any
    reader of the workspace; elsewhere the default applies, capped at `role_level`. A credential scoped to one
    workspace reaches nothing of another. Admins of the workspace's cluster (`cluster_id`), who manage its workspaces
    and their rules, are not bound by the rules, as platform admins are not."""
    if principal is None:
        return "sign in first"
    if (principal.workspace_id is not None and resource.workspace_id is not None
            and principal.workspace_id != resource.workspace_id):
        return f"your credential is scoped to another workspace than {label or resource.type}'s"
    if cluster_id is not None and principal.role_on(cluster_id) == "admin" and principal.actor_id is None:
        return None
    who = subject_of(principal, index)
    if role_level == access.NONE and not who.admin:
        return role_refusal or f"you have no access to {label or resource.type}'s workspace"
    refusal = access.access_refusal(index, who, resource, action, default, label, ceiling=role_level)
    if refusal and role_refusal and role_level == access.READ and not access.covered(index, resource):
        return role_refusal  # the role, not a rule, stops it: say so in the role's words
    return refusal


def access_rules_refusal(principal: Principal | None, action: str, workspace_role: str | None = None,
                         global_rule: bool = False, cluster_id: int | None = None) -> str | None:
    """Who may see (`read`) and grant (`manage`: create, edit, delete) access rules: platform admins (the built-in
    `admins` group) everywhere; owners and admins of a workspace, and admins of its cluster (`cluster_id`), for that
    workspace's rules. Rules without a workspace are the platform's. Members read their workspaces' rules."""
    if principal is None:
        return "sign in first"
    if principal.is_platform_admin:
        return None
    if global_rule:
        return "only platform admins may see or grant access rules that apply in every workspace"
    if (cluster_id is not None and principal.role_on(cluster_id) == "admin" and principal.workspace_id is None
            and principal.actor_id is None):
        return None
    level = WORKSPACE_ROLE_ORDER.get(workspace_role or "", 0)
    if action == "read":
        return None if level > 0 else "you are not a member of this workspace"
    if principal.workspace_id is not None:
        return "a credential scoped to a workspace cannot grant access"
    if level >= WORKSPACE_ROLE_ORDER["admin"]:
        return None
    return "only platform admins and the workspace's owners and admins may grant access"


def quota_admin(principal: Principal | None, cluster_id: int | None) -> bool:
    """Creating, renaming and deleting quotas and profiles: platform admins, admins of the cluster, and members of the
    built-in `queue-admins` group (ClearML's queue admins, who need not be cluster admins). Not while acting on behalf
    of a user."""
    if principal is None:
        return False
    if principal.is_platform_admin:
        return True
    if cluster_id is not None and principal.role_on(cluster_id) == "admin":
        return True
    return principal.actor_id is None and QUEUE_ADMINS in principal.group_names


# --- storage folders ----------------------------------------------------------------------------------------------

FOLDER_PERMISSION_ORDER = {"ro": 1, "rw": 2, "rwd": 3}
FOLDER_PERMISSIONS = tuple(FOLDER_PERMISSION_ORDER)
FOLDER_ACTION_NEEDS = {"read": "ro", "write": "rw", "delete": "rwd"}


def folder_refusal(principal: Principal | None, access: str | None, action: str, manager: bool) -> str | None:
    """Why the principal may not do `action` on a folder; None when it may. `access` is its permission there (ro,
    rw, rwd; None: none): the owner's rwd, a group folder's permission for the group's members, an accepted
    invitation's. `manager`: it owns the user folder. Actions: read (list, download, mount read-only), write
    (upload, mount read-write), delete (delete files), manage (share, trash, restore, purge: the owner of a user
    folder; platform admins, who alone create group folders, manage every folder and read every one)."""
    if principal is None:
        return "sign in first"
    if principal.is_platform_admin:
        return None
    if action == "manage":
        return None if manager else "only the folder's owner (or a platform admin) may do this"
    need = FOLDER_ACTION_NEEDS.get(action)
    if need is None:
        return f"unknown folder action {action}"
    if access is None:
        return "you have no access to this folder"
    if FOLDER_PERMISSION_ORDER[access] >= FOLDER_PERMISSION_ORDER[need]:
        return None
    return f"your permission on this folder is {access}; {action} needs {need}"


def vault_refusal(principal: Principal | None, action: str, owner_id: int | None, group_id: int | None) -> str | None:
    """Why the principal may not `action` ('read' or 'manage') a configuration vault owned by user or service
    account `owner_id`, or by group `group_id` (an administrator vault); None when it may. Platform admins manage
    every vault; a principal reads and manages its own; members of a group read its vaults (which apply to them).
    A service account acting for a user is judged as that user."""
    if principal is None:
        return "sign in to use configuration vaults"
    if principal.is_platform_admin or (owner_id is not None and owner_id == principal.id):
        return None
    if action == "read" and group_id is not None and group_id in principal.group_ids:
        return None
    if group_id is not None:
        return "only platform admins manage group vaults"
    return "you may use only your own vaults"


def storage_target_refusal(principal: Principal | None, action: str) -> str | None:
    """Storage targets (DKube DVS, ClearML cloud access) are the platform's: admins register, change, test and remove
    them ('manage'); any signed-in principal may see them (never their secrets) and hand one to its jobs ('use')."""
    if principal is None:
        return "sign in to use storage targets"
    if action in ("read", "use") or principal.is_platform_admin:
        return None
    return "only platform admins manage storage targets"


def hide_list_refusal(principal: Principal | None, scope_user_id: int | None, action: str) -> str | None:
    """The secret hide-list: everyone reads the platform's list and their own; admins set the platform's list
    (`scope_user_id` None) and anyone's; a principal sets its own additions."""
    if principal is None:
        return "sign in to see the hide-list"
    if principal.is_platform_admin or action == "read" and scope_user_id is None:
        return None
    if scope_user_id == principal.id:
        return None
    return "only platform admins set the platform's hide-list" if scope_user_id is None else \
        "you may change only your own hide-list"
