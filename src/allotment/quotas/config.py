"""ClearML's draft and provisioned resource configuration of one cluster.

The configuration is one document: the quota tree (ClearML resource policies are quotas), the profiles with their
ordered pool links and policy order, and each pool's execution order of profiles:

    {"quotas": [{"name", "parent", "weight", ..., "resources": [{"pool", "resource", "guarantee", "limit",
                 "lending_limit"}], "pools": [pool, ...] (DKube: the only pools it may use; [] = all)}],
     "profiles": [{"name", "gpu", "cpu", "memory", "description", "pools": [{"pool", "name"}], "policies": [quota],
                   "unordered"}],
     "pool_profile_order": {"pool": ["profile", ...]}}

Edits are saved as a draft (nothing changes for the scheduler); `provision` applies the draft to the live tables
atomically after validating the result as a whole (one quota-tree validation at the end, so a parent may shrink
while its children do in the same draft); `reset` drops the draft. Quotas and profiles are matched by name, so jobs
and bindings of kept ones stay attached; ones missing from the draft are deleted (refused while they have active
jobs). The live tables are always the provisioned configuration; direct API edits of quotas and profiles apply at
once. The switch `resource_management_enabled` (per cluster) pauses admission without touching anything else.

A draft is a whole copy of the configuration, so provisioning it after the live configuration changed (a direct edit
of a quota, profile, pool order or pool, or another draft provisioned) would silently undo that change: a quota
created live would be deleted, a live edit reverted. So the draft records the cluster's `config_version` when it is
saved (`based_on_version`, bumped by every configuration change); the draft reports itself `stale` once the live
version moved on, and `provision` refuses a stale draft (409) until it is reset (and edited again from the live
configuration) or re-saved (the admin has looked at it and means to apply it as it is). Inventory changes that bump
the version (nodes registered with new devices, drained or deleted) make a draft stale too: being asked to re-save
once is cheaper than losing a change.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from allotment.core.quantity import format_raw
from allotment.core.quota_tree import validate_tree
from allotment.core.resources import ANY_POOL
from allotment.errors import Conflict, FieldError, ValidationFailed
from allotment.inventory.models import Cluster, Pool
from allotment.quotas import profiles as profile_service
from allotment.quotas import service as quota_service
from allotment.quotas.models import Quota, QuotaResource, ResourceConfig
from allotment.quotas.quota_pools import own_pools, set_pools
from allotment.quotas.tree import pool_names, quota_specs

DRAFT = "draft"
PROVISIONED = "provisioned"
QUOTA_FIELDS = ("description", "weight", "child_preemption", "reclaim", "within_quota_preemption", "min_runtime_s",
                "allowed_priority_classes")


def export_config(session: Session, cluster_id: int) -> dict[str, Any]:
    """The live (provisioned) configuration as a document."""
    quotas = quota_service.list_quotas(session, cluster_id)
    names = {q.id: q.name for q in quotas}
    pools = pool_names(session, cluster_id)
    rows = quota_service.quota_resources(session, names)
    allowed = own_pools(session, names)
    quota_docs = []
    for q in quotas:
        doc = {"name": q.name, "parent": names.get(q.parent_id)}
        doc.update({f: getattr(q, f) for f in QUOTA_FIELDS})
        doc["resources"] = [{
            "pool": ANY_POOL if r.pool_id is None else pools.get(r.pool_id),
            "resource": r.resource,
            "guarantee": format_raw(r.guarantee, r.resource),
            "limit": "unlimited" if r.limit is None else format_raw(r.limit, r.resource),
            "lending_limit": None if r.lending_limit is None else format_raw(r.lending_limit, r.resource),
        } for r in rows[q.id]]
        doc["pools"] = allowed.get(q.id, [])
        quota_docs.append(doc)
    profile_docs = []
    for p in profile_service.list_profiles(session, cluster_id):
        profile_docs.append({
            "name": p.name, "description": p.description, "gpu": format_raw(p.gpu_milli, "gpu"),
            "cpu": format_raw(p.cpu_milli, "cpu"), "memory": format_raw(p.memory_bytes, "memory"),
            "pools": [{"pool": pool_name, "name": link.name}
                      for link, pool_name in profile_service.profile_links(session, p.id)],
            "policies": profile_service.profile_policies(session, p.id), "unordered": bool(p.unordered),
        })
    order = {}
    for pool_id, pool_name in sorted(pools.items()):
        linked = profile_service.pool_profile_order(session, pool_id)
        if linked:
            order[pool_name] = linked
    return {"quotas": quota_docs, "profiles": profile_docs, "pool_profile_order": order}


def _row(session: Session, cluster_id: int, kind: str) -> ResourceConfig | None:
    return session.scalar(select(ResourceConfig).where(ResourceConfig.cluster_id == cluster_id,
                                                       ResourceConfig.kind == kind))


class StaleDraft(Conflict):
    """The live configuration changed after the draft was saved."""

    def __init__(self, detail: str):
        super().__init__(detail)
        self.code = "draft_stale"


def is_stale(draft: ResourceConfig, cluster: Cluster) -> bool:
    """Whether the live configuration changed since the draft was saved (a draft of unknown origin counts as stale)."""
    return draft.based_on_version is None or draft.based_on_version != cluster.config_version


def status(session: Session, cluster: Cluster) -> dict[str, Any]:
    draft = _row(session, cluster.id, DRAFT)
    provisioned = _row(session, cluster.id, PROVISIONED)
    return {
        "cluster": cluster.name,
        "resource_management_enabled": cluster.resource_management_enabled,
        "version": cluster.config_version,
        "provisioned": export_config(session, cluster.id),
        "provisioned_at": provisioned.updated_at if provisioned else None,
        "provisioned_by": provisioned.updated_by if provisioned else None,
        "has_draft": draft is not None,
        "draft": draft.document if draft else None,
        "draft_updated_at": draft.updated_at if draft else None,
        "draft_updated_by": draft.updated_by if draft else None,
        "draft_based_on_version": draft.based_on_version if draft else None,
        "draft_stale": is_stale(draft, cluster) if draft else False,
    }


def get_draft(session: Session, cluster: Cluster) -> dict[str, Any]:
    """The draft, or a copy of the provisioned configuration to start editing from, with the configuration version
    it was taken from and whether the live configuration changed since."""
    draft = _row(session, cluster.id, DRAFT)
    if draft is None:
        return {**export_config(session, cluster.id), "based_on_version": cluster.config_version, "stale": False}
    return {**draft.document, "based_on_version": draft.based_on_version, "stale": is_stale(draft, cluster)}


def save_draft(session: Session, cluster: Cluster, document: dict[str, Any], who: str) -> ResourceConfig:
    """Save the draft as based on the live configuration as it is now: saving is the admin's word that the
    document is what the configuration should become, so it also clears a draft's staleness."""
    draft = _row(session, cluster.id, DRAFT)
    if draft is None:
        draft = ResourceConfig(cluster_id=cluster.id, kind=DRAFT, document=document, version=1, updated_by=who)
        session.add(draft)
    else:
        draft.document = document
        draft.version += 1
        draft.updated_by = who
    draft.based_on_version = cluster.config_version
    session.flush()
    return draft


