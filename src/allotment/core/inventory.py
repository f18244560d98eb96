"""Inventory events of the scheduler state: a pool's devices or nodes change (update_pool, update_node, remove_node),
and jobs found already holding resources (add_running).

Part of state.StateBase (split out to keep each file readable). A node's change touches only that node's entries in
the pool's indexes (placement.NodePool.set_node / remove_node), then the pool's capacities in the usage tree.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from allotment.core.model import Device, Node, Pool, RunningJob
from allotment.core.placement import NodePool
from allotment.core.quantity import UNLIMITED_RAW, Quantity
from allotment.core.queues import RunningRec

if TYPE_CHECKING:
    from allotment.core.queues import Group
    from allotment.core.usage import UsageTree


def changed_nodes(old: Pool, new: Pool) -> tuple[list[tuple[Node, list[Device]]], list[str]] | None:
    """How ``new`` differs from ``old``, node by node, for a pool that lists its nodes in both: the nodes that
    joined or whose CPU, memory or devices changed (with their devices), and the names of the nodes that left; None
    when the change cannot be applied node by node (the pool starts or stops listing its nodes, or a device moved
    between nodes). Apply it with update_node and remove_node: each costs O(that node's devices), where update_pool
    compares the whole pool. Free amounts are compared too: pass both pools with the same convention."""
    if not old.nodes or not new.nodes:
        return None
    before: dict[str, list[Device]] = {}
    for d in old.devices:
        before.setdefault(d.node, []).append(d)
    after: dict[str, list[Device]] = {}
    for d in new.devices:
        after.setdefault(d.node, []).append(d)
    old_nodes = {n.name: n for n in old.nodes}
    changed = [(n, after.get(n.name, [])) for n in new.nodes
               if old_nodes.get(n.name) != n or before.get(n.name, []) != after.get(n.name, [])]
    new_names = {n.name for n in new.nodes}
    gone = [name for name in old_nodes if name not in new_names]
    if changed or gone:
        where = {d.id: d.node for n in (*gone, *(c.name for c, _ in changed)) for d in before.get(n, ())}
        for node, devices in changed:
            if any(where.get(d.id, node.name) != node.name for d in devices):
                return None
    return changed, gone


class InventoryEvents:
    _devices: dict[str, NodePool]
    _tree: UsageTree
    _pool_keys: dict[str, dict[str, int]]
    _any_keys: dict[str, int]
    _pool_order: tuple[str, ...]
    _groups: dict[tuple, Group]
    _running: dict[str, RunningRec]
    _queued: dict

    # Defined further up the chain of classes that makes admission.SchedulerState (state.StateBase, running_index,
    # wakeups); declared here for the checker and the compiler.
    def _mark_dirty(self, pool: str) -> None:
        raise NotImplementedError

    def _compile(self, pool: str, raw: dict[str, int]) -> tuple[tuple[int, int], ...]:
        raise NotImplementedError

    def _index_running(self, run: RunningRec) -> None:
        raise NotImplementedError

    def add_running(self, job: RunningJob, take_devices: bool = False) -> None:
        if job.id in self._running or job.id in self._queued:
            raise ValueError(f"job {job.id} is already known to the scheduler")
        q = self._tree.index.get(job.quota)
        if q is None:
            raise ValueError(f"running job {job.id}: quota {job.quota} does not exist")
        if job.pool not in self._devices:
            raise ValueError(f"running job {job.id}: pool {job.pool} does not exist")
        raw = {r: a.raw for r, a in job.requests.items() if a.raw}
        shares = tuple((d, a.raw) for d, a in job.devices)
        dp = self._devices[job.pool]
        if take_devices and shares:
            dp.take(shares)
        nodes: tuple[str, ...] = tuple(job.nodes)
        if not nodes and dp.tracked:  # the nodes of its devices
            nodes = tuple(dict.fromkeys(dp.node[d] for d, _ in shares if d in dp.node))
        ncpu, nmem = (raw.get("cpu", 0), raw.get("memory", 0)) if dp.tracked else (0, 0)
        if nodes and (ncpu or nmem):
            if job.node_count == 1 and len(nodes) > 1:  # requests are the job's total: charge them once
                dp.take_job((), nodes[:1], ncpu, nmem)
                nodes = nodes[:1]
            else:
                dp.take_job((), nodes, ncpu, nmem)
        if job.node_count > 1:
            raw = {r: a * job.node_count for r, a in raw.items()}
        req = self._compile(job.pool, raw)
        run = RunningRec(job.id, q, job.priority, job.started_at, job.pool, req, shares, dict(job.requests),
                         self._tree.plan(q, req), (q, job.pool), frozenset(k for k, _ in req), nodes, ncpu, nmem)
        self._tree.apply(q, run.req, 1)
        self._index_running(run)

    @staticmethod
    def _device_pool(pool: Pool) -> NodePool:
        nodes = [(n.name, n.cpu.raw, n.memory.raw) for n in pool.nodes] if pool.nodes else None
        return NodePool(pool.name, ((d.id, d.free.raw, d.capacity.raw, d.node) for d in pool.devices), nodes)

    def update_pool(self, pool: Pool) -> None:
        """The pool's devices, nodes or capacity changed. Only the nodes whose entries differ are updated (see
        update_node); a pool that starts or stops listing its nodes is rebuilt."""
        dp = self._devices.get(pool.name)
        if dp is None:
            raise ValueError(f"pool {pool.name} is not known to this state; build a new state to add pools")
        if dp.tracked != bool(pool.nodes):
            demand = dp.demand
            self._devices[pool.name] = dp = self._device_pool(pool)
            dp.demand = demand
            for run in self._run_by_pool(pool.name):  # CPU and memory on the new pool's nodes
                if dp.tracked and run.shares:
                    run.nodes = tuple(dict.fromkeys(dp.node[d] for d, _ in run.shares if d in dp.node))
                    run.ncpu, run.nmem = run.requests.get("cpu", Quantity(0)).raw, run.requests.get(
                        "memory", Quantity(0)).raw
                elif not dp.tracked:
                    run.nodes, run.ncpu, run.nmem = (), 0, 0
                dp.take_job((), run.nodes, run.ncpu, run.nmem)
        else:
            by_node: dict[str, list[tuple[str, int, int]]] = {}
            for d in pool.devices:
                by_node.setdefault(d.node, []).append((d.id, d.free.raw, d.capacity.raw))
            if pool.nodes:
                wanted = {n.name: (n.cpu.raw, n.memory.raw) for n in pool.nodes}
                unknown = [n for n in by_node if n not in wanted]
                if unknown:
                    raise ValueError(f"pool {pool.name}: devices on node {unknown[0]!r}, which the pool does not list")
            else:
                wanted = {n: (UNLIMITED_RAW, UNLIMITED_RAW) for n in by_node}
            for node in [n for n in dp.cpu_cap if n not in wanted]:
                dp.remove_node(node)
            free, cap = dp.free, dp.cap
            for node, (c, m) in wanted.items():
                devs = by_node.get(node, [])
                same = (node in dp.cpu_cap and dp.cpu_cap[node] == c and dp.mem_cap[node] == m
                        and len(devs) == len(dp.devs[node])
                        and all(free.get(d) == f and cap.get(d) == k for d, f, k in devs))
                if not same:
                    dp.set_node(node, c, m, devs)
        self._pool_changed(pool.name, pool)

    def update_node(self, pool: str, node: Node, devices: Sequence[Device] = ()) -> None:
        """Add one node to a pool that lists its nodes, or replace what is known of it (CPU, memory, devices with
        their free amounts as in a snapshot). Only this node's entries change."""
        dp = self._tracked_pool(pool)
        dp.set_node(node.name, node.cpu.raw, node.memory.raw,
                    [(d.id, d.free.raw, d.capacity.raw) for d in devices])
        self._pool_changed(pool)

    def remove_node(self, pool: str, node: str) -> None:
        """A node is drained or leaves the pool: nothing new is placed there; its jobs run on and end normally."""
        self._tracked_pool(pool).remove_node(node)
        self._pool_changed(pool)

    def _tracked_pool(self, pool: str) -> NodePool:
        dp = self._devices.get(pool)
        if dp is None:
            raise ValueError(f"pool {pool} is not known to this state; build a new state to add pools")
        if not dp.tracked:
            raise ValueError(f"pool {pool} does not list its nodes; update it with update_pool")
        return dp

    def _run_by_pool(self, pool: str) -> list[RunningRec]:
        return [r for r in self._running.values() if r.pool == pool]

    def _pool_changed(self, name: str, pool: Pool | None = None) -> None:
        dp = self._devices[name]
        tree, keys = self._tree, self._pool_keys[name]
        tree.set_capacity(keys["gpu"], dp.total_capacity)
        if dp.tracked:
            tree.set_capacity(keys["cpu"], dp.total_cpu)
            tree.set_capacity(keys["memory"], dp.total_memory)
        elif pool is not None:
            tree.set_capacity(keys["cpu"], pool.cpu.raw)
            tree.set_capacity(keys["memory"], pool.memory.raw)
        for r, ki in self._any_keys.items():
            tree.set_capacity(ki, sum(tree.cap[self._pool_keys[p][r]] for p in self._pool_order))
        for group in self._groups.values():
            group.ever = None  # "could it ever fit" depends on capacity
        self._mark_dirty(name)
