"""Invitations to a workspace by e-mail address, and each user's personal workspace.

An invitation is pending, with its date, until it is accepted (through its token, or by the signed-in user whose
address it names, who sees it in the console) or cancelled, or until it expires: it lives `lifetime_days` (7 unless
the inviter says otherwise, at most 90), after which it cannot be accepted and is listed as expired until cancelled. Accepting makes the user a member with the invited role.
An invitation for an address without an account becomes a membership when that account is created: identity's
create_user calls `on_user_created` (admin, CSV import, SCIM and single sign-on all create users through it), which
also creates the user's personal workspace. Only a hash of the token is stored; the token is shown once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from allotment.audit import service as audit
from allotment.core.names import name_problems
from allotment.db import utcnow
from allotment.errors import Conflict, DomainError, FieldError, Forbidden, NotFound, invalid
from allotment.identity.models import User
from allotment.identity.secrets import new_secret, token_digest
from allotment.inventory.models import Cluster
from allotment.workspaces import service
from allotment.workspaces.models import Workspace, WorkspaceInvitation

PERSONAL_PREFIX = "personal-"
DEFAULT_LIFETIME_DAYS = 7
MAX_LIFETIME_DAYS = 90


@dataclass(frozen=True)
class NewInvitation:
    invitation: WorkspaceInvitation
    token: str  # shown once, in the link sent to the invitee


def _pending(query):
    """Neither accepted nor cancelled: pending, or expired while pending."""
    return query.where(WorkspaceInvitation.accepted_at.is_(None), WorkspaceInvitation.cancelled_at.is_(None))


def _open(query, now: datetime):
    """Pending and not expired: what may still be accepted."""
    return _pending(query).where(WorkspaceInvitation.expires_at > now)


def is_expired(invitation: WorkspaceInvitation, now: datetime | None = None) -> bool:
    return invitation.expires_at <= (now or utcnow())


def _refuse_expired(invitation: WorkspaceInvitation, field: str | None = None) -> None:
    if is_expired(invitation):
        message = (f"the invitation expired on {invitation.expires_at:%Y-%m-%d %H:%M} UTC: ask for a new one")
        errors = [FieldError(field, message)] if field else []
        raise DomainError(f"{field}: {message}" if field else message, errors, 410, "Gone", "expired")


def _check_email(email: str) -> str:
    try:
        return validate_email(email.strip(), check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise invalid("email", str(exc)) from exc


def invite(session: Session, secret_key: str, workspace: Workspace, email: str, role: str,
           invited_by_id: int | None, lifetime_days: int = DEFAULT_LIFETIME_DAYS) -> NewInvitation:
    email, role = _check_email(email), service.check_role(role)
    if not 1 <= lifetime_days <= MAX_LIFETIME_DAYS:
        raise invalid("lifetime_days", f"must be between 1 and {MAX_LIFETIME_DAYS} days, not {lifetime_days}")
    key = email.lower()
    now = utcnow()
    if session.scalar(_open(select(WorkspaceInvitation.id).where(
            WorkspaceInvitation.workspace_id == workspace.id, WorkspaceInvitation.email_key == key), now)):
        raise Conflict(f"{email} already has a pending invitation to workspace {workspace.name}",
                       [FieldError("email", "already invited")])
    user = session.scalar(select(User).where(User.email_key == key))
    if user is not None and workspace.id in service.workspace_ids_of(session, user.id, user.kind, set()):
        raise Conflict(f"{user.username} is already a member of workspace {workspace.name}",
                       [FieldError("email", "already a member")])
    token = new_secret()
    invitation = WorkspaceInvitation(workspace_id=workspace.id, email=email, email_key=key, role=role,
                                     token_hash=token_digest(secret_key, token), invited_by_id=invited_by_id,
                                     created_at=now, expires_at=now + timedelta(days=lifetime_days))
    session.add(invitation)
    session.flush()
    return NewInvitation(invitation, token)


def pending_for_workspace(session: Session, workspace_id: int) -> list[WorkspaceInvitation]:
    """Pending invitations, expired ones included (shown as expired until cancelled), oldest first."""
    return list(session.scalars(_pending(select(WorkspaceInvitation).where(
        WorkspaceInvitation.workspace_id == workspace_id)).order_by(WorkspaceInvitation.created_at)).all())


def pending_for_user(session: Session, user: User) -> list[tuple[WorkspaceInvitation, Workspace]]:
    """The pending invitations naming the user's address, expired ones included, with their workspaces (the
    console's notice)."""
    if not user.email_key:
        return []
    return [tuple(r) for r in session.execute(_pending(
        select(WorkspaceInvitation, Workspace).join(Workspace, Workspace.id == WorkspaceInvitation.workspace_id)
        .where(WorkspaceInvitation.email_key == user.email_key)).order_by(WorkspaceInvitation.created_at)).all()]