def reset(session: Session, cluster_id: int) -> bool:
    """Drop the draft; returns whether there was one."""
    draft = _row(session, cluster_id, DRAFT)
    if draft is None:
        return False
    session.delete(draft)
    session.flush()
    return True


def set_enabled(session: Session, cluster: Cluster, enabled: bool) -> None:
    cluster.resource_management_enabled = enabled
    session.flush()


def _quota_input(doc: dict[str, Any]) -> quota_service.QuotaInput:
    return quota_service.QuotaInput(
        name=doc.get("name"), description=doc.get("description"), weight=doc.get("weight"),
        child_preemption=doc.get("child_preemption"), reclaim=doc.get("reclaim"),
        within_quota_preemption=doc.get("within_quota_preemption"), min_runtime_s=doc.get("min_runtime_s"),
        allowed_priority_classes=doc.get("allowed_priority_classes"),
        clear_allowed_priority_classes=doc.get("allowed_priority_classes") is None,
    )


def _resources(doc: dict[str, Any]) -> list[quota_service.ResourceInput]:
    return [quota_service.ResourceInput(resource=r.get("resource", ""), guarantee=r.get("guarantee", 0),
                                        limit=r.get("limit"), lending_limit=r.get("lending_limit"), pool=r.get("pool"))
            for r in doc.get("resources") or []]


