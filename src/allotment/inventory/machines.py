"""The machines of each pool (Neu.ro's node-pool table): how many nodes a pool spans and their shapes.

A pool spans a node when it holds the node (its cpu and memory count there) or holds some of its devices (DKube
assigns single devices too). The pool's node count is what its min_nodes and max_nodes bound. A machine shape is
what one such node gives the pool: its cpu and memory when the pool holds the node (None when they count in
another pool) and how many of its GPUs of each model the pool holds. Nodes of the same shape are counted together,
so a pool of identical machines reads as one row, as in Neu.ro.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from allotment.inventory.models import Device, Node


@dataclass(frozen=True)
class MachineShape:
    cpu_milli: int | None
    memory_bytes: int | None
    gpus: tuple[tuple[str, int], ...]  # (model, count) per GPU model, by model


@dataclass(frozen=True)
class Machines:
    shape: MachineShape
    nodes: int


@dataclass
class Layout:
    """Where a cluster's nodes and devices are: node id -> (pool id, node); devices as (pool id, node id, model)."""

    nodes: dict[int, Node]
    node_pools: dict[int, int]
    devices: dict[int, tuple[int, int, str]]

    def spans(self) -> set[tuple[int, int]]:
        """(pool id, node id) for every node a pool spans."""
        return ({(pool_id, node_id) for node_id, pool_id in self.node_pools.items()}
                | {(pool_id, node_id) for pool_id, node_id, _ in self.devices.values()})

    def counts(self) -> dict[int, int]:
        """pool id -> how many nodes the pool spans. Pools spanning none are left out."""
        return dict(Counter(pool_id for pool_id, _ in self.spans()))

    def moved(self, devices: dict[int, int] | None = None, nodes: dict[int, int] | None = None,
              removed: set[int] | None = None) -> Layout:
        """The layout after moving devices and nodes (id -> pool id) and removing nodes with their devices."""
        removed = removed or set()
        node_pools = {n: p for n, p in (self.node_pools | (nodes or {})).items() if n not in removed}
        moved = {d: (p, n, m) for d, (p, n, m) in self.devices.items() if n not in removed}
        for device_id, pool_id in (devices or {}).items():
            if device_id in moved:
                _, node_id, model = moved[device_id]
                moved[device_id] = (pool_id, node_id, model)
        return Layout(self.nodes, node_pools, moved)


def layout(session: Session, cluster_id: int) -> Layout:
    nodes = {n.id: n for n in session.scalars(select(Node).where(Node.cluster_id == cluster_id)).all()}
    devices = {r[0]: (r[1], r[2], r[3]) for r in session.execute(
        select(Device.id, Device.pool_id, Device.node_id, Device.model).join(Node, Node.id == Device.node_id)
        .where(Node.cluster_id == cluster_id)).all()}
    return Layout(nodes, {n.id: n.pool_id for n in nodes.values()}, devices)


def node_counts(session: Session, cluster_id: int) -> dict[int, int]:
    """pool id -> how many nodes the pool spans (holds, or holds devices of). Pools spanning none are left out."""
    return layout(session, cluster_id).counts()


def _order(item: tuple[MachineShape, int]) -> tuple:
    shape, nodes = item
    return (-nodes, shape.cpu_milli is None, shape.cpu_milli or 0, shape.memory_bytes is None,
            shape.memory_bytes or 0, shape.gpus)


def pool_machines(session: Session, cluster_id: int) -> dict[int, list[Machines]]:
    """pool id -> its machine shapes with how many nodes have each, the most common first."""
    found = layout(session, cluster_id)
    gpus: dict[tuple[int, int], Counter[str]] = {}
    for pool_id, node_id, model in found.devices.values():
        gpus.setdefault((pool_id, node_id), Counter())[model] += 1
    shapes: dict[int, Counter[MachineShape]] = {}
    for pool_id, node_id in found.spans():
        node = found.nodes[node_id]
        held = found.node_pools[node_id] == pool_id
        shape = MachineShape(node.cpu_milli if held else None, node.memory_bytes if held else None,
                             tuple(sorted(gpus.get((pool_id, node_id), Counter()).items())))
        shapes.setdefault(pool_id, Counter())[shape] += 1
    return {pool_id: [Machines(shape, n) for shape, n in sorted(counted.items(), key=_order)]
            for pool_id, counted in shapes.items()}
