"""Request and response shapes of the configuration vaults, effective configuration and hide-list APIs."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StringConstraints

from allotment.api.fields import Int, Name, Ref, SchemaRules
from allotment.core import hide_list

Format = Literal["json", "yaml", "hocon"]
Position = Int(-1000, 1000)
VaultText = str  # checked by the service: its parser's line and column, and the machine keys


class VaultCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name("vault")
    format: Format = "hocon"
    content: VaultText = ""
    enabled: StrictBool = False
    position: Position = Field(0, description="merge order among vaults of the same kind: lower first, later wins")
    user: Ref | None = Field(None, description="the user it belongs to (admins); none of the three: the caller")
    service_account: Ref | None = Field(None, description="the service account it belongs to (admins)")
    group: Ref | None = Field(None, description="the group it applies to: an administrator vault (admins)")


class VaultUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name("vault") | None = None
    format: Format | None = None
    content: VaultText | None = None
    enabled: StrictBool | None = None
    position: Position | None = None


class VaultOut(BaseModel):
    id: int
    name: str
    owner_kind: str = Field(description="user, service_account or group")
    owner: str
    format: str
    content: str
    enabled: bool
    position: int
    created_at: datetime
    updated_at: datetime = Field(description="last update of its content or settings")
    updated_by: str | None


class VaultList(BaseModel):
    items: list[VaultOut]
    total: int


class EffectiveKey(BaseModel):
    key: str = Field(description="dotted path of the leaf")
    value: Any
    source: str = Field(description="the vault it came from")


class EffectiveOut(BaseModel):
    user: str
    vaults: list[str] = Field(description="the enabled vaults merged, in order (later override earlier)")
    configuration: dict[str, Any]
    keys: list[EffectiveKey]
    updated_at: datetime | None


# Checked by the service (core/hide_list.py names each bad one by its position); the schema states the rule.
HideName = Annotated[str, StringConstraints(max_length=4096), SchemaRules((
    ("pattern", f"^{hide_list.NAME.pattern}$"), ("minLength", 1), ("maxLength", hide_list.MAX_NAME)))]


class HideListIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    names: list[HideName] = Field(max_length=hide_list.MAX_NAMES)


class HideListOut(BaseModel):
    platform: list[str] = Field(description="the platform's list (admins set it)")
    user: str | None = Field(None, description="whose additions `own` are")
    own: list[str] = Field(default_factory=list, description="the user's additions")
    effective: list[str] = Field(description="every name hidden for that user")
    defaults: list[str] = Field(description="the platform's list until admins change it")