def _prefixed(exc: ValidationFailed, prefix: str) -> list[FieldError]:
    return [FieldError(prefix + e.field, e.message) for e in exc.errors] or [FieldError(prefix.rstrip("."),
                                                                                         exc.detail)]


def _apply_quotas(session: Session, cluster_id: int, docs: list[dict[str, Any]], errors: list[FieldError]) -> None:
    existing = {q.name: q for q in quota_service.list_quotas(session, cluster_id)}
    wanted = {d.get("name") for d in docs}
    for name, quota in existing.items():
        if name not in wanted:
            active = quota_service.active_job_count(session, quota.id)
            if active:
                errors.append(FieldError("quotas", f"quota {name} is left out of the draft but has {active} queued "
                                                   f"or running jobs"))
    if errors:
        return
    for name, quota in existing.items():  # detach first so deleting a parent never trips over its children
        if name not in wanted:
            quota.parent_id = None
    session.flush()
    for name, quota in existing.items():
        if name not in wanted:
            session.delete(quota)
    session.flush()
    quotas: dict[str, Quota] = {}
    for i, doc in enumerate(docs):
        name = doc.get("name") or ""
        prefix = f"quotas.{i}."
        if name in quotas:
            errors.append(FieldError(prefix + "name", f"quota {name} is defined twice"))
            continue
        other = session.scalar(select(Quota).where(Quota.name == name, Quota.cluster_id != cluster_id))
        if other is not None:
            errors.append(FieldError(prefix + "name", f"a quota named {name} exists in another cluster"))
            continue
        data = _quota_input(doc)
        quota = existing.get(name) or Quota(cluster_id=cluster_id, name=name, weight=1.0, child_preemption=False,
                                            reclaim="never", within_quota_preemption="never", min_runtime_s=0)
        try:
            quota_service._check_scalars(session, data)
            rows = quota_service._resource_rows(session, cluster_id, _resources(doc), "resources")
            quota_service._apply(session, quota, data)
        except ValidationFailed as exc:
            errors.extend(_prefixed(exc, prefix))
            continue
        session.add(quota)
        session.flush()
        for old in session.scalars(select(QuotaResource).where(QuotaResource.quota_id == quota.id)).all():
            session.delete(old)
        session.flush()
        for row in rows:
            row.quota_id = quota.id
            session.add(row)
        try:
            set_pools(session, quota, list(doc.get("pools") or []))
        except ValidationFailed as exc:
            errors.extend(_prefixed(exc, prefix))
            continue
        quotas[name] = quota
    for i, doc in enumerate(docs):
        parent = doc.get("parent")
        quota = quotas.get(doc.get("name") or "")
        if quota is None:
            continue
        if parent and parent not in quotas:
            errors.append(FieldError(f"quotas.{i}.parent", f"parent quota {parent} is not in the draft"))
            continue
        quota.parent_id = quotas[parent].id if parent else None
    session.flush()
    if not errors:
        errors.extend(FieldError("quotas", e.message) for e in validate_tree(quota_specs(session, cluster_id)))


