"""Why a job waits in a pool that lists its nodes: whether it could ever fit there (on empty nodes), the wording of a
node-level shortage and the node that comes closest ("no node in pool a100 has 2 GPUs and 48 cores free (best:
node-17, 2 GPUs and 12 cores)").

A mixin of placement.NodePool, apart so that the placement module stays about placing; it reads the pool's indexes
(devices.py, fit_index.py) and never changes them. The closest nodes are kept per kind of request (CPU-only, a share,
whole GPUs) until the pool changes: in a busy pool most decisions are waits, and each used to read 16 nodes' devices.
"""

from __future__ import annotations

from allotment.core.devices import WHOLE, DevicePool
from allotment.core.quantity import UNLIMITED_RAW, format_raw


class NodeShortfall(DevicePool):
    """The explanations of placement.NodePool (its attributes are NodePool's, set in NodePool.__init__; declared
    here so that the class type-checks and compiles on its own)."""

    cpu_cap: dict[str, int]
    mem_cap: dict[str, int]
    cpu_used: dict[str, int]
    mem_used: dict[str, int]
    devs: dict[str, dict[str, None]]
    _by_cores: tuple[dict[int, dict[str, None]], dict[int, dict[str, None]]]
    _core_levels: tuple[list[int], list[int]]
    version: int
    _shapes: dict[tuple[int, int, int, int], int] | None
    _near: tuple[int, int, dict[int, list[tuple[str, int, int, int]]]] | None

    def _candidates(self, gpu: int, cpu: int, mem: int, want: int, distinct: bool) -> list[tuple[str, str | None]]:
        raise NotImplementedError  # NodePool's

    def node_shortfall(self, gpu: int, cpu: int, mem: int, count: int) -> str:
        """Why no node (or not ``count`` nodes) can take the job, with the node that comes closest."""
        need = _describe(gpu, cpu, mem)
        if count > 1:
            have = len(self._candidates(gpu, cpu, mem, count, True))
            return f"fewer than {count} nodes in pool {self.name} have {need} free ({have} have)"
        best: tuple[str, int, int, int] | None = None
        best_key: float | None = None
        near = self._near
        if near is None or near[0] != self.total_free or near[1] != self.version:
            near = self._near = (self.total_free, self.version, {})
        kind = 0 if gpu <= 0 else 2 if gpu >= WHOLE else 1
        closest = near[2].get(kind)
        if closest is None:
            ccap, cused, mcap, mused = self.cpu_cap, self.cpu_used, self.mem_cap, self.mem_used
            closest = near[2][kind] = [(node, g, ccap[node] - cused[node], mcap[node] - mused[node])
                                       for node, g in self._closest_candidates(gpu).items()]
        for node, g, c, m in closest:
            key = min(g / gpu if gpu else 1.0, c / cpu if cpu else 1.0, m / mem if mem else 1.0)
            if best_key is None or key > best_key:
                best, best_key = (node, g, c, m), key
        text = f"no node in pool {self.name} has {need} free"
        if best is not None:
            node, g, c, m = best
            text += f" (best: {node}, {_describe(g if gpu else 0, c if cpu else 0, m if mem else 0, free=True)})"
        return text

    def could_ever_fit_job(self, gpu: int, cpu: int, mem: int, count: int) -> bool:
        """Would the job fit if every node of the pool were empty? O(distinct node shapes)."""
        n = gpu // WHOLE
        fits = 0
        for (ccap, mcap, whole, largest), nodes in self._node_shapes().items():
            if ccap < cpu or mcap < mem or (gpu >= WHOLE and whole < n) or (0 < gpu < WHOLE and largest < gpu):
                continue
            fits += nodes
            if fits >= count:
                return True
        return False

    def _node_shapes(self) -> dict[tuple[int, int, int, int], int]:
        """(cpu, memory, whole devices, largest device) -> number of active nodes of that shape; rebuilt (O(nodes))
        only after the inventory changed."""
        if self._shapes is None:
            shapes: dict[tuple[int, int, int, int], int] = {}
            cap = self.cap
            for node, ccap in self.cpu_cap.items():
                key = (ccap, self.mem_cap[node], self.whole_on_node.get(node, 0),
                       max((cap[d] for d in self.devs[node]), default=0))
                shapes[key] = shapes.get(key, 0) + 1
            self._shapes = shapes
        return self._shapes

    def _closest_candidates(self, gpu: int, limit: int = 16) -> dict[str, int]:
        """Nodes to name as the closest one in a wait, with their free GPU in the form the job needs (whole free
        devices, or the largest free share): up to ``limit`` of those with the most (GPU jobs) or with the most free
        cores (CPU-only jobs): the others have less."""
        out: dict[str, int] = {}
        if gpu <= 0:
            for cls in (0, 1):
                for level in reversed(self._core_levels[cls]):
                    for node in self._by_cores[cls][level]:
                        out[node] = 0
                        if len(out) >= limit:
                            return out
            return out or dict.fromkeys(self.cpu_cap, 0)  # untracked pools have no CPU index (nor node CPU limits)
        if gpu >= WHOLE:
            by_count = self._nodes_by_count
            for count in range(self._max_per_node, 0, -1):
                for node in by_count.get(count, ()):
                    out[node] = WHOLE * count
                    if len(out) >= limit:
                        return out
        else:
            # devices by free share, the largest first: a node's first entry is its largest free share
            node_of = self.node
            for value in reversed(self._free_values):
                for dev in self._by_free[value]:
                    node = node_of[dev]
                    if node not in out:
                        out[node] = value
                        if len(out) >= limit:
                            return out
        return out

def _describe(gpu: int, cpu: int, mem: int, free: bool = False) -> str:
    parts = []
    if gpu or not (cpu or mem):
        if gpu >= WHOLE or (free and gpu == 0):
            n = gpu // WHOLE
            parts.append(f"{n} GPU" + ("" if n == 1 else "s"))
        else:
            parts.append(f"{format_raw(gpu, 'gpu')} of a GPU")
    if cpu:
        parts.append(f"{format_raw(cpu, 'cpu')} cores" if cpu < UNLIMITED_RAW else "unlimited cores")
    if mem:
        parts.append(f"{format_raw(mem, 'memory')} memory" if mem < UNLIMITED_RAW else "unlimited memory")
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
