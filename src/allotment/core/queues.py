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
    __slots__ = ("id", "priority", "seq", "submitted_at", "priority_class", "group", "alive", "token")

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
    __slots__ = ("id", "quota", "priority", "started_at", "pool", "req", "shares", "requests")

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

    __slots__ = ("pool", "req", "gpu", "keys")

    def __init__(self, pool: str, req: Request, gpu: int) -> None:
        self.pool = pool
        self.req = req
        self.gpu = gpu
        self.keys = frozenset(k for k, _ in req)


class Group:
    __slots__ = (
        "quota", "options", "profile", "requests", "pool_rank", "policy_rank", "heap", "size", "parked",
        "park_keys", "holds", "last_wait", "last_sig", "qtoken", "deadline_token", "shape", "tried", "ever",
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
        self.last_sig: tuple | None = None  # numbers behind last_wait: the sentence is rebuilt only when they change
        self.tried = -1  # number of the cycle that last examined this group
        self.ever: list[bool] | None = None  # per option: could it fit an idle cluster? (cached; config-dependent)
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
    __slots__ = ("node", "key", "kind", "group", "job_id", "priority", "submitted_at", "seq", "cls", "quota")

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
    """Parked groups by the event that can unblock them.

    Limit parking, key ("limit", quota, pool): usage dropped under that quota's limit in pool (pool may be "*").
    Every group parked there is woken by such an event (they all belong to that quota's subtree: few).

    Capacity parking, per pool (or "*"): the group waits for ``needed`` raw units of key ``key`` at the cluster level.
    These are NOT all woken when capacity frees (that would re-examine every waiting group of a busy pool for each
    finished job); the state wakes them by need, best order key first, until the freed capacity is spoken for.
    """

    def __init__(self) -> None:
        self._limit: dict[tuple, dict[Group, None]] = {}
        self._cap: dict[str, dict[Group, tuple[tuple, int, int]]] = {}

    def park(self, group: Group, limit_keys: list[tuple], cap_entries: list[tuple[str, int, int]], order: tuple) -> None:
        group.parked = True
        keys: list[tuple] = []
        for k in limit_keys:
            self._limit.setdefault(k, {})[group] = None
            keys.append(k)
        for pool, key, needed in cap_entries:
            self._cap.setdefault(pool, {})[group] = (order, key, needed)
            keys.append(("cap", pool))
        group.park_keys = keys

    def unpark(self, group: Group) -> None:
        for k in group.park_keys:
            if k[0] == "cap":
                s = self._cap.get(k[1])
                if s is not None:
                    s.pop(group, None)
            else:
                s2 = self._limit.get(k)
                if s2 is not None:
                    s2.pop(group, None)
                    if not s2:
                        del self._limit[k]
        group.park_keys = []
        group.parked = False

    def limit_groups(self, key: tuple) -> list[Group]:
        s = self._limit.get(key)
        return list(s) if s else []

    def cap_groups(self, pool: str) -> dict[Group, tuple[tuple, int, int]]:
        return self._cap.get(pool) or {}
