"""Draft and provisioned resource configuration of a cluster (ClearML), and the resource management switch.
Cluster admins (and platform admins) only."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request

from allotment.api.deps import DB, State, client_address, cluster_scope, require
from allotment.audit import service as audit
from allotment.core.permissions import Principal, cluster
from allotment.inventory.service import find_cluster
from allotment.quotas import config
from allotment.quotas.schemas import ConfigDocument, ConfigStatus, DraftOut, SwitchIn

router = APIRouter(tags=["resource configuration"])
Admin = Annotated[Principal, require(cluster("admin"), scope=cluster_scope())]
BASE = "/clusters/{cluster}/resource-config"


def _who(principal: Principal) -> str:
    return principal.actor_username or principal.username


@router.get(BASE, response_model=ConfigStatus)
def get_config(cluster: str, principal: Admin, db: DB) -> ConfigStatus:
    """The provisioned configuration, the draft (if any) and the switch."""
    return ConfigStatus(**config.status(db, find_cluster(db, cluster)))


@router.get(BASE + "/draft", response_model=DraftOut)
def get_draft(cluster: str, principal: Admin, db: DB) -> DraftOut:
    """The draft, or the provisioned configuration to start a draft from, with the configuration version it is based
    on and whether the live configuration changed since (`stale`: provision refuses it until reset or re-saved)."""
    return DraftOut.model_validate(config.get_draft(db, find_cluster(db, cluster)))


@router.put(BASE + "/draft", response_model=ConfigStatus)
def save_draft(cluster: str, body: ConfigDocument, principal: Admin, db: DB, request: Request) -> ConfigStatus:
    """Save edits; nothing changes for the scheduler until `provision`."""
    found = find_cluster(db, cluster)
    draft = config.save_draft(db, found, body.model_dump(mode="json"), _who(principal))
    audit.record(db, principal, "resource_config.save_draft", "cluster", found.name, found.id,
                 changes={"after": {"draft_version": draft.version, "based_on_version": draft.based_on_version}},
                 source=client_address(request))
    return ConfigStatus(**config.status(db, found))


@router.post(BASE + "/provision", response_model=ConfigStatus)
def provision(cluster: str, principal: Admin, db: DB, state: State, request: Request) -> ConfigStatus:
    """Validate the draft as a whole and apply it atomically; the draft is then dropped. A draft saved before the
    live configuration last changed is refused (409, code draft_stale): it would undo that change."""
    found = find_cluster(db, cluster)
    before = config.export_config(db, found.id)
    applied = config.provision(db, found, _who(principal))
    audit.record(db, principal, "resource_config.provision", "cluster", found.name, found.id,
                 changes=audit.diff(before, applied), source=client_address(request))
    state.scheduler_wakeup.set()
    return ConfigStatus(**config.status(db, found))


@router.post(BASE + "/reset", response_model=ConfigStatus)
def reset(cluster: str, principal: Admin, db: DB, request: Request) -> ConfigStatus:
    """Drop the draft (saved, unprovisioned edits)."""
    found = find_cluster(db, cluster)
    dropped = config.reset(db, found.id)
    audit.record(db, principal, "resource_config.reset", "cluster", found.name, found.id,
                 changes={"after": {"draft_dropped": dropped}}, source=client_address(request))
    return ConfigStatus(**config.status(db, found))


@router.put(BASE + "/enabled", response_model=ConfigStatus)
def switch(cluster: str, body: SwitchIn, principal: Admin, db: DB, state: State, request: Request) -> ConfigStatus:
    """Enable or disable resource management: while disabled, queued jobs stay queued and running ones keep running."""
    found = find_cluster(db, cluster)
    before = found.resource_management_enabled
    config.set_enabled(db, found, body.enabled)
    audit.record(db, principal, "resource_config.enable" if body.enabled else "resource_config.disable", "cluster",
                 found.name, found.id, changes=audit.diff({"enabled": before}, {"enabled": body.enabled}),
                 source=client_address(request))
    state.scheduler_wakeup.set()
    return ConfigStatus(**config.status(db, found))
