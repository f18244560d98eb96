"""Storage folders (Backend.AI vfolders): user and group folders, what each principal may do with them, the owner's
resource policy acting on them, staged deletion (trash, restore, purge) and their files.

Who sees what: a user folder's owner (permission rwd), the users it was shared with by an accepted invitation (the
invitation's permission: ro, rw or rwd; delete only when granted), every member of a group folder's group (the
permission it was created with), platform admins (everything). Decisions: core.permissions.folder_refusal.

Limits (the owner's or invitee's resource policy, policies/): `folders` counts the user's own folders (trashed ones
included: they still hold data) and the folders they accepted invitations to; `folder_capacity` bounds each folder's
capacity (a new folder gets the cap, or less when asked); `allowed_storage_hosts` the hosts they may create folders
on or accept invitations to. A breach is refused (409) naming the limit and the numbers.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from allotment.audit import service as audit
from allotment.core.names import name_problems
from allotment.core.permissions import FOLDER_PERMISSIONS, Principal, folder_refusal
from allotment.core.quantity import format_raw, parse_quantity
from allotment.db import utcnow
from allotment.errors import Conflict, DomainError, FieldError, Forbidden, NotFound, invalid
from allotment.identity.models import Group, User
from allotment.policies import service as policies
from allotment.storage import hosts
from allotment.storage.hosts import StorageContext
from allotment.storage.models import Folder, FolderInvitation, StorageHost
from allotment.storage.stores import Entry, StoreError, clean_path
from allotment.workloads.models import ACTIVE_STATES, Job

INVITATION_STATES = ("pending", "accepted", "rejected", "cancelled")


@dataclass(frozen=True)
class FolderAccess:
    folder: Folder
    access: str | None  # ro | rw | rwd | None
    via: str  # owner | group | invitation | admin
    manager: bool  # owns it (a user folder's owner)


def _bytes(raw: int | None) -> str:
    return "unlimited" if raw is None else format_raw(raw, "memory")


def store_error(exc: StoreError) -> DomainError:
    return DomainError(str(exc), [], 502, "Storage host error", "storage_unavailable")


# -- reading ---------------------------------------------------------------------------------------------------------

def _accepted(session: Session, user_id: int) -> dict[int, str]:
    rows = session.execute(select(FolderInvitation.folder_id, FolderInvitation.permission).where(
        FolderInvitation.invitee_id == user_id, FolderInvitation.state == "accepted"))
    return {fid: perm for fid, perm in rows.all()}


def visible(session: Session, principal: Principal, trashed: bool | None = False,
            everyone: bool = False) -> list[FolderAccess]:
    """The folders the principal sees (`trashed`: False the live ones, True the trash, None both). `everyone`
    (platform admins): every folder, not only theirs."""
    query = select(Folder).order_by(Folder.name, Folder.id)
    if trashed is not None:
        query = query.where(Folder.trashed_at.is_not(None) if trashed else Folder.trashed_at.is_(None))
    invited = _accepted(session, principal.id)
    out = []
    for folder in session.scalars(query).all():
        found = _access(folder, principal, invited)
        if found is not None and (found.via != "admin" or everyone):
            if found.via == "invitation" and folder.trashed_at is not None:
                continue  # the owner's trash is the owner's
            out.append(found)
    return out


def _access(folder: Folder, principal: Principal, invited: dict[int, str]) -> FolderAccess | None:
    if folder.owner_id is not None and folder.owner_id == principal.id:
        return FolderAccess(folder, "rwd", "owner", True)
    if folder.group_id is not None and folder.group_id in principal.group_ids:
        return FolderAccess(folder, folder.permission, "group", False)
    if folder.id in invited:
        return FolderAccess(folder, invited[folder.id], "invitation", False)
    if principal.is_platform_admin:
        return FolderAccess(folder, "rwd", "admin", False)
    return None


def resolve(session: Session, principal: Principal, ref: str, trashed: bool | None = None) -> FolderAccess:
    """A folder the principal can see, by id or by name (its own first, then group and shared folders)."""
    text = str(ref).strip()
    candidates = visible(session, principal, trashed, everyone=True)
    if text.isdigit():
        by_id = [c for c in candidates if c.folder.id == int(text)]
        if by_id:
            return by_id[0]
    named = [c for c in candidates if c.folder.name == text]
    if not named:
        raise NotFound(f"no folder '{text}' that you can see")
    ranks = {"owner": 0, "group": 1, "invitation": 2, "admin": 3}
    named.sort(key=lambda c: ranks[c.via])
    best = [c for c in named if ranks[c.via] == ranks[named[0].via]]
    if len(best) > 1:
        ids = ", ".join(str(c.folder.id) for c in best)
        raise Conflict(f"more than one folder you can see is named {text} (ids {ids}): give its id")
    return best[0]


def require(principal: Principal, found: FolderAccess, action: str) -> None:
    refusal = folder_refusal(principal, found.access if found.via != "admin" else None, action, found.manager)
    if refusal is not None:
        raise Forbidden(f"folder {found.folder.name}: {refusal}")
    if found.folder.trashed_at is not None and action in ("read", "write", "delete"):
        raise Conflict(f"folder {found.folder.name} is in the trash: restore it first")


def folder_out(session: Session, found: FolderAccess) -> dict[str, Any]:
    folder = found.folder
    host = session.get(StorageHost, folder.host_id)
    owner = session.get(User, folder.owner_id) if folder.owner_id else None
    group = session.get(Group, folder.group_id) if folder.group_id else None
    return {"id": folder.id, "name": folder.name, "host": host.name if host else None,
            "type": "group" if folder.group_id else "user", "owner": owner.username if owner else None,
            "group": group.name if group else None, "permission": found.access or "rwd", "via": found.via,
            "group_permission": folder.permission if folder.group_id else None,
            "capacity": _bytes(folder.capacity_bytes), "trashed": folder.trashed_at is not None,
            "trashed_at": folder.trashed_at, "created_at": folder.created_at}


def parse_capacity(value: str | int | None) -> int | None:
    """A capacity as given: "10Gi", "512Mi" or a bare number of GiB (Backend.AI's unit); None: the policy's cap."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    text = str(value).strip()
    if text.isdigit():
        text += "Gi"
    try:
        raw = parse_quantity(text, "memory")
    except ValueError as exc:
        raise invalid("capacity", str(exc)) from None
    if raw.is_unlimited:
        return None
    return raw.raw


# -- limits ----------------------------------------------------------------------------------------------------------

def folder_count(session: Session, user_id: int) -> int:
    own = session.scalar(select(func.count()).select_from(Folder).where(Folder.owner_id == user_id)) or 0
    invited = session.scalar(select(func.count()).select_from(FolderInvitation).where(
        FolderInvitation.invitee_id == user_id, FolderInvitation.state == "accepted")) or 0
    return own + invited


def _check_count(session: Session, user: User, what: str) -> None:
    policy = policies.policy_of(session, user)
    limit = policy.max_folders
    if limit is None:
        return
    policies.lock_submitter(session, user.id)
    count = folder_count(session, user.id)
    if count + 1 > limit:
        message = (f"{user.username} has {count} folders (own and invited); the limit folders of resource policy "
                   f"{policy.name} is {limit}")
        raise Conflict(f"{what}: {message}", [FieldError("folders", message)])


def _check_host(session: Session, user: User, host: StorageHost, field: str = "host") -> None:
    policy = policies.policy_of(session, user)
    allowed = policy.allowed_storage_hosts
    if allowed is not None and host.name not in allowed:
        message = (f"storage host {host.name} is not among the allowed hosts of resource policy {policy.name} "
                   f"({', '.join(allowed) or 'none'})")
        raise Conflict(message, [FieldError(field, message)])


def _capacity(session: Session, user: User | None, asked: int | None) -> int | None:
    if user is None:
        return asked
    policy = policies.policy_of(session, user)
    limit = policy.max_folder_bytes
    if asked is not None and limit is not None and asked > limit:
        message = (f"capacity {_bytes(asked)} exceeds the limit folder_capacity of resource policy {policy.name}: "
                   f"{_bytes(limit)}")
        raise Conflict(message, [FieldError("capacity", message)])
    return asked if asked is not None else limit


# -- folders ---------------------------------------------------------------------------------------------------------

def create(session: Session, ctx: StorageContext, principal: Principal, name: str, host_name: str | None = None,
           group_name: str | None = None, permission: str | None = None, capacity: int | None = None,
           source: str | None = None) -> FolderAccess:
    name = (name or "").strip()
    problems = name_problems(name) if name else ["is required"]
    if problems:
        raise invalid("name", "; ".join(problems))
    host = hosts.find_host(session, host_name or hosts.DEFAULT_HOST, field="host")
    if permission is not None and permission not in FOLDER_PERMISSIONS:
        raise invalid("permission", f"must be one of {', '.join(FOLDER_PERMISSIONS)}")
    if capacity is not None and capacity < 0:
        raise invalid("capacity", "must be zero or more")
    user = session.get(User, principal.id)
    if group_name:
        if not principal.is_platform_admin:
            raise Forbidden("only platform admins create group folders")
        group = session.scalar(select(Group).where(Group.name == group_name.strip()))
        if group is None:
            raise invalid("group", f"no group '{group_name}'")
        if session.scalar(select(Folder.id).where(Folder.group_id == group.id, Folder.name == name)):
            raise Conflict(f"group {group.name} already has a folder named {name}",
                           [FieldError("name", "already exists in the group")])
        folder = Folder(name=name, host_id=host.id, group_id=group.id, permission=permission or "rw",
                        capacity_bytes=capacity, created_by_id=principal.id)
    else:
        if permission not in (None, "rwd"):
            raise invalid("permission", "applies to group folders only (a user folder's owner has rwd)")
        if session.scalar(select(Folder.id).where(Folder.owner_id == principal.id, Folder.name == name)):
            raise Conflict(f"you already have a folder named {name}", [FieldError("name", "already exists")])
        _check_host(session, user, host)
        _check_count(session, user, f"folder {name} refused")
        folder = Folder(name=name, host_id=host.id, owner_id=principal.id, permission="rwd",
                        capacity_bytes=_capacity(session, user, capacity), created_by_id=principal.id)
    session.add(folder)
    session.flush()
    try:
        hosts.store_for(host, ctx).create(folder.id)
    except StoreError as exc:
        raise store_error(exc) from None
    audit.record(session, principal, "folder.create", "folder", folder.name, folder.id,
                 changes={"after": {"host": host.name, "group": group_name, "permission": folder.permission,
                                    "capacity": _bytes(folder.capacity_bytes)}}, source=source)
    via = "owner" if folder.owner_id else ("group" if folder.group_id in principal.group_ids else "admin")
    return FolderAccess(folder, "rwd" if via != "group" else folder.permission, via, folder.owner_id is not None)


def group_folder_names(session: Session, group_id: int) -> list[str]:
    """The folders a group owns, trashed ones included: their files live on a storage host until purged."""
    return list(session.scalars(select(Folder.name).where(Folder.group_id == group_id).order_by(Folder.name)))


def mounting_jobs(session: Session, folder_id: int) -> list[int]:
    """Active jobs (queued, admitted, running) that mount the folder."""
    rows = session.execute(select(Job.id, Job.mounts).where(Job.state.in_(ACTIVE_STATES), Job.mounts.is_not(None)))
    return sorted(jid for jid, mounts in rows.all() if any(m.get("folder_id") == folder_id for m in mounts or ()))


def trash(session: Session, principal: Principal, found: FolderAccess, source: str | None = None) -> None:
    require(principal, found, "manage")
    folder = found.folder
    if folder.trashed_at is not None:
        raise Conflict(f"folder {folder.name} is already in the trash")
    jobs = mounting_jobs(session, folder.id)
    if jobs:
        raise Conflict(f"folder {folder.name} is mounted by active job(s) {', '.join(map(str, jobs))}: it can be "
                       f"trashed once they end")
    folder.trashed_at = utcnow()
    session.flush()
    audit.record(session, principal, "folder.trash", "folder", folder.name, folder.id, source=source)


def restore(session: Session, principal: Principal, found: FolderAccess, source: str | None = None) -> None:
    require(principal, found, "manage")
    folder = found.folder
    if folder.trashed_at is None:
        raise Conflict(f"folder {folder.name} is not in the trash")
    folder.trashed_at = None
    session.flush()
    audit.record(session, principal, "folder.restore", "folder", folder.name, folder.id, source=source)


def purge(session: Session, ctx: StorageContext, principal: Principal, found: FolderAccess,
          source: str | None = None) -> None:
    """Delete a trashed folder and its files for good."""
    require(principal, found, "manage")
    folder = found.folder
    if folder.trashed_at is None:
        raise Conflict(f"folder {folder.name} is not in the trash: trash it first")
    _purge(session, ctx, folder)
    audit.record(session, principal, "folder.purge", "folder", folder.name, folder.id, source=source)


def _purge(session: Session, ctx: StorageContext, folder: Folder) -> None:
    host = session.get(StorageHost, folder.host_id)
    try:
        hosts.store_for(host, ctx).purge(folder.id)
    except StoreError as exc:
        raise store_error(exc) from None
    session.delete(folder)
    session.flush()


def purge_user(session: Session, ctx: StorageContext, principal: Principal, user: User,
               source: str | None = None) -> list[str]:
    """Every folder the user owns, trashed or not (a platform admin's clean-up of an account). Group folders belong
    to their group, never to the user who created them: they stay."""
    if not principal.is_platform_admin:
        raise Forbidden("only platform admins purge a user's folders")
    folders = list(session.scalars(select(Folder).where(Folder.owner_id == user.id)).all())
    busy = {f.name: mounting_jobs(session, f.id) for f in folders}
    busy = {k: v for k, v in busy.items() if v}
    if busy:
        raise Conflict("; ".join(f"folder {k} is mounted by active job(s) {', '.join(map(str, v))}"
                                 for k, v in busy.items()))
    names = []
    for folder in folders:
        names.append(folder.name)
        _purge(session, ctx, folder)
    audit.record(session, principal, "folder.purge_user", "user", user.username, user.id,
                 changes={"after": {"purged": names}}, source=source)
    return names


# -- invitations -----------------------------------------------------------------------------------------------------

def share(session: Session, principal: Principal, found: FolderAccess, invitee: User, permission: str = "rw",
          source: str | None = None) -> FolderInvitation:
    require(principal, found, "manage")
    folder = found.folder
    if folder.group_id is not None:
        raise Conflict(f"folder {folder.name} is a group folder: its group's members see it without invitations")
    if folder.trashed_at is not None:
        raise Conflict(f"folder {folder.name} is in the trash")
    if permission not in FOLDER_PERMISSIONS:
        raise invalid("permission", f"must be one of {', '.join(FOLDER_PERMISSIONS)}")
    if invitee.id == folder.owner_id:
        raise invalid("user", "is the folder's owner")
    if invitee.kind != "user" or not invitee.is_active:
        raise invalid("user", "must be an active user (not a service account)")
    open_one = session.scalar(select(FolderInvitation).where(
        FolderInvitation.folder_id == folder.id, FolderInvitation.invitee_id == invitee.id,
        FolderInvitation.state.in_(("pending", "accepted"))))
    if open_one is not None:
        raise Conflict(f"{invitee.username} already has a{'' if open_one.state == 'accepted' else ' pending'} "
                       f"invitation to folder {folder.name}", [FieldError("user", f"already {open_one.state}")])
    invitation = FolderInvitation(folder_id=folder.id, invitee_id=invitee.id, inviter_id=principal.id,
                                  permission=permission, state="pending", created_at=utcnow())
    session.add(invitation)
    session.flush()
    audit.record(session, principal, "folder.share", "folder", folder.name, folder.id,
                 changes={"after": {"user": invitee.username, "permission": permission}}, source=source)
    return invitation


def invitations(session: Session, principal: Principal, state: str | None = None) -> list[dict[str, Any]]:
    """The invitations the principal received and those it sent, newest first."""
    if state is not None and state not in INVITATION_STATES:
        raise invalid("state", f"must be one of {', '.join(INVITATION_STATES)}")
    query = select(FolderInvitation).where((FolderInvitation.invitee_id == principal.id)
                                           | (FolderInvitation.inviter_id == principal.id))
    if state:
        query = query.where(FolderInvitation.state == state)
    rows = session.scalars(query.order_by(FolderInvitation.id.desc())).all()
    return [invitation_out(session, i, principal) for i in rows]


def invitation_out(session: Session, invitation: FolderInvitation, principal: Principal) -> dict[str, Any]:
    folder = session.get(Folder, invitation.folder_id)
    invitee = session.get(User, invitation.invitee_id)
    inviter = session.get(User, invitation.inviter_id) if invitation.inviter_id else None
    return {"id": invitation.id, "folder": folder.name if folder else None, "folder_id": invitation.folder_id,
            "invitee": invitee.username if invitee else None, "inviter": inviter.username if inviter else None,
            "permission": invitation.permission, "state": invitation.state,
            "direction": "received" if invitation.invitee_id == principal.id else "sent",
            "created_at": invitation.created_at, "decided_at": invitation.decided_at}


def _find_invitation(session: Session, invitation_id: int) -> FolderInvitation:
    found = session.get(FolderInvitation, invitation_id)
    if found is None:
        raise NotFound(f"no folder invitation {invitation_id}")
    return found


def respond(session: Session, principal: Principal, invitation_id: int, accept: bool,
            source: str | None = None) -> FolderInvitation:
    """The invitee accepts (counted against their folder limit, their policy's allowed hosts checked) or rejects."""
    invitation = _find_invitation(session, invitation_id)
    if invitation.invitee_id != principal.id:
        raise NotFound(f"no folder invitation {invitation_id} for you")
    if invitation.state != "pending":
        raise Conflict(f"invitation {invitation_id} is {invitation.state}, not pending")
    folder = session.get(Folder, invitation.folder_id)
    if accept:
        if folder.trashed_at is not None:
            raise Conflict(f"folder {folder.name} is in its owner's trash: it can be accepted once restored")
        user = session.get(User, principal.id)
        _check_host(session, user, session.get(StorageHost, folder.host_id), field="invitation")
        _check_count(session, user, f"invitation to folder {folder.name} refused")
    invitation.state, invitation.decided_at = ("accepted" if accept else "rejected"), utcnow()
    session.flush()
    audit.record(session, principal, f"folder.invitation_{'accept' if accept else 'reject'}", "folder", folder.name,
                 folder.id, changes={"after": {"invitation": invitation.id}}, source=source)
    return invitation


def cancel_invitation(session: Session, principal: Principal, invitation_id: int,
                      source: str | None = None) -> FolderInvitation:
    """The folder's owner (or a platform admin) cancels a pending invitation or withdraws an accepted one."""
    invitation = _find_invitation(session, invitation_id)
    folder = session.get(Folder, invitation.folder_id)
    manager = folder is not None and folder.owner_id == principal.id
    if folder_refusal(principal, None, "manage", manager) is not None:
        raise NotFound(f"no folder invitation {invitation_id} that you sent")
    if invitation.state not in ("pending", "accepted"):
        raise Conflict(f"invitation {invitation_id} is {invitation.state}")
    invitation.state, invitation.decided_at = "cancelled", utcnow()
    session.flush()
    audit.record(session, principal, "folder.invitation_cancel", "folder", folder.name, folder.id,
                 changes={"after": {"invitation": invitation.id}}, source=source)
    return invitation


# -- files -----------------------------------------------------------------------------------------------------------

def _store(session: Session, ctx: StorageContext, folder: Folder):
    return hosts.store_for(session.get(StorageHost, folder.host_id), ctx)


def list_files(session: Session, ctx: StorageContext, principal: Principal, found: FolderAccess,
               prefix: str = "") -> list[Entry]:
    require(principal, found, "read")
    prefix = clean_path(prefix, "prefix", allow_root=True)
    try:
        return _store(session, ctx, found.folder).list(found.folder.id, prefix)
    except StoreError as exc:
        raise store_error(exc) from None


def usage(session: Session, ctx: StorageContext, folder: Folder) -> int:
    try:
        return _store(session, ctx, folder).usage(folder.id)
    except StoreError as exc:
        raise store_error(exc) from None


def check_upload(session: Session, principal: Principal, found: FolderAccess, path: str) -> str:
    """Before the body is read: may the principal write this path? Returns the clean path."""
    require(principal, found, "write")
    return clean_path(path)


def room_left(session: Session, ctx: StorageContext, found: FolderAccess, path: str) -> int | None:
    """Bytes an upload to `path` may hold (what replacing that file frees counts); None: unlimited."""
    folder = found.folder
    if folder.capacity_bytes is None:
        return None
    store = _store(session, ctx, folder)
    try:
        return folder.capacity_bytes - store.usage(folder.id) + (store.size_of(folder.id, path) or 0)
    except StoreError as exc:
        raise store_error(exc) from None


def over_capacity(folder: Folder, used_other: int, size: int) -> Conflict:
    message = (f"folder {folder.name} would hold {_bytes(used_other + size)} (uploading {_bytes(size)}); its "
               f"capacity is {_bytes(folder.capacity_bytes)}")
    return Conflict(message, [FieldError("capacity", message)])


def store_upload(session: Session, ctx: StorageContext, principal: Principal, found: FolderAccess, path: str,
                 spooled: Path, size: int, source: str | None = None) -> None:
    folder = found.folder
    room = room_left(session, ctx, found, path)
    if room is not None and size > room:
        raise over_capacity(folder, folder.capacity_bytes - room, size)
    try:
        _store(session, ctx, folder).put(folder.id, path, spooled)
    except StoreError as exc:
        raise store_error(exc) from None
    audit.record(session, principal, "folder.upload", "folder", folder.name, folder.id,
                 changes={"after": {"path": path, "bytes": size}}, source=source)


def download(session: Session, ctx: StorageContext, principal: Principal, found: FolderAccess,
             path: str) -> Iterator[bytes]:
    require(principal, found, "read")
    path = clean_path(path)
    try:
        return _store(session, ctx, found.folder).read(found.folder.id, path)
    except FileNotFoundError:
        raise NotFound(f"folder {found.folder.name} has no file {path}") from None
    except StoreError as exc:
        raise store_error(exc) from None


def delete_file(session: Session, ctx: StorageContext, principal: Principal, found: FolderAccess, path: str,
                source: str | None = None) -> None:
    require(principal, found, "delete")
    path = clean_path(path)
    try:
        gone = _store(session, ctx, found.folder).delete(found.folder.id, path)
    except StoreError as exc:
        raise store_error(exc) from None
    if not gone:
        raise NotFound(f"folder {found.folder.name} has no file {path}")
    audit.record(session, principal, "folder.delete_file", "folder", found.folder.name, found.folder.id,
                 changes={"before": {"path": path}}, source=source)
