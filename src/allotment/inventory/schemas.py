"""Request and response shapes of the inventory API (clusters, pools, nodes, devices).

Quantities travel as text that core/quantity.py reads and writes: "4", "0.5", "16Gi", "unlimited".
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict

from allotment.api.fields import Amount, Description, Int, Name, Ref, Refs, SchemaRules, Text
from allotment.core import limits
from allotment.core.quantity import format_raw
from allotment.inventory.engine_schemas import NEW_CLUSTER_SCHEMAS
from allotment.inventory.engine_settings import EngineIn
from allotment.inventory.models import Device, Node


class GpuCount(BaseModel):
    count: int
    model: str


class MachineOut(BaseModel):
    """One row of Neu.ro's node-pool table: nodes of one shape and what each gives the pool."""

    nodes: int = Field(description="how many of the pool's nodes have this shape")
    cpu: str | None = Field(description="cores of each node (None: the node's cpu counts in another pool, which "
                                        "holds the node; this pool holds some of its devices)")
    memory: str | None = Field(description="host memory of each node (None: as cpu)")
    gpus: list[GpuCount] = Field(description="the pool's GPUs on each node, per model")


class PoolSummary(BaseModel):
    name: str
    is_default: bool = Field(False, description="the pool that holds every node and device not assigned elsewhere")
    device_model: str | None
    devices: int
    gpus: int = Field(description="usable GPUs: healthy devices on ready nodes")
    memory: str = Field(description="GPU memory of the pool's devices")
    cpu: str | None = Field(None, description="cores of the pool's nodes (None: the pool has no nodes)")
    host_memory: str | None = None
    machine_type: str | None = Field(None, description="the machines' type, as the cluster admin labelled it")
    preemptible: bool = Field(False, description="whether the machines may be taken back (spot), as labelled")
    min_nodes: int | None = Field(None, description="fewest nodes the pool may span (None: no bound)")
    max_nodes: int | None = Field(None, description="most nodes the pool may span (None: no bound)")
    nodes: int = Field(0, description="nodes the pool spans: it holds them or some of their devices")
    machines: list[MachineOut] = Field(default_factory=list, description="the pool's nodes by shape")


class ClusterOut(BaseModel):
    name: str
    backend: str
    status: str = Field(description="ready, degraded or unreachable: what the cluster's engine last said")
    status_error: str | None = Field(None, description="the engine's own error while degraded or unreachable")
    status_since: datetime | None = Field(None, description="when the status last changed")
    description: str | None = None
    region: str | None = Field(None, description="where the cluster runs, as labelled by a platform admin")
    zones: list[str] = Field(default_factory=list, description="its zones, as labelled")
    resource_management_enabled: bool
    engine: dict[str, Any] | None = Field(None, description=(
        "the engine's settings, to platform and cluster admins; each secret shows only as {\"set\": true|false}"))
    pools: list[PoolSummary]


class ClusterList(BaseModel):
    items: list[ClusterOut]
    total: int


class ClusterCreate(BaseModel):
    """Read loosely, so that engine_settings.merge can report every problem of the settings at once in its own
    words; the OpenAPI states the rules per backend (engine_schemas.py)."""

    model_config = ConfigDict(extra="forbid")

    name: Name("cluster")
    backend: Text(32) = Field("local", description="local, simulated, slurm or ray")
    description: Description | None = None
    engine: EngineIn | None = Field(None, description="the engine's settings (which ones depends on the backend)")

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema, handler):
        return {"oneOf": [handler(variant.__pydantic_core_schema__) for variant in NEW_CLUSTER_SCHEMAS],
                "description": "A cluster and its engine: one schema per backend, with that engine's settings."}


class ClusterUpdate(BaseModel):
    """Only what is given changes. In `engine`, a setting left out is kept and null resets it (a secret: clears it);
    a new backend starts from empty engine settings. Which settings go with which backend is ClusterCreate's."""

    model_config = ConfigDict(extra="forbid")

    backend: Literal["local", "simulated", "slurm", "ray"] | None = None
    description: Description | None = None
    region: Text(64) | None = Field(None, description="where the cluster runs; empty or null removes it")
    zones: list[Text(64)] | None = Field(None, max_length=64, description="its zones (replaces the list); "
                                                                        "empty or null removes them")
    engine: EngineIn | None = None


DeviceRef = Ref | Int(1, limits.MAX_ID)


class PoolCreate(BaseModel):
    name: Name("pool", spaces=True)
    description: Description | None = None
    devices: list[DeviceRef] = Field(default_factory=list, max_length=limits.MAX_TREE_ITEMS,
                                     description="device ids or NODE:INDEX")
    nodes: Refs = Field(default_factory=list, description="whole nodes: their cpu, memory and devices")


class PoolUpdate(BaseModel):
    """Only what is given changes; null clears machine_type, min_nodes or max_nodes."""

    model_config = ConfigDict(extra="forbid")

    name: Name("pool", spaces=True) | None = None
    description: Description | None = None
    machine_type: Text(64) | None = Field(None, description="the machines' type, only displayed")
    preemptible: Annotated[bool, Strict()] | None = Field(None, description="whether the machines are preemptible "
                                                                           "(spot), only displayed")
    min_nodes: Int(0, limits.MAX_INT32) | None = Field(None, description=(
        "fewest nodes the pool may span: moving nodes or devices out, or removing a node, below it is refused"))
    max_nodes: Int(0, limits.MAX_INT32) | None = Field(None, description=(
        "most nodes the pool may span: moving nodes or devices in beyond it is refused; not on the default pool"))


class PoolAssign(BaseModel):
    devices: list[DeviceRef] = Field(default_factory=list, max_length=limits.MAX_TREE_ITEMS,
                                     description="device ids or NODE:INDEX")
    nodes: Refs = Field(default_factory=list)


class DeviceIn(BaseModel):
    index: Int(0, limits.MAX_DEVICE_INDEX)
    model: Text(64) = Field(min_length=1)
    memory: Amount = 0
    uuid: Text(64) | None = None
    health: Text(32) = "healthy"
    # The service names the 0-100 rule together with the report's other problems.
    utilisation: Annotated[float, Strict(), Field(ge=-1e6, le=1e6, allow_inf_nan=False),
                           SchemaRules((("minimum", 0), ("maximum", 100)))] = 0.0


class NodeIn(BaseModel):
    name: Name("node", 128, spaces=True)
    cpu: Amount = 0
    memory: Amount = 0
    status: Text(32) = "ready"
    health: Text(32) = "healthy"
    devices: list[DeviceIn] = Field(default_factory=list, max_length=limits.MAX_LIST_ITEMS)


class NodeUpdate(BaseModel):
    status: Text(32)


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
    description: str | None = None
    profile_order: list[str] = Field(default_factory=list, description="execution priority of linked profiles")
    device_list: list[DeviceOut] = Field(default_factory=list)


class PoolList(BaseModel):
    items: list[PoolOut]
    total: int