def find_pending(session: Session, workspace: Workspace, invitation_id: int) -> WorkspaceInvitation:
    found = session.scalar(_pending(select(WorkspaceInvitation).where(
        WorkspaceInvitation.id == invitation_id, WorkspaceInvitation.workspace_id == workspace.id)))
    if found is None:
        raise NotFound(f"no pending invitation {invitation_id} to workspace {workspace.name}")
    return found


def cancel(session: Session, invitation: WorkspaceInvitation) -> None:
    invitation.cancelled_at = utcnow()
    session.flush()


def _accept(session: Session, invitation: WorkspaceInvitation, user: User) -> Workspace:
    workspace = session.get(Workspace, invitation.workspace_id)
    service.add_member(session, workspace, user=user, role=invitation.role)
    invitation.accepted_at, invitation.accepted_by_id = utcnow(), user.id
    session.flush()
    return workspace


def accept_token(session: Session, secret_key: str, token: str, user: User) -> tuple[WorkspaceInvitation, Workspace]:
    """Accept through the invitation's link or token: whoever holds the token may accept it as themselves."""
    invitation = session.scalar(_pending(select(WorkspaceInvitation).where(
        WorkspaceInvitation.token_hash == token_digest(secret_key, (token or "").strip()))))
    if invitation is None:
        message = "no pending invitation has this token (it was accepted, cancelled or mistyped)"
        raise DomainError(f"token: {message}", [FieldError("token", message)], 404, "Not found", "not_found")
    _refuse_expired(invitation, "token")
    if user.kind != "user":
        raise Forbidden("a service account cannot accept an invitation; add it as a member instead")
    return invitation, _accept(session, invitation, user)


def accept_own(session: Session, invitation_id: int, user: User) -> tuple[WorkspaceInvitation, Workspace]:
    """Accept, signed in, an invitation naming the user's own address (the console's notice)."""
    invitation = session.scalar(_pending(select(WorkspaceInvitation).where(WorkspaceInvitation.id == invitation_id)))
    if invitation is None or not user.email_key or invitation.email_key != user.email_key:
        raise NotFound(f"no pending invitation {invitation_id} for you")
    _refuse_expired(invitation)
    return invitation, _accept(session, invitation, user)


def invitation_out(invitation: WorkspaceInvitation, workspace: Workspace | None = None) -> dict[str, Any]:
    data = {"id": invitation.id, "email": invitation.email, "role": invitation.role,
            "invited_at": invitation.created_at, "expires_at": invitation.expires_at,
            "lifetime_days": round((invitation.expires_at - invitation.created_at) / timedelta(days=1)),
            "status": "expired" if is_expired(invitation) else "pending"}
    if workspace is not None:
        data["workspace"] = workspace.name
        data["cluster_id"] = workspace.cluster_id
    return data


def personal_workspace(session: Session, user_id: int) -> Workspace | None:
    return session.scalar(select(Workspace).where(Workspace.personal_user_id == user_id).order_by(Workspace.id))


def ensure_personal_workspace(session: Session, user: User) -> Workspace | None:
    """The user's personal workspace, created in the first cluster (the default one) when missing; None while there
    is no cluster or for a service account."""
    if user.kind != "user":
        return None
    found = personal_workspace(session, user.id)
    if found is not None:
        return found
    cluster_id = session.scalar(select(func.min(Cluster.id)))
    if cluster_id is None:
        return None
    name = f"{PERSONAL_PREFIX}{user.username}"
    taken = session.scalar(select(Workspace.id).where(Workspace.cluster_id == cluster_id, Workspace.name == name))
    if taken or name_problems(name, spaces=True):  # a long username, or one a workspace name may not hold
        name = f"{PERSONAL_PREFIX}{user.id}"
    return service.create_workspace(session, cluster_id, name, f"personal workspace of {user.username}", owner=user,
                                    personal_user_id=user.id)


def on_user_created(session: Session, user: User) -> list[str]:
    """A new account: its personal workspace, and every pending invitation for its address becomes a membership.
    Returns the names of the workspaces it joined through invitations."""
    ensure_personal_workspace(session, user)
    joined = []
    if user.kind == "user" and user.email_key:
        for invitation, workspace in pending_for_user(session, user):
            if is_expired(invitation):
                continue
            _accept(session, invitation, user)
            audit.record(session, None, "workspace.invitation_accept", "workspace", workspace.name, workspace.id,
                         changes={"after": {"user": user.username, "role": invitation.role,
                                            "invitation": invitation.id, "through": "account created"}})
            joined.append(workspace.name)
    return joined
