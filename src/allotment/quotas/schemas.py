"""Request and response shapes of the quotas API: quotas, scale, bindings, profiles, priority
classes and the draft configuration. Quantities are text or numbers ("48", "0.5", "16Gi", "unlimited")."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from allotment.api.fields import (
    Amount,
    Description,
    KeyRules,
    Name,
    Priority,
    Ref,
    Refs,
    Seconds,
    Text,
    Weight,
)
from allotment.core import limits

POOLS_HELP = ("DKube: the only pools jobs of this quota and its descendants may be placed in; empty or null = every "
              "pool of the cluster, pools created later included")


class ResourceIn(BaseModel):
    resource: Text(16) = Field(description="gpu, cpu or memory")
    pool: Ref | None = Field(None, description="a pool of the quota's cluster; omitted or '*' = all pools")
    guarantee: Amount = 0
    limit: Amount | None = Field(None, description="at least the guarantee; omitted or 'unlimited' = no limit")
    lending_limit: Amount | None = Field(None, description="how much unused guarantee siblings may borrow")


class ResourcePatch(BaseModel):
    """A change of one entry (pool, resource) of a quota: only the fields sent change."""

    model_config = ConfigDict(extra="forbid")

    resource: Text(16) = Field(description="gpu, cpu or memory")
    pool: Ref | None = Field(None, description="a pool of the quota's cluster, or '*' for the all-pools entry; "
                                               "omitted: the quota's only entry for the resource (refused when it "
                                               "has several; a new all-pools entry when it has none)")
    guarantee: Amount = Field(None, description="omitted: unchanged (0 for a new entry); not unlimited")
    limit: Amount | None = Field(None, description="omitted: unchanged (unlimited for a new entry); null or "
                                                   "'unlimited' = no limit")
    lending_limit: Amount | None = Field(None, description="omitted: unchanged; null = all of the guarantee may "
                                                           "be lent")
    remove: StrictBool = Field(False, description="delete the entry (then send no amounts)")


class ResourceOut(BaseModel):
    resource: str
    pool: str
    guarantee: str
    limit: str
    lending_limit: str | None
    in_use: str = Field(description="held by admitted and running jobs of the quota and its descendants")


class QuotaCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name("quota", spaces=True)
    parent: Ref | None = None
    description: Description | None = None
    weight: Weight = 1.0
    child_preemption: StrictBool = False
    reclaim: Text(32) = "never"
    within_quota_preemption: Text(32) = "never"
    min_runtime_s: Seconds = 0
    allowed_priority_classes: Refs | None = None
    resources: list[ResourceIn] = Field(default_factory=list, max_length=limits.MAX_LIST_ITEMS)
    pools: Refs | None = Field(None, description=POOLS_HELP)


class QuotaUpdate(BaseModel):
    """Send only what changes (absent = unchanged). `parent: null` makes the quota a root; each item of `resources`
    changes only the entry it names and only the amounts it sends (entries not listed are kept)."""

    model_config = ConfigDict(extra="forbid")

    name: Name("quota", spaces=True) | None = None
    parent: Ref | None = None
    description: Description | None = None
    weight: Weight | None = None
    child_preemption: StrictBool | None = None
    reclaim: Text(32) | None = None
    within_quota_preemption: Text(32) | None = None
    min_runtime_s: Seconds | None = None
    allowed_priority_classes: Refs | None = None
    resources: list[ResourcePatch] | None = Field(None, max_length=limits.MAX_LIST_ITEMS,
                                                  description="entries to change, add or remove")
    pools: Refs | None = Field(None, description=POOLS_HELP + " (send [] or null to allow every pool again)")


class BindingOut(BaseModel):
    kind: str
    name: str | None
    created_at: datetime


class QuotaOut(BaseModel):
    id: int
    name: str
    cluster: str
    parent: str | None
    children: list[str]
    description: str | None
    weight: float
    child_preemption: bool
    reclaim: str
    within_quota_preemption: str
    min_runtime_s: int
    allowed_priority_classes: list[str] | None
    resources: list[ResourceOut]
    pools: list[str] = Field(default_factory=list, description="the quota's own pool list ([] = every pool)")
    usable_pools: list[str] | None = Field(None, description="where its jobs may run, with its ancestors' lists "
                                                              "applied; null = every pool")
    bindings: list[BindingOut] | None = None
    can_submit: StrictBool | None = None


class QuotaList(BaseModel):
    items: list[QuotaOut]
    total: int


class ScaleChangeIn(BaseModel):
    quota: Ref
    resource: Text(16) = "gpu"
    pool: Ref | None = Field(None, description="a pool, or '*' for the all-pools entry; omitted: the quota's only "
                                               "entry for the resource (refused when it has several or none)")
    guarantee: Amount
    limit: Amount | None = Field(None, description="omitted: follows the guarantee if they were equal, else kept")


class ScaleIn(BaseModel):
    changes: list[ScaleChangeIn] = Field(max_length=limits.MAX_TREE_ITEMS)


class PoolLinkIn(BaseModel):
    pool: Ref
    name: Text(limits.MAX_NAME) | None = Field(None, description="the connection's name")


class PoolLinkOut(BaseModel):
    pool: str
    name: str | None
    position: int


UNORDERED_HELP = ("true: the pools are an unordered set (several GPU models) and a job takes the best fit across "
                  "them; false: they are tried in order, a later pool only when the earlier ones cannot take the job")


class ProfileCreate(BaseModel):
    name: Name("profile", spaces=True)
    description: Description | None = None
    gpu: Amount | None = None
    cpu: Amount | None = None
    memory: Amount | None = None
    pools: list[PoolLinkIn] = Field(default_factory=list, max_length=limits.MAX_LIST_ITEMS, description="pools to try, in order")
    unordered: StrictBool = Field(False, description=UNORDERED_HELP)


class ProfileUpdate(BaseModel):
    name: Name("profile", spaces=True) | None = None
    description: Description | None = None
    gpu: Amount | None = None
    cpu: Amount | None = None
    memory: Amount | None = None
    unordered: StrictBool | None = Field(None, description=UNORDERED_HELP)


class ProfileOut(BaseModel):
    id: int
    name: str
    cluster: str
    description: str | None
    gpu: str
    cpu: str
    memory: str
    pools: list[PoolLinkOut]
    unordered: bool = Field(False, description=UNORDERED_HELP)
    policies: list[str] = Field(description="quotas using the profile, in queuing priority order")
    queued_jobs: int
    running_jobs: int


class ProfileList(BaseModel):
    items: list[ProfileOut]
    total: int


class NameOrder(BaseModel):
    names: Refs


class PriorityClassIn(BaseModel):
    name: Name("priority class", 32, spaces=True)
    value: Priority
    description: Description | None = None
    is_default: StrictBool = False


class PriorityClassUpdate(BaseModel):
    value: Priority | None = None
    description: Description | None = None
    is_default: StrictBool | None = None


class PriorityClassOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    name: str
    value: int
    description: str | None
    is_default: bool


class PriorityClassList(BaseModel):
    items: list[PriorityClassOut]
    total: int


class QuotaDoc(BaseModel):
    name: Name("quota", spaces=True)
    parent: Ref | None = None
    description: Description | None = None
    weight: Weight = 1.0
    child_preemption: StrictBool = False
    reclaim: Text(32) = "never"
    within_quota_preemption: Text(32) = "never"
    min_runtime_s: Seconds = 0
    allowed_priority_classes: Refs | None = None
    resources: list[ResourceIn] = Field(default_factory=list, max_length=limits.MAX_LIST_ITEMS)
    pools: Refs = Field(default_factory=list, description=POOLS_HELP)


class ProfileDoc(BaseModel):
    name: Name("profile", spaces=True)
    description: Description | None = None
    gpu: Amount | None = None
    cpu: Amount | None = None
    memory: Amount | None = None
    pools: list[PoolLinkIn] = Field(default_factory=list, max_length=limits.MAX_LIST_ITEMS)
    policies: Refs = Field(default_factory=list)
    unordered: StrictBool = Field(False, description=UNORDERED_HELP)


class ConfigDocument(BaseModel):
    quotas: list[QuotaDoc] = Field(default_factory=list, max_length=limits.MAX_TREE_ITEMS)
    profiles: list[ProfileDoc] = Field(default_factory=list, max_length=limits.MAX_TREE_ITEMS)
    # Keyed by pool name (the draft names pools by name only), stated as propertyNames (KeyRules).
    pool_profile_order: Annotated[dict[Name("pool", spaces=True), Refs], KeyRules()] = Field(
        default_factory=dict, max_length=limits.MAX_LIST_ITEMS)


class DraftOut(ConfigDocument):
    """The draft as GET returns it; a saved draft may send these two fields back, they are ignored."""

    based_on_version: int | None = Field(description="the cluster's configuration version the draft was taken from")
    stale: bool = Field(description="the live configuration changed since: provision refuses until reset or re-saved")


class ConfigStatus(BaseModel):
    cluster: str
    resource_management_enabled: bool
    version: int
    provisioned: dict[str, Any]
    provisioned_at: datetime | None
    provisioned_by: str | None
    has_draft: bool
    draft: dict[str, Any] | None
    draft_updated_at: datetime | None
    draft_updated_by: str | None
    draft_based_on_version: int | None = None
    draft_stale: bool = False


class SwitchIn(BaseModel):
    enabled: bool
