"""Placement on nodes: a job's GPUs, CPU and memory on one node, or a gang on N distinct nodes, never more than a node
has. See the contract at the top of admission.py for the rules and the score; this module implements them.

``NodePool`` is a DevicePool (the GPU indexes of devices.py) that also knows each node's allocatable CPU and memory
and what the jobs placed there use. A pool is *tracked* when it lists its nodes (model.Pool.nodes): then every job
is placed through ``place_job`` (node CPU and memory enforced, CPU-only jobs placed on a node too). An untracked pool
keeps the device-only fast path (DevicePool.place) for single-node jobs; gangs there are placed by ``place_job`` with
unlimited node CPU and memory.

Search (exact, bounded in the common case): feasible nodes are visited in best-fit order of the GPU indexes (the
tightest free share, or the node with the fewest completely free devices that suffice; CPU-only jobs: nodes without
free GPU first) and the first CANDIDATES of them are scored; the lowest score wins. In a tracked pool every index
entry is also filed under its node's whole free cores and free GiB (fit_index.FitIndex), so a search never visits a
node short of the job's cores or memory: near saturation, when most nodes are, it does not scan them. Only nodes that
cannot take the job are skipped, so a job waits only when no node can take it. A shape that failed stays failed
until capacity comes back (``version``), so a full pool answers repeated attempts in O(1).
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterable, Iterator, Sequence
from typing import Final

from allotment.core.demand import FRAC_BIN, Demand, Tables
from allotment.core.devices import WHOLE, DevicePool, Shares
from allotment.core.fit_index import FitIndex
from allotment.core.node_shortfall import NodeShortfall
from allotment.core.quantity import UNLIMITED_RAW, format_raw

# Final: compiled (mypyc), a C static, where an imported name is a globals lookup on every call
bisect_left: Final = bisect.bisect_left
bisect_right: Final = bisect.bisect_right
insort: Final = bisect.insort
islice: Final = itertools.islice

CANDIDATES = 4  # feasible single-node placements scored per decision
SCAN_BUDGET = 64  # entries a single-node search examines before it settles for the candidates it has
STRANDED_WEIGHT = 2  # score weight of the GPU a placement strands (its node's CPU or memory left cannot feed it)
TIGHT_WEIGHT = 0.01  # score weight of the GPU left free on the node: among equals, the fuller node (best fit)

Nodes = tuple[str, ...]


class NodePool(NodeShortfall):
    def __init__(self, name: str, devices: Iterable[tuple[str, int, int, str]],
                 nodes: Iterable[tuple[str, int, int]] | None = None) -> None:
        """``nodes``: (name, cpu raw, memory raw) of each node (None: untracked, node CPU and memory unlimited)."""
        super().__init__(name, ())
        self.tracked = nodes is not None
        self.cpu_cap: dict[str, int] = {}  # active nodes (listed, not drained) -> allocatable CPU
        self.mem_cap: dict[str, int] = {}
        self._cpu_total = self._mem_total = 0  # sums of cpu_cap and mem_cap, kept as nodes change
        self.cpu_used: dict[str, int] = {}  # node -> CPU of the jobs placed there (kept while a node is away)
        self.mem_used: dict[str, int] = {}
        self.gpu_cap: dict[str, int] = {}  # node -> milli-GPU of its devices
        self.gpu_free: dict[str, int] = {}  # node -> free milli-GPU (tracked pools)
        self.devs: dict[str, dict[str, None]] = {}  # node -> its devices
        # CPU-only jobs' index (tracked pools): active nodes by (has free GPU, whole free cores), each with the
        # sorted distinct core counts, and where each node is filed.
        self._by_cores: tuple[dict[int, dict[str, None]], dict[int, dict[str, None]]] = ({}, {})
        self._core_levels: tuple[list[int], list[int]] = ([], [])
        self._filed: dict[str, tuple[int, int]] = {}
        # GPU jobs' index (tracked pools), see fit_index.py: nodes by completely free devices and devices by their
        # free share below one GPU, each under its node's whole free cores and free GiB (``_level``).
        self._level: dict[str, tuple[int, int]] = {}  # node -> (whole free cores, free GiB)
        self._wfit = FitIndex()
        self._cfit = FitIndex()  # CPU-only jobs: active nodes by whether they have free GPU (0 or 1), at their levels
        self._sfit = FitIndex()
        self.one: dict[str, Nodes] = {}  # node -> (node,): built once, shared by every Admit that names it
        self.demand = Demand()  # the state shares one across its pools
        self.version = 0  # bumped whenever capacity comes back or nodes change
        self._shapes: dict[tuple[int, int, int, int], int] | None = None  # see _node_shapes
        self._failed: dict[tuple, None] = {}  # shapes that did not fit at _failed_version
        self._failed_version = 0
        # The last choose_job() answer, for the place_job() that follows it (a best-fit job's pools are scored first,
        # then the best is placed): (shape, version, total_free, demand.jobs, answer). Cleared by every change
        # that does not lower total_free or bump version (see _memo).
        self._chosen: tuple | None = None
        # The nodes a wait names the closest from, per kind of request (CPU only, a share, whole GPUs), with their
        # free GPU, CPU and memory: (total_free, version, {kind: [(node, gpu, cpu, memory)]}); cleared with _chosen.
        # Waits come in runs (near saturation most decisions are waits), and the list depends on the kind only.
        self._near: tuple[int, int, dict[int, list[tuple[str, int, int, int]]]] | None = None
        self._deferred = False  # inside take_job/release_job: the GPU indexes are filed once, at the end (_refile)
        devices = list(devices)
        if nodes is not None:
            for node, cpu, mem in nodes:
                if node in self.cpu_cap:
                    raise ValueError(f"pool {name}: node {node} listed twice")
                self._add_node(node, cpu, mem)
            for dev, _, _, node in devices:
                if node not in self.cpu_cap:
                    raise ValueError(f"pool {name}: device {dev} is on node {node!r}, which the pool does not list")
        for dev, free, cap, node in devices:
            if node not in self.devs:
                self._add_node(node, UNLIMITED_RAW, UNLIMITED_RAW)  # untracked: nodes are device labels
            self._add_device(dev, free, cap, node)

    # -- inventory --------------------------------------------------------------------------------------------------
    def _add_node(self, node: str, cpu: int, mem: int) -> None:
        self._shapes = None
        self._set_caps(node, cpu, mem)
        self.cpu_used.setdefault(node, 0)
        self.mem_used.setdefault(node, 0)
        self.devs.setdefault(node, {})
        self.gpu_cap.setdefault(node, 0)
        self.gpu_free.setdefault(node, 0)
        self.one[node] = (node,) if node else ()  # devices without a node label name none
        self._refile(node)

    def _refile(self, node: str, changed: Shares | None = None) -> None:
        """Keep the node's entries in the CPU-only index and its levels in the GPU index current (after its CPU,
        memory or free GPU changed). ``changed``: the shares taken or given back by take_job or release_job, whose
        devices' GPU index entries _set_free and _move_node left to this call."""
        if not self.tracked:
            return
        old = self._filed.get(node)
        ccap = self.cpu_cap.get(node)
        if ccap is None:  # drained or removed (its devices are gone from the GPU index already)
            new = None
            self._level.pop(node, None)
            self._cfit.drop(node)
        else:
            level = min(max(ccap - self.cpu_used[node], 0), UNLIMITED_RAW) // 1000
            new = (1 if self.gpu_free[node] else 0, level)
            levels = (level, min(max(self.mem_cap[node] - self.mem_used[node], 0), UNLIMITED_RAW) >> 30)
            self._cfit.put(node, new[0], *levels)
            moved = self._level.get(node) != levels
            if changed is not None:
                self._level[node] = levels
                if moved or changed:
                    whole = self._whole.get(node)
                    if whole:
                        self._wfit.put(node, len(whole), *levels)
                    else:
                        self._wfit.drop(node)
                sfit, free = self._sfit, self.free
                filed = sfit.filed
                if moved:  # every device with a share free moves to the node's new levels
                    for dev in self.devs[node]:
                        f = free[dev]
                        if 0 < f < WHOLE:
                            sfit.put(dev, f, *levels)
                        elif dev in filed:
                            sfit.drop(dev)
                else:  # only the devices whose free share changed
                    node_of = self.node
                    for dev, _ in changed:
                        if node_of.get(dev) == node:
                            f = free[dev]
                            if 0 < f < WHOLE:
                                sfit.put(dev, f, *levels)
                            elif dev in filed:
                                sfit.drop(dev)
            elif moved:
                self._level[node] = levels
                at = self._wfit.where(node)
                if at is not None:
                    self._wfit.put(node, at[0], *levels)
                sfit = self._sfit
                for dev in self.devs[node]:
                    at = sfit.where(dev)
                    if at is not None:
                        sfit.put(dev, at[0], *levels)
        if new == old:
            return
        if old is not None:
            cls, level = old
            bucket = self._by_cores[cls][level]
            del bucket[node]
            if not bucket:
                del self._by_cores[cls][level]
                core_levels = self._core_levels[cls]
                del core_levels[bisect_left(core_levels, level)]
            del self._filed[node]
        if new is not None:
            cls, level = new
            new_bucket = self._by_cores[cls].get(level)
            if new_bucket is None:
                new_bucket = self._by_cores[cls][level] = {}
                insort(self._core_levels[cls], level)
            new_bucket[node] = None
            self._filed[node] = new

    def _add_device(self, dev: str, free: int, cap: int, node: str) -> None:
        self._shapes = None
        super()._add_device(dev, free, cap, node)
        self.devs[node][dev] = None
        self.gpu_cap[node] += cap

    def _remove_device(self, dev: str) -> None:
        self._shapes = None
        node, cap = self.node[dev], self.cap[dev]
        super()._remove_device(dev)
        del self.devs[node][dev]
        self.gpu_cap[node] -= cap

    def _set_free(self, dev: str, new: int) -> None:
        old = self.free[dev]
        DevicePool._set_free(self, dev, new)
        self._chosen = self._near = None
        if self.tracked and new != old:
            node = self.node[dev]
            if self._deferred:
                self.gpu_free[node] += new - old
                return
            if 0 < new < WHOLE:
                self._sfit.put(dev, new, *self._level[node])
            elif 0 < old < WHOLE:
                self._sfit.drop(dev)
            before = self.gpu_free[node]
            left = self.gpu_free[node] = before + new - old
            if not left or not before:
                self._refile(node)

    def _move_node(self, node: str, before: int, after: int) -> None:
        DevicePool._move_node(self, node, before, after)
        if self.tracked and not self._deferred:
            if after:
                self._wfit.put(node, after, *self._level[node])
            else:
                self._wfit.drop(node)

    def set_node(self, node: str, cpu: int, mem: int, devices: Sequence[tuple[str, int, int]]) -> None:
        """Add a node or replace what is known of it: (device id, free raw, capacity raw) of its devices. Only this
        node's entries change. CPU and memory its running jobs use stay charged to it."""
        if node not in self.cpu_cap:
            self._add_node(node, cpu, mem)
        self._set_caps(node, cpu, mem)
        self._refile(node)
        wanted = {d: (free, cap) for d, free, cap in devices}
        for dev in list(self.devs.get(node, ())):
            if dev not in wanted or self.cap[dev] != wanted[dev][1]:
                self._remove_device(dev)
        for dev, (free, cap) in wanted.items():
            other = self.node.get(dev)
            if other is not None and other != node:
                raise ValueError(f"pool {self.name}: device {dev} is already on node {other}")
            if other is None:
                self._add_device(dev, free, cap, node)
            else:
                if not 0 <= free <= cap:
                    raise ValueError(f"pool {self.name}: device {dev} free {format_raw(free, 'gpu')} outside "
                                     f"0..capacity")
                self._set_free(dev, free)
        self._changed()

    def remove_node(self, node: str) -> None:
        """The node leaves the pool or is drained: nothing new is placed on it; its jobs keep running (what they
        give back when they end is dropped)."""
        if node not in self.cpu_cap:
            return
        for dev in list(self.devs[node]):
            self._remove_device(dev)
        self._cpu_total -= self.cpu_cap.pop(node)
        self._mem_total -= self.mem_cap.pop(node)
        self._refile(node)
        self._changed()

    def _changed(self) -> None:
        self.version += 1
        self._shapes = None
        self._chosen = self._near = None

    def _set_caps(self, node: str, cpu: int, mem: int) -> None:
        self._cpu_total += cpu - self.cpu_cap.get(node, 0)
        self._mem_total += mem - self.mem_cap.get(node, 0)
        self.cpu_cap[node], self.mem_cap[node] = cpu, mem

    @property
    def total_cpu(self) -> int:
        return min(self._cpu_total, UNLIMITED_RAW)

    @property
    def total_memory(self) -> int:
        return min(self._mem_total, UNLIMITED_RAW)

    # -- taking and giving back ---------------------------------------------------------------------------------------
    def take_job(self, shares: Shares, nodes: Nodes, cpu: int, mem: int) -> None:
        self._chosen = self._near = None
        if not self.tracked:
            if shares:
                self.take(shares)
            if cpu or mem:
                cu, mu = self.cpu_used, self.mem_used
                for node in nodes:
                    cu[node] = cu.get(node, 0) + cpu
                    mu[node] = mu.get(node, 0) + mem
            return
        touched = self._touched(shares, nodes)
        self._deferred = True
        try:
            if shares:
                self.take(shares)
            if cpu or mem:
                cu, mu = self.cpu_used, self.mem_used
                for node in nodes:
                    cu[node] = cu.get(node, 0) + cpu
                    mu[node] = mu.get(node, 0) + mem
        finally:
            self._deferred = False
            for node in touched:
                self._refile(node, shares)

    def release_job(self, shares: Shares, nodes: Nodes, cpu: int, mem: int) -> None:
        self._chosen = self._near = None
        if not self.tracked:
            if shares:
                self.release(shares)
            if cpu or mem:
                cu, mu = self.cpu_used, self.mem_used
                for node in nodes:
                    cu[node] = max(cu.get(node, 0) - cpu, 0)
                    mu[node] = max(mu.get(node, 0) - mem, 0)
            self.version += 1
            return
        touched = self._touched(shares, nodes)
        self._deferred = True
        try:
            if shares:
                DevicePool.release(self, shares)
            if cpu or mem:
                cu, mu = self.cpu_used, self.mem_used
                for node in nodes:
                    cu[node] = max(cu.get(node, 0) - cpu, 0)
                    mu[node] = max(mu.get(node, 0) - mem, 0)
        finally:
            self._deferred = False
            for node in touched:
                self._refile(node, shares)
        self.version += 1

    def _touched(self, shares: Shares, nodes: Nodes) -> Nodes:
        """The nodes whose index entries a take or release of ``shares`` with CPU and memory on ``nodes`` changes."""
        node_of = self.node
        for dev, _ in shares:
            node = node_of.get(dev)
            if node is not None and node not in nodes:
                nodes = (*nodes, node)
        return nodes

    def release(self, shares: Sequence[tuple[str, int]]) -> None:
        if self.tracked:
            DevicePool.release(self, shares)
        elif shares:  # untracked: _set_free and _move_node add nothing here but dropping the memos
            self._chosen = self._near = None
            self._give_back(shares)
        self.version += 1

    # -- placement ----------------------------------------------------------------------------------------------------
    def place_job(self, gpu: int, cpu: int, mem: int, count: int) -> tuple[Shares, Nodes] | None:
        """choose_job() and take_job() in one step."""
        memo = self._chosen
        if (memo is not None and memo[0] == (gpu, cpu, mem, count) and memo[1] == self.version
                and memo[2] == self.total_free and memo[3] == self.demand.jobs):
            chosen = memo[4]
        else:
            chosen = self.choose_job(gpu, cpu, mem, count)
        if chosen is None:
            return None
        _, shares, nodes = chosen
        self.take_job(shares, nodes, cpu, mem)
        return shares, nodes

    def choose_job(self, gpu: int, cpu: int, mem: int, count: int) -> tuple[float, Shares, Nodes] | None:
        """(score, device shares, nodes) of the best placement of a job needing ``gpu`` milli-GPU, ``cpu`` and
        ``mem`` on each of ``count`` distinct nodes; None when there is none. Changes nothing.

        The answer is kept for a place_job() of the same job that follows: nothing changed in between when the
        pool's version (bumped by every return of capacity) and total free GPU (lowered by every take of GPU) are
        the same and no GPU job was added to the demand the score reads; a take of CPU or memory alone (take_job)
        and node changes clear it."""
        shape = (gpu, cpu, mem, count)
        version = self.version
        if self._failed_version != version:
            self._failed.clear()
            self._failed_version = version
        elif shape in self._failed:
            return None
        found = self._candidates(gpu, cpu, mem, CANDIDATES if count == 1 else count, count > 1)
        if len(found) < count:
            self._failed[shape] = None
            return None
        tables = self.demand.tables() if gpu else None
        scores = self._scores(found, gpu, cpu, mem, tables)
        if count == 1:
            best = min(range(len(found)), key=scores.__getitem__)  # the first on a tie
            node, dev = found[best]
            chosen = scores[best], self._shares(node, dev, gpu), self.one[node]
        else:
            shares_all: list[tuple[str, int]] = []
            for node, dev in found:
                shares_all.extend(self._shares(node, dev, gpu))
            chosen = sum(scores), tuple(shares_all), tuple(node for node, _ in found)
        self._chosen = (shape, version, self.total_free, self.demand.jobs, chosen)
        return chosen

    def _shares(self, node: str, dev: str | None, gpu: int) -> Shares:
        """The device shares of a candidate: ``gpu`` of ``dev`` (a share), or whole free devices of ``node``."""
        if gpu <= 0:
            return ()
        if gpu < WHOLE:
            return self._fraction(dev, gpu)  # type: ignore[arg-type]
        whole = self._whole[node]
        if gpu == WHOLE:
            return self._single[next(iter(whole))]
        unit = self._unit
        return tuple([unit[d] for d in islice(whole, gpu // WHOLE)])

    def score(self, node: str, gpu: int, cpu: int, mem: int, shares: Shares = ()) -> float:
        """Lower is better (milli-GPU): how much the placement of ``shares`` (with ``cpu`` and ``mem``) on ``node``
        grows the node's GPU fragmentation for the workload seen so far (Demand: by GPU and by the cores the node
        has left), plus STRANDED_WEIGHT times how much it grows the GPU its CPU or memory left cannot feed (see the
        contract in admission.py)."""
        dev = shares[0][0] if shares and gpu < WHOLE else None
        return self._scores(((node, dev),), gpu, cpu, mem, self.demand.tables() if gpu else None)[0]

    def _scores(self, found: Sequence[tuple[str, str | None]], gpu: int, cpu: int, mem: int,
                tables: Tables | None) -> list[float]:
        """score() of each (node, device of a share or None), with what they share looked up once."""
        gpu_cap, cpu_cap, mem_cap, cpu_used, mem_used = self.gpu_cap, self.cpu_cap, self.mem_cap, self.cpu_used, \
            self.mem_used
        whole_of, free = self._whole, self.free
        gpu_free = self.gpu_free if self.tracked else None
        share = gpu < WHOLE
        out: list[float] = []
        for node, dev in found:
            gcap = gpu_cap[node]
            if not gcap:
                out.append(0.0)
                continue
            total = gpu_free[node] if gpu_free is not None else self._node_gpu_free(node)
            left = total - gpu
            delta = 0.0
            ccap = cpu_cap.get(node, 0)
            limited = 0 < ccap < UNLIMITED_RAW
            cfree = ccap - cpu_used[node] if limited else 0
            if tables is not None:
                cores, rows = tables
                if limited:
                    kb, ka = bisect_right(cores, cfree // 1000), bisect_right(cores, (cfree - cpu) // 1000)
                else:
                    kb = ka = len(cores)
                frac_b, le_b, all_b, lack_b = rows[kb]
                frac_a, le_a, all_a, lack_a = rows[ka]
                wc = len(whole_of.get(node, ()))
                partial = total - WHOLE * wc
                x = 0
                if share:
                    x = free[dev]  # type: ignore[index]
                    if x == WHOLE:
                        wc_a, partial_a = wc - 1, partial + WHOLE - gpu
                    else:
                        wc_a, partial_a = wc, partial - gpu
                else:
                    wc_a, partial_a = wc - gpu // WHOLE, partial
                if wc > 16:  # noqa: PLR1730 - hot loop: a comparison is cheaper than min()/max()
                    wc = 16
                if wc_a > 16:  # noqa: PLR1730 - hot loop: a comparison is cheaper than min()/max()
                    wc_a = 16
                delta = (partial_a * le_a[wc_a] + left * (all_a - le_a[wc_a] + lack_a)
                         - partial * le_b[wc] - total * (all_b - le_b[wc] + lack_b))
                if kb == ka:  # only the device that takes a share changes its term
                    if share:
                        delta += frac_a[(x - gpu) // FRAC_BIN] - frac_a[x // FRAC_BIN]
                else:
                    for d in self.devs[node]:
                        f = free[d]
                        delta += frac_a[(f - gpu if d == dev else f) // FRAC_BIN] - frac_b[f // FRAC_BIN]
            # Stranded GPU, before and after: free GPU beyond what the CPU (memory) left feeds at the node's ratio.
            before_s = after_s = 0.0
            if limited:
                fed = gcap * cfree / ccap
                if total > fed:
                    before_s = total - fed
                fed -= gcap * cpu / ccap
                if left > fed:
                    after_s = left - fed
            mcap = mem_cap.get(node, 0)
            if 0 < mcap < UNLIMITED_RAW:
                fed = gcap * (mcap - mem_used[node]) / mcap
                if total - fed > before_s:  # noqa: PLR1730 - hot loop: a comparison is cheaper than min()/max()
                    before_s = total - fed
                fed -= gcap * mem / mcap
                if left - fed > after_s:  # noqa: PLR1730 - hot loop: a comparison is cheaper than min()/max()
                    after_s = left - fed
            if left <= 0:
                after_s = 0.0
            out.append(delta + STRANDED_WEIGHT * (after_s - before_s) + TIGHT_WEIGHT * left)
        return out

    def _node_gpu_free(self, node: str) -> int:
        if self.tracked:
            return self.gpu_free[node]
        free = self.free
        return sum(free[d] for d in self.devs[node])

    def _candidates(self, gpu: int, cpu: int, mem: int, want: int, distinct: bool) -> list[tuple[str, str | None]]:
        """Up to ``want`` feasible (node, device of a share or None) in best-fit order (one per node when
        ``distinct``). A single-node search that found one stops after SCAN_BUDGET entries (near saturation,
        feasible entries are rare and the first found is the best fit); it never stops without one."""
        out: list[tuple[str, str | None]] = []
        budget = UNLIMITED_RAW if distinct else SCAN_BUDGET  # a gang needs its nodes: no early stop
        ccap, mcap, cused, mused = self.cpu_cap, self.mem_cap, self.cpu_used, self.mem_used
        seen: set[str] = set()
        if gpu <= 0:
            # Nodes without free GPU first, the least CPU that suffices first (their GPUs lose nothing); then nodes
            # with free GPU, the most CPU first (what is left still feeds their GPUs).
            # Only nodes with the job's whole cores and GiB free are visited (fit_index.py).
            cfit, cores, gib = self._cfit, cpu // 1000, mem >> 30
            for cls in (0, 1):
                for node in cfit.scan(cls, cores, gib, newest=False, most_cores=cls == 1):
                    budget -= 1
                    if budget <= 0 and out:
                        return out
                    if ccap[node] - cused[node] >= cpu and mcap[node] - mused[node] >= mem:
                        out.append((node, None))
                        if len(out) == want:
                            return out
            return out
        if gpu >= WHOLE and self.tracked:
            # Whole requests in a pool that lists its nodes: _gpu_order's walk, without its generator in between.
            wfit, cores, gib = self._wfit, cpu // 1000, mem >> 30
            for count in range(gpu // WHOLE, self._max_per_node + 1):
                for node in wfit.scan(count, cores, gib):
                    budget -= 1
                    if budget <= 0 and out:
                        return out
                    if ccap[node] - cused[node] < cpu or mcap[node] - mused[node] < mem:
                        continue
                    if distinct:
                        if node in seen:
                            continue
                        seen.add(node)
                    out.append((node, None))
                    if len(out) == want:
                        return out
            return out
        # GPU jobs: nodes (whole requests) or devices (shares) in best-fit order of their free GPU; in a pool that
        # lists its nodes, only those with the job's whole cores and GiB free (fit_index.py), the tightest first.
        whole = self._whole
        share = gpu < WHOLE
        for node, dev in self._gpu_order(gpu, cpu // 1000, mem >> 30):
            budget -= 1
            if budget <= 0 and out:
                return out
            if ccap[node] - cused[node] < cpu or mcap[node] - mused[node] < mem:
                continue
            if distinct:
                if node in seen:
                    continue
                seen.add(node)
            out.append((node, (dev or next(iter(whole[node]))) if share else None))
            if len(out) == want:
                return out
        return out

    def _gpu_order(self, gpu: int, cores: int, gib: int) -> Iterator[tuple[str, str | None]]:
        """(node, device of a share or None) in best-fit order: shares on the device with the tightest free share
        that holds them, else on a completely free device of the node with the fewest; whole requests on the node
        with the fewest completely free devices that suffice. Tracked pools skip nodes below ``cores`` whole free
        cores or ``gib`` free GiB; among equals, the fewest cores, then the least memory first, then newest first."""
        top = self._max_per_node
        if self.tracked:
            wfit, sfit = self._wfit, self._sfit
            if gpu >= WHOLE:
                for count in range(gpu // WHOLE, top + 1):
                    for node in wfit.scan(count, cores, gib):
                        yield node, None
                return
            node_of = self.node
            for value in self._free_values[bisect_left(self._free_values, gpu):]:
                if value == WHOLE:
                    for count in range(1, top + 1):
                        for node in wfit.scan(count, cores, gib):
                            yield node, None
                else:
                    for dev in sfit.scan(value, cores, gib):
                        yield node_of[dev], dev
            return
        by_count = self._nodes_by_count
        if gpu >= WHOLE:
            for count in range(gpu // WHOLE, top + 1):
                for node in reversed(by_count.get(count, {})):
                    yield node, None
            return
        node_of = self.node
        for value in self._free_values[bisect_left(self._free_values, gpu):]:
            if value == WHOLE:
                for count in range(1, top + 1):
                    for node in reversed(by_count.get(count, {})):
                        yield node, None
            else:
                for dev in reversed(self._by_free[value]):
                    yield node_of[dev], dev
