"""Configuration vaults API (/vaults, /config/effective) and the secret hide-list (/hide-list).

Any signed-in principal; core.permissions.vault_refusal and hide_list_refusal decide what each may read and change
(the services ask them). Vault content is never written to the audit log (it may hold credentials): only its size."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request, Response
from fastapi.responses import PlainTextResponse

from allotment.api.deps import DB, client_address, require
from allotment.api.fields import Ref
from allotment.audit import service as audit
from allotment.core import hide_list
from allotment.core.permissions import AUTHENTICATED, PLATFORM_ADMIN, Principal
from allotment.errors import Forbidden
from allotment.identity import service as identity
from allotment.vaults import formats, hide_lists
from allotment.vaults import service as vaults
from allotment.vaults.schemas import (
    EffectiveKey,
    EffectiveOut,
    HideListIn,
    HideListOut,
    VaultCreate,
    VaultList,
    VaultOut,
    VaultUpdate,
)

router = APIRouter(tags=["vaults"])
Signed = Annotated[Principal, require(AUTHENTICATED)]
Admin = Annotated[Principal, require(PLATFORM_ADMIN)]  # hide_list_refusal: admins set the platform's list


def _out(db, vault) -> VaultOut:
    return VaultOut(**vaults.snapshot(db, vault))


@router.get("/vaults", response_model=VaultList)
def list_vaults(principal: Signed, db: DB, user: Ref | None = None, service_account: Ref | None = None,
                group: Ref | None = None) -> VaultList:
    """The vaults the caller may read (its own, its groups', every vault for admins), or those of one owner."""
    owner = vaults.find_owner(db, user, service_account, group, principal) \
        if user or service_account or group else None
    items = [_out(db, v) for v in vaults.list_vaults(db, principal, owner)]
    return VaultList(items=items, total=len(items))


@router.post("/vaults", response_model=VaultOut, status_code=201)
def create_vault(body: VaultCreate, principal: Signed, db: DB, request: Request) -> VaultOut:
    owner = vaults.find_owner(db, body.user, body.service_account, body.group, principal)
    vault = vaults.create_vault(db, principal, body.name, owner, body.format, body.content, body.enabled,
                                body.position)
    audit.record(db, principal, "vault.create", "vault", vault.name, vault.id,
                 changes={"after": {**vaults.audit_state(vault), "owner": f"{owner.kind}:{owner.name}"}},
                 source=client_address(request))
    return _out(db, vault)


@router.get("/vaults/{name}", response_model=VaultOut)
def get_vault(name: str, principal: Signed, db: DB) -> VaultOut:
    return _out(db, vaults.find_vault(db, principal, name))


@router.patch("/vaults/{name}", response_model=VaultOut)
def update_vault(name: str, body: VaultUpdate, principal: Signed, db: DB, request: Request) -> VaultOut:
    vault = vaults.find_vault(db, principal, name)
    before = vaults.audit_state(vault)
    vaults.update_vault(db, principal, vault, body.model_dump(exclude_unset=True))
    audit.record(db, principal, "vault.update", "vault", vault.name, vault.id,
                 changes=audit.diff(before, vaults.audit_state(vault)), source=client_address(request))
    return _out(db, vault)


@router.delete("/vaults/{name}", status_code=204)
def delete_vault(name: str, principal: Signed, db: DB, request: Request) -> Response:
    vault = vaults.find_vault(db, principal, name)
    before = vaults.audit_state(vault)
    vaults.delete_vault(db, principal, vault)
    audit.record(db, principal, "vault.delete", "vault", before["name"], None, changes={"before": before},
                 source=client_address(request))
    return Response(status_code=204)


@router.get("/vaults/{name}/download", response_class=PlainTextResponse)
def download_vault(name: str, principal: Signed, db: DB) -> PlainTextResponse:
    """The vault's text as a file named after it, with its format's extension (.json, .yaml, .conf)."""
    vault = vaults.find_vault(db, principal, name)
    filename = f"{vault.name}{formats.SUFFIX[vault.format]}"
    return PlainTextResponse(vault.content, headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def effective_out(view: vaults.EffectiveView) -> EffectiveOut:
    return EffectiveOut(user=view.user, vaults=view.vaults, configuration=view.tree(), updated_at=view.updated_at,
                        keys=[EffectiveKey(key=k, value=view.values[k], source=view.sources[k])
                              for k in sorted(view.values)])


@router.get("/config/effective", response_model=EffectiveOut)
def effective(principal: Signed, db: DB, user: Ref | None = None) -> EffectiveOut:
    """The merge of the enabled vaults that apply to the caller (or, for admins, to `user`): its groups' vaults in
    their order, then its own; each key with the vault it came from. Jobs receive their owner's."""
    return effective_out(vaults.effective_for(db, principal, user))


# --- hide-list ---------------------------------------------------------------------------------------------------


def hide_list_out(db, user_id: int | None) -> HideListOut:
    own = hide_lists.user_names(db, user_id) if user_id is not None else []
    return HideListOut(platform=hide_lists.platform_names(db), own=own,
                       user=identity.find_user(db, user_id).username if user_id is not None else None,
                       effective=sorted(hide_lists.names_for(db, user_id)), defaults=list(hide_list.DEFAULT_NAMES))


def _user_id(db, principal: Principal, user: str | None) -> int:
    if user is None:
        return principal.id
    target = identity.find_user(db, user)
    if target.id != principal.id and not principal.is_platform_admin:
        raise Forbidden("only platform admins see another user's hide-list")
    return target.id


@router.get("/hide-list", response_model=HideListOut)
def get_hide_list(principal: Signed, db: DB, user: Ref | None = None) -> HideListOut:
    """The platform's list, the caller's (or, for admins, `user`'s) additions, and every name hidden for them."""
    return hide_list_out(db, _user_id(db, principal, user))


@router.put("/hide-list/platform", response_model=HideListOut)
def set_platform_hide_list(body: HideListIn, principal: Admin, db: DB, request: Request) -> HideListOut:
    before = hide_lists.platform_names(db)
    after = hide_lists.set_names(db, principal, None, body.names)
    audit.record(db, principal, "hide_list.update", "hide_list", "platform", None,
                 changes=audit.diff({"names": before}, {"names": after}), source=client_address(request))
    return hide_list_out(db, principal.id)


@router.delete("/hide-list/platform", response_model=HideListOut)
def reset_platform_hide_list(principal: Admin, db: DB, request: Request) -> HideListOut:
    """Back to the defaults."""
    before = hide_lists.platform_names(db)
    after = hide_lists.reset_platform(db, principal)
    audit.record(db, principal, "hide_list.reset", "hide_list", "platform", None,
                 changes=audit.diff({"names": before}, {"names": after}), source=client_address(request))
    return hide_list_out(db, principal.id)


@router.put("/hide-list/users/{user}", response_model=HideListOut)
def set_user_hide_list(user: str, body: HideListIn, principal: Signed, db: DB, request: Request) -> HideListOut:
    """A user's additions to the platform's list (`me` names the caller)."""
    target_id = principal.id if user == "me" else identity.find_user(db, user).id
    before = hide_lists.user_names(db, target_id)
    after = hide_lists.set_names(db, principal, target_id, body.names)
    audit.record(db, principal, "hide_list.update", "hide_list", identity.find_user(db, target_id).username,
                 target_id, changes=audit.diff({"names": before}, {"names": after}), source=client_address(request))
    return hide_list_out(db, target_id)