def _apply_profiles(session: Session, cluster_id: int, docs: list[dict[str, Any]],
                    order: dict[str, list[str]], errors: list[FieldError]) -> None:
    existing = {p.name: p for p in profile_service.list_profiles(session, cluster_id)}
    wanted = {d.get("name") for d in docs}
    for name, profile in existing.items():
        if name not in wanted:
            try:
                profile_service.delete_profile(session, profile)
            except Conflict as exc:
                errors.append(FieldError("profiles", exc.detail))
    for i, doc in enumerate(docs):
        prefix = f"profiles.{i}."
        name = doc.get("name") or ""
        links = [profile_service.PoolLink(pool=link.get("pool", ""), name=link.get("name"))
                 for link in doc.get("pools") or []]
        try:
            profile = existing.get(name)
            if profile is None:
                profile = profile_service.create_profile(session, cluster_id, name, doc.get("gpu"), doc.get("cpu"),
                                                         doc.get("memory"), doc.get("description"),
                                                         unordered=bool(doc.get("unordered")))
            else:
                profile_service.update_profile(session, profile, None, doc.get("gpu") or 0, doc.get("cpu") or 0,
                                               doc.get("memory") or 0, doc.get("description"),
                                               bool(doc.get("unordered")))
            profile_service.set_pools(session, profile, links)
            profile_service.set_policy_order(session, profile, doc.get("policies") or [])
        except (ValidationFailed, Conflict) as exc:
            errors.extend(_prefixed(exc, prefix) if isinstance(exc, ValidationFailed)
                          else [FieldError(prefix + "name", exc.detail)])
    if errors:
        return
    for pool_name, names in order.items():
        pool = session.scalar(select(Pool).where(Pool.cluster_id == cluster_id, Pool.name == pool_name))
        if pool is None:
            errors.append(FieldError(f"pool_profile_order.{pool_name}", f"no pool '{pool_name}' in this cluster"))
            continue
        try:
            profile_service.set_pool_profile_order(session, pool, names)
        except ValidationFailed as exc:
            errors.append(FieldError(f"pool_profile_order.{pool_name}", exc.errors[0].message))


def provision(session: Session, cluster: Cluster, who: str) -> dict[str, Any]:
    """Apply the draft as a whole or not at all (the request's transaction rolls back on any error)."""
    draft = _row(session, cluster.id, DRAFT)
    if draft is None:
        raise Conflict("there is no draft to provision: save one first (PUT .../resource-config/draft)")
    if is_stale(draft, cluster):
        based_on = "an unknown version" if draft.based_on_version is None else f"version {draft.based_on_version}"
        raise StaleDraft(f"the draft was saved from configuration {based_on}, but the live configuration of cluster "
                         f"{cluster.name} has changed since (now version {cluster.config_version}): provisioning "
                         f"the draft would undo those changes. Reset the draft (POST .../resource-config/reset) and "
                         f"edit again from the live configuration, or re-save it (PUT .../resource-config/draft) "
                         f"to provision it as it is")
    document = draft.document or {}
    start_version = cluster.config_version or 0
    errors: list[FieldError] = []
    _apply_quotas(session, cluster.id, list(document.get("quotas") or []), errors)
    if not errors:
        _apply_profiles(session, cluster.id, list(document.get("profiles") or []),
                        dict(document.get("pool_profile_order") or {}), errors)
    if errors:
        raise ValidationFailed("the draft cannot be provisioned: " + "; ".join(e.message for e in errors[:10]),
                               errors)
    applied = export_config(session, cluster.id)
    provisioned = _row(session, cluster.id, PROVISIONED)
    if provisioned is None:
        session.add(ResourceConfig(cluster_id=cluster.id, kind=PROVISIONED, document=applied, version=1,
                                   updated_by=who))
    else:
        provisioned.document = applied
        provisioned.version += 1
        provisioned.updated_by = who
    session.delete(draft)
    # The profile steps used above count a configuration change each (they also serve direct API edits); the
    # provision is one change, so the version moves on by one from where it was, whatever they counted.
    cluster.config_version = start_version + 1
    session.flush()
    return applied

