"""Request and response shapes of the inventory API (clusters, pools, nodes, devices).

Quantities travel as text that core/quantity.py reads and writes: "4", "0.5", "16Gi", "unlimited".
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from allotment.core.quantity import format_raw
from allotment.inventory.models import Device, Node


class PoolSummary(BaseModel):
    name: str
    device_model: str | None
    devices: int
    gpus: int = Field(description="usable GPUs: healthy devices on ready nodes")
    memory: str = Field(description="GPU memory of the pool's devices")
    cpu: str | None = Field(None, description="cores of the pool's nodes (None: the pool has no nodes)")
    host_memory: str | None = None


class ClusterOut(BaseModel):
    name: str
    backend: str
    status: str
    description: str | None = None
    resource_management_enabled: bool
    pools: list[PoolSummary]


class ClusterList(BaseModel):
    items: list[ClusterOut]
    total: int


class ClusterCreate(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    backend: str = "local"
    description: str | None = Field(None, max_length=255)


class PoolCreate(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    description: str | None = Field(None, max_length=255)
    devices: list[str | int] = Field(default_factory=list, description="device ids or NODE:INDEX")
    nodes: list[str] = Field(default_factory=list, description="whole nodes: their cpu, memory and devices")


class PoolUpdate(BaseModel):
    name: str | None = Field(None, min_length=1, max_length=64)
    description: str | None = Field(None, max_length=255)


class PoolAssign(BaseModel):
    devices: list[str | int] = Field(default_factory=list, description="device ids or NODE:INDEX")
    nodes: list[str] = Field(default_factory=list)


class DeviceIn(BaseModel):
    index: int = Field(ge=0)
    model: str = Field(min_length=1, max_length=64)
    memory: str | int = 0
    uuid: str | None = Field(None, max_length=64)
    health: str = "healthy"
    utilisation: float = 0.0


class NodeIn(BaseModel):
    name: str = Field(min_length=1, max_length=128)
    cpu: str | int = 0
    memory: str | int = 0
    status: str = "ready"
    health: str = "healthy"
    devices: list[DeviceIn] = Field(default_factory=list)


class NodeUpdate(BaseModel):
    status: str


class DeviceOut(BaseModel):
    id: int
    node: str
    index: int
    model: str
    memory: str
    uuid: str | None
    pool: str
    health: str
    utilisation: float
    job_id: int | None = Field(None, description="a job holding this device, if any")

    @classmethod
    def of(cls, device: Device, node: Node, pool_names: dict[int, str], busy: dict[int, int]) -> DeviceOut:
        return cls(id=device.id, node=node.name, index=device.index, model=device.model,
                   memory=format_raw(device.memory_bytes, "memory"), uuid=device.uuid,
                   pool=pool_names.get(device.pool_id, str(device.pool_id)), health=device.health,
                   utilisation=device.utilisation, job_id=busy.get(device.id))


class NodeOut(BaseModel):
    id: int
    name: str
    pool: str
    status: str
    health: str
    cpu: str
    memory: str
    last_seen_at: datetime | None
    devices: list[DeviceOut]
    utilisation: float = Field(description="mean utilisation of its devices, percent")


class NodeList(BaseModel):
    items: list[NodeOut]
    total: int


class DeviceList(BaseModel):
    items: list[DeviceOut]
    total: int


class PoolOut(PoolSummary):
    id: int
    is_default: bool
    description: str | None = None
    profile_order: list[str] = Field(default_factory=list, description="execution priority of linked profiles")
    device_list: list[DeviceOut] = Field(default_factory=list)


class PoolList(BaseModel):
    items: list[PoolOut]
    total: int
