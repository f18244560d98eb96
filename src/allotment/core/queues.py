"""Internal records of the scheduler state: queued and running jobs, job groups, holds and the parking index.

Why groups: jobs of one quota with the same shape (same request, same pools to try, same profile) are interchangeable
for admission, except for their order. If the best of them cannot be admitted, none behind it can (they have equal
needs and at most equal priority), so only the head of each group is ever examined. A cycle therefore costs
O(groups touched), never O(queued jobs). A blocked group is *parked* under the events that could unblock it
(capacity freed in a pool, usage dropping under a quota's limit, a deadline) and woken only by those.
"""

from __future__ import annotations

from heapq import heappop

from allotment.core.model import Wait
from allotment.core.usage import Request


class QueuedRec:
    __slots__ = ("alive", "group", "id", "priority", "priority_class", "seq", "submitted_at", "token")

    def __init__(self, job_id: str, priority: int, seq: int, submitted_at: float, priority_class: str | None) -> None:
        self.id = job_id
        self.priority = priority
        self.seq = seq
        self.submitted_at = submitted_at
        self.priority_class = priority_class
        self.group: Group | None = None
        self.alive = True
        self.token = 0


class RunningRec:
    __slots__ = ("id", "pool", "priority", "quota", "req", "requests", "shares", "started_at")

    def __init__(
        self,
        job_id: str,
        quota: int,
        priority: int,
        started_at: float,
        pool: str,
        req: Request,
        shares: tuple[tuple[str, int], ...],
        requests: dict,
    ) -> None:
        self.id = job_id
        self.quota = quota
        self.priority = priority
        self.started_at = started_at
        self.pool = pool
        self.req = req
        self.shares = shares
        self.requests = requests


class Option:
    """One pool a group may run in, with its request compiled for that pool."""

    __slots__ = ("gpu", "keys", "pool", "req")

    def __init__(self, pool: str, req: Request, gpu: int) -> None:
        self.pool = pool
        self.req = req
        self.gpu = gpu
        self.keys = frozenset(k for k, _ in req)


class Group:
    __slots__ = (
        "deadline_token",
        "heap",
        "holds",
        "last_wait",
        "options",
        "park_keys",
        "parked",
        "policy_rank",
        "pool_rank",
        "profile",
        "qtoken",
        "quota",
        "requests",
        "shape",
        "size",
    )

    def __init__(self, shape: tuple, quota: int, options: list[Option], profile: str | None, requests: dict,
                 pool_rank: int, policy_rank: int) -> None:
        self.shape = shape
        self.quota = quota
        self.options = options
        self.profile = profile
        self.requests = requests  # resource -> Quantity, for Admit decisions
        self.pool_rank = pool_rank
        self.policy_rank = policy_rank
        self.heap: list[tuple[int, int, int, QueuedRec]] = []  # (-priority, seq, token, rec)
        self.size = 0  # live jobs
        self.parked = False
        self.park_keys: list[tuple] = []
        self.holds: list[Hold] = []
        self.last_wait: Wait | None = None
        self.qtoken = 0  # token of this group's valid entry in its quota heap (0: none)
        self.deadline_token = 0

    def head(self) -> QueuedRec | None:
        heap = self.heap
        while heap:
            rec = heap[0][3]
            if rec.alive:
                return rec
            heappop(heap)
        return None


class Hold:
    """Capacity held back for a blocked job at quota ``node`` (ROOT = the pool itself) on key ``key``.

    kind GUARANTEE: the job's quota is below its guarantee; quotas that would borrow may not take this capacity.
    kind STARVATION: the job waited past the age limit; jobs of lower or equal class that are not more urgent (higher
    priority, or aged and older) may not take it.
    """

    GUARANTEE = 1
    STARVATION = 2
    __slots__ = ("cls", "group", "job_id", "key", "kind", "node", "priority", "quota", "seq", "submitted_at")

    def __init__(self, node: int, key: int, kind: int, group: Group, rec: QueuedRec, cls: int) -> None:
        self.node = node
        self.key = key
        self.kind = kind
        self.group = group
        self.job_id = rec.id
        self.priority = rec.priority
        self.submitted_at = rec.submitted_at
        self.seq = rec.seq
        self.cls = cls
        self.quota = group.quota

    def blocks(self, group: Group, rec: QueuedRec, cls: int, aged: bool) -> bool:
        if group is self.group:
            return False
        if self.kind == Hold.GUARANTEE:
            return cls > 0
        if cls < self.cls or rec.priority > self.priority:
            return False
        return not (aged and (rec.submitted_at, rec.seq) < (self.submitted_at, self.seq))


class ParkIndex:
    """Parked groups by the event that can unblock them. Keys:
    ("cap", pool)            capacity freed in a pool (pool may be "*": any pool);
    ("limit", quota, pool)   usage dropped under quota's limit in pool (or "*").
    """

    def __init__(self) -> None:
        self._by_key: dict[tuple, dict[Group, None]] = {}

    def park(self, group: Group, keys: list[tuple]) -> None:
        group.parked = True
        group.park_keys = keys
        for k in keys:
            self._by_key.setdefault(k, {})[group] = None

    def unpark(self, group: Group) -> None:
        for k in group.park_keys:
            s = self._by_key.get(k)
            if s is not None:
                s.pop(group, None)
                if not s:
                    del self._by_key[k]
        group.park_keys = []
        group.parked = False

    def take(self, key: tuple) -> list[Group]:
        """Groups parked under ``key`` (they stay parked until the caller unparks them)."""
        s = self._by_key.get(key)
        return list(s) if s else []

    def __len__(self) -> int:
        return len(self._by_key)
