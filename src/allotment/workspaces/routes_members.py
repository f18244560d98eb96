"""Joining and leaving workspaces: invitations by e-mail (pending with their date until accepted through the token or
by the invitee signed in, or cancelled), leaving, credentials scoped to a workspace, and the caller's own workspaces
and invitations. Every route asks core.permissions.workspace_refusal (through routes.load) and every change is
audited."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request, Response
from sqlalchemy.orm import Session

from allotment.api.deps import DB, State, client_address, require
from allotment.audit import service as audit
from allotment.core.permissions import AUTHENTICATED, Principal, workspace_refusal
from allotment.errors import Forbidden, NotFound
from allotment.identity import credentials
from allotment.identity.models import User
from allotment.inventory.models import Cluster
from allotment.inventory.service import find_cluster
from allotment.workspaces import invitations
from allotment.workspaces import service as workspaces
from allotment.workspaces.models import Workspace
from allotment.workspaces.schemas import (
    InvitationCreated,
    InvitationIn,
    InvitationOut,
    LeaveOut,
    ScopedCredentialIn,
    ScopedCredentialOut,
    TokenIn,
    WorkspaceOut,
)

router = APIRouter(tags=["workspaces"])
Authenticated = Annotated[Principal, require(AUTHENTICATED)]
ACCEPT_PAGE = "/ui/workspace-invitations/accept"


def _load(db: Session, principal: Principal, cluster: str, workspace: str, action: str):
    from allotment.workspaces.routes import load  # routes.py includes this router

    return load(db, principal, cluster, workspace, action)


def _name(found: Cluster, workspace: Workspace) -> str:
    return f"{found.name}/{workspace.name}"


def _me(db: Session, principal: Principal) -> User:
    if principal.actor_id is not None:
        raise Forbidden("invitations cannot be accepted while acting on behalf of another user")
    return db.get(User, principal.id)


@router.post("/clusters/{cluster}/workspaces/{workspace}/invitations", response_model=InvitationCreated,
             status_code=201)
def invite(cluster: str, workspace: str, body: InvitationIn, principal: Authenticated, db: DB, state: State,
           request: Request) -> InvitationCreated:
    """Invite an address with a role; the token in the answer is shown once (send the link to the invitee)."""
    found, target, role = _load(db, principal, cluster, workspace, "manage")
    if body.role.strip().lower() == "owner":
        refusal = workspace_refusal(principal, found.id, role, "own")
        if refusal:
            raise Forbidden(refusal)
    created = invitations.invite(db, state.secret_key, target, body.email, body.role, principal.id,
                                 body.lifetime_days)
    out = invitations.invitation_out(created.invitation)
    audit.record(db, principal, "workspace.invite", "workspace", _name(found, target), target.id,
                 changes={"after": {"email": out["email"], "role": out["role"], "invitation": out["id"]}},
                 source=client_address(request))
    return InvitationCreated(**out, workspace=target.name, cluster=found.name, token=created.token,
                             link=f"{ACCEPT_PAGE}?token={created.token}")


@router.get("/clusters/{cluster}/workspaces/{workspace}/invitations", response_model=list[InvitationOut])
def list_invitations(cluster: str, workspace: str, principal: Authenticated, db: DB) -> list[InvitationOut]:
    """The pending invitations, oldest first, with the date each was sent and when it expires (expired ones are
    listed as such until cancelled)."""
    found, target, _ = _load(db, principal, cluster, workspace, "read")
    return [InvitationOut(**invitations.invitation_out(i), workspace=target.name, cluster=found.name)
            for i in invitations.pending_for_workspace(db, target.id)]


@router.delete("/clusters/{cluster}/workspaces/{workspace}/invitations/{invitation}", status_code=204)
def cancel_invitation(cluster: str, workspace: str, invitation: int, principal: Authenticated, db: DB,
                      request: Request) -> Response:
    found, target, _ = _load(db, principal, cluster, workspace, "manage")
    pending = invitations.find_pending(db, target, invitation)
    invitations.cancel(db, pending)
    audit.record(db, principal, "workspace.invitation_cancel", "workspace", _name(found, target), target.id,
                 changes={"before": {"email": pending.email, "role": pending.role, "invitation": pending.id}},
                 source=client_address(request))
    return Response(status_code=204)


def _accepted(db: Session, principal: Principal, request: Request, invitation, target: Workspace,
              through: str) -> InvitationOut:
    found = find_cluster(db, target.cluster_id)
    audit.record(db, principal, "workspace.invitation_accept", "workspace", _name(found, target), target.id,
                 changes={"after": {"user": principal.username, "role": invitation.role,
                                    "invitation": invitation.id, "through": through}},
                 source=client_address(request))
    return InvitationOut(**invitations.invitation_out(invitation), workspace=target.name, cluster=found.name)


@router.post("/workspace-invitations/accept", response_model=InvitationOut)
def accept_with_token(body: TokenIn, principal: Authenticated, db: DB, state: State,
                      request: Request) -> InvitationOut:
    """Accept an invitation through its token (the link's): the signed-in user becomes a member."""
    invitation, target = invitations.accept_token(db, state.secret_key, body.token, _me(db, principal))
    return _accepted(db, principal, request, invitation, target, "token")


@router.get("/workspace-invitations", response_model=list[InvitationOut])
def my_invitations(principal: Authenticated, db: DB) -> list[InvitationOut]:
    """The pending invitations for the caller's e-mail address (expired ones shown as expired)."""
    user = db.get(User, principal.id)
    names = {}
    out = []
    for invitation, workspace in invitations.pending_for_user(db, user):
        if workspace.cluster_id not in names:
            names[workspace.cluster_id] = find_cluster(db, workspace.cluster_id).name
        out.append(InvitationOut(**invitations.invitation_out(invitation), workspace=workspace.name,
                                 cluster=names[workspace.cluster_id]))
    return out


@router.post("/workspace-invitations/{invitation}/accept", response_model=InvitationOut)
def accept_own(invitation: int, principal: Authenticated, db: DB, request: Request) -> InvitationOut:
    """Accept, signed in, an invitation for the caller's own e-mail address."""
    found, target = invitations.accept_own(db, invitation, _me(db, principal))
    return _accepted(db, principal, request, found, target, "signed in")


@router.post("/clusters/{cluster}/workspaces/{workspace}/leave", response_model=LeaveOut)
def leave(cluster: str, workspace: str, principal: Authenticated, db: DB, request: Request) -> LeaveOut:
    """Leave a workspace the caller is a direct member of: it loses the workspace's quotas and its credentials scoped
    to the workspace are revoked; its jobs stay. Not the personal workspace; rejoining takes a new invitation."""
    found, target, _ = _load(db, principal, cluster, workspace, "leave")
    me = db.get(User, principal.id)
    try:
        member = workspaces.find_member(db, target, user=me)
    except NotFound:
        raise Forbidden(f"you are a member of workspace {target.name} through a group: leave the group, or ask "
                        "its owners to remove the group") from None
    revoked = workspaces.remove_member(db, target, member, principal, client_address(request), what="leave")
    audit.record(db, principal, "workspace.leave", "workspace", _name(found, target), target.id,
                 changes={"before": {"member": f"{me.kind}:{me.username}", "role": member.role},
                          "revoked_credentials": revoked}, source=client_address(request))
    return LeaveOut(revoked_credentials=revoked)


@router.post("/clusters/{cluster}/workspaces/{workspace}/credentials", response_model=ScopedCredentialOut,
             status_code=201)
def create_scoped_credential(cluster: str, workspace: str, body: ScopedCredentialIn, principal: Authenticated,
                             db: DB, state: State, request: Request) -> ScopedCredentialOut:
    """A credential for the caller that acts in this workspace only; revoked when the caller leaves or is removed."""
    credentials.refuse_while_impersonating(principal)
    found, target, role = _load(db, principal, cluster, workspace, "read")
    if role is None:
        raise Forbidden(f"you are not a member of workspace {target.name}")
    credential, secret = credentials.create_credential(
        db, state.secret_key, db.get(User, principal.id), principal, label=body.label,
        source=client_address(request), workspace_id=target.id)
    return ScopedCredentialOut(access_key=credential.access_key, secret_key=secret, workspace=_name(found, target))


@router.get("/workspaces", response_model=list[WorkspaceOut])
def my_workspaces(principal: Authenticated, db: DB) -> list[WorkspaceOut]:
    """The caller's workspaces in every cluster (its personal one first), with its role in each."""
    user = db.get(User, principal.id)
    invitations.ensure_personal_workspace(db, user)
    roles = workspaces.member_roles(db, principal.id, principal.kind, set(principal.group_ids))
    found = [w for w in (db.get(Workspace, i) for i in roles) if w is not None]
    found.sort(key=lambda w: (w.personal_user_id != principal.id, w.name))
    clusters = {}
    out = []
    for w in found:
        clusters.setdefault(w.cluster_id, find_cluster(db, w.cluster_id).name)
        out.append(WorkspaceOut(**workspaces.snapshot(db, w, clusters[w.cluster_id]),
                                personal=w.personal_user_id is not None, my_role=roles[w.id]))
    return out
