"""Internal records of the scheduler state: queued and running jobs, job groups, holds and the parking index.

Why groups: jobs of one quota with the same shape (same request, same pools to try, same profile) are interchangeable
for admission, except for their order. If the best of them cannot be admitted, none behind it can (they have equal
needs and at most equal priority), so only the head of each group is ever examined. A cycle therefore costs
O(groups touched), never O(queued jobs). A blocked group is *parked* under the events that could unblock it
(capacity freed in a pool, usage dropping under a quota's limit, a deadline) and woken only by those.
"""

from __future__ import annotations

import bisect
import heapq
from typing import TYPE_CHECKING, Final

from allotment.core.model import Wait
from allotment.core.usage import AdmitPlan, Request

if TYPE_CHECKING:
    from allotment.core.explain import Blocker, CapacityCheck, LimitCheck

# Final: compiled (mypyc), a C static, where an imported name is a globals lookup on every call
heappop: Final = heapq.heappop
heappush: Final = heapq.heappush
bisect_left: Final = bisect.bisect_left
bisect_right: Final = bisect.bisect_right

TOKEN_MASK: Final = (1 << 64) - 1  # tokens are the low 64 bits of heap entries


class QueuedRec:
    __slots__ = ("alive", "entry", "gkey", "group", "id", "low", "low96", "priority", "priority_class", "seq",
                 "submitted_at", "token")

    def __init__(self, job_id: str, priority: int, seq: int, submitted_at: float, priority_class: str | None,
                 low: int, token: int) -> None:
        self.id = job_id
        self.priority = priority
        self.seq = seq
        self.submitted_at = submitted_at
        self.priority_class = priority_class
        self.group: Group | None = None
        self.alive = True
        self.token = token  # unique and increasing: breaks ties between jobs of equal priority and seq
        self.low = low  # the fixed fields of its order key (ranks, priority, seq, "not aged"): computed once
        self.low96 = low << 96  # the same, where the global heap's entries hold the key (order_keys.GLOBAL_SHIFT)
        # (-priority, seq) packed into one integer (seq offset so that any 64-bit seq sorts right): queue heaps hold
        # integers, compared in one step, instead of tuples compared field by field.
        self.gkey = (-priority << 64) + seq + (1 << 63)
        # Its entry in its group's heap, (gkey << 64) | token, built once: the group finds it by this integer.
        self.entry = (self.gkey << 64) | token


class RunningRec:
    __slots__ = (
        "id",
        "keys",
        "ncpu",
        "nmem",
        "nodes",
        "plan",
        "pool",
        "priority",
        "qp",
        "quota",
        "req",
        "requests",
        "shares",
        "started_at",
        "submitted_at",
        "vorder",
    )

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
        plan: AdmitPlan,
        qp: tuple[int, str],
        keys: frozenset[int],
        nodes: tuple[str, ...] = (),
        ncpu: int = 0,
        nmem: int = 0,
    ) -> None:
        self.id = job_id
        self.quota = quota
        self.priority = priority
        self.started_at = started_at
        self.submitted_at = started_at  # when it was queued (a job known only as running: its start)
        self.pool = pool
        self.req = req
        self.shares = shares
        self.requests = requests
        self.plan = plan  # usage rows to release (UsageTree.plan)
        self.qp = qp  # (quota, pool): key of the running-job indexes, built once
        self.keys = keys  # the keys of req, as a set (shared with the option it was admitted from)
        # (priority, -started_at, id): victim order within a class, built when needed (preemption.plan_preemption)
        self.vorder: tuple | None = None
        self.nodes = nodes  # nodes charged with ncpu and nmem each (pools that list nodes; gangs)
        self.ncpu = ncpu
        self.nmem = nmem


PLACE_NONE: Final = 0
PLACE_DEVICES: Final = 1
PLACE_NODES: Final = 2


class Option:
    """One pool a group may run in, with its request compiled for that pool."""

    __slots__ = ("adds", "alone", "borrows", "ccap", "count", "cpu", "floored", "gpu", "guaranteed", "hold_pairs",
                 "in_pool", "keys", "lchk", "mem", "mode", "plan", "pool", "prios", "qp", "req", "room", "runs")

    def __init__(self, pool: str, req: Request, gpu: int, plan: AdmitPlan, qp: tuple[int, str],
                 hold_pairs: tuple[tuple[int, int], ...], runs: dict[str, RunningRec], prios: dict[int, int],
                 in_pool: dict[int, int], cpu: int = 0, mem: int = 0, count: int = 1, mode: int | None = None, *,
                 alone: bool, room: tuple[tuple[int, int], ...] = (), guaranteed: bool = False,
                 checks: tuple[tuple[LimitCheck, ...], tuple[CapacityCheck, ...]]) -> None:
        self.pool = pool
        self.req = req  # compiled usage: per-node amounts times count
        self.gpu = gpu  # per node, as cpu and mem
        self.cpu = cpu
        self.mem = mem
        self.count = count  # nodes of a gang (1: one node)
        # How the pool places it: PLACE_NONE (nothing: no GPU, pool without nodes), PLACE_DEVICES (DevicePool.place:
        # GPUs on one node of a pool without nodes), PLACE_NODES (NodePool.place_job: node CPU/memory or a gang).
        self.mode = (PLACE_DEVICES if gpu else PLACE_NONE) if mode is None else mode
        self.keys = frozenset(k for k, _ in req)
        self.plan = plan  # the group's quota is fixed, so its usage updates are compiled once (UsageTree.plan)
        # The plan's fields, where the admission path reads them (a slot costs a third of a NamedTuple field by name)
        # The plan's limit checks and the request's capacity checks, each with its Blocker (explain.option_checks)
        self.lchk, self.ccap = checks
        self.floored = plan.floored
        self.adds = plan.adds
        self.qp = qp
        self.hold_pairs = hold_pairs  # (node, key) where a hold could block this option, in the order they are checked
        # The running-job indexes an admission from this option updates (StateBase._run_by_qp[qp], _prio_by_qp[qp],
        # _quotas_in_pool[pool]): the same dicts, held here so that an admission does not look them up.
        self.runs = runs
        self.prios = prios
        self.in_pool = in_pool
        # UsageTree.fits_guarantee_alone(quota, req): guarantees never change within a state, and blocked jobs ask
        self.alone = alone
        # UsageTree.guarantee_room(quota, req): (key, guarantee - amount) on the keys the quota specifies, and whether
        # one of them carries a guarantee. The quota's usage u fits its guarantee with this request when u[key] <=
        # room on each (within_guarantee, when guaranteed too; borrowing class 0): one comparison per key.
        self.room = room
        self.guaranteed = guaranteed
        # The request alone exceeds the quota's guarantee on a key it specifies: whatever the quota uses, the job
        # borrows here (borrowing class 1; usage is never negative, so u[key] > room on that key).
        self.borrows = False
        for _, r in room:
            if r < 0:
                self.borrows = True


class Group:
    __slots__ = (
        "best_fit",
        "borrow_after",
        "deadline_at",
        "deadline_kept",
        "deadline_token",
        "ever",
        "heap",
        "holds",
        "last_sig",
        "last_wait",
        "options",
        "park_blockers",
        "park_caps",
        "park_keys",
        "park_needs",
        "park_order",
        "parked",
        "policy_rank",
        "pool_rank",
        "profile",
        "qtoken",
        "quota",
        "rank_bits",
        "recs",
        "requests",
        "shape",
        "size",
        "term_keys",
        "terms",
        "tried",
    )

    def __init__(self, shape: tuple, quota: int, options: list[Option], profile: str | None, requests: dict,
                 pool_rank: int, policy_rank: int, rank_bits: int, terms: Request,
                 term_keys: tuple[int, ...]) -> None:
        self.shape = shape
        self.quota = quota
        self.options = options
        self.profile = profile
        self.requests = requests  # resource -> Quantity, for Admit decisions
        self.pool_rank = pool_rank
        self.policy_rank = policy_rank
        # Jobs in order (-priority, seq, token), as integers (gkey << 64 | token; see QueuedRec), with the jobs by
        # token: integer comparisons are what makes a heap step cheap.
        self.heap: list[int] = []
        self.recs: dict[int, QueuedRec] = {}  # by their heap entry (QueuedRec.entry)
        self.size = 0  # live jobs
        self.parked = False
        self.park_keys: list[tuple] | tuple = ()  # the limit events it is parked under (ParkIndex.park)
        self.park_caps: list[tuple] | tuple = ()  # its capacity buckets (pool, key, needed)
        self.park_needs: list[tuple] | tuple = ()  # its limits' rooms (quota, key, amount) (ParkIndex.park)
        self.park_blockers: list = []  # while it waits for room: what blocked its options (for a fresh explain)
        self.park_order = 0  # its order key in those buckets
        self.holds: list[Hold] = []
        self.last_wait: Wait | None = None
        self.last_sig: tuple | None = None  # numbers behind last_wait: the sentence is rebuilt only when they change
        self.tried = -1  # number of the cycle that last examined this group
        self.ever: list[bool] | None = None  # per option: could it fit an idle cluster? (cached; config-dependent)
        self.qtoken = 0  # token of this group's valid entry in its quota heap (0: none)
        self.deadline_token = 0  # token of its valid deadline entry (0: none)
        # Its last deadline entry from a block while that entry is still in the heap (its token, 0: none) and its
        # time: blocked again with the same deadline, the group makes that entry valid again instead of pushing one.
        self.deadline_kept = 0
        self.deadline_at = 0.0
        # Order key parts that never change (state.StateBase._key): the rank fields already shifted into place, and
        # the (key, amount - guarantee) pairs of the first option on keys the quota specifies (its borrowing is
        # measured there; guarantees never change within a state).
        self.rank_bits = rank_bits
        self.terms = terms
        self.term_keys = term_keys  # the keys of terms: the usage its order key reads (built once per shape)
        self.best_fit = False  # options are an unordered set: the best-scored placement across them wins
        # A preempted job's requeue backoff: it may not borrow before then (see admission.py, rule 4). Such a job
        # is a group of its own, so that the identical jobs that were not preempted do not wait behind it.
        self.borrow_after = 0.0

    def add(self, rec: QueuedRec) -> None:
        self.recs[rec.entry] = rec
        heappush(self.heap, rec.entry)
        self.size += 1

    def head(self) -> QueuedRec | None:
        heap, recs = self.heap, self.recs
        while heap:
            rec = recs[heap[0]]
            if rec.alive:
                return rec
            heappop(heap)
            del recs[rec.entry]
        return None

    def members(self) -> list[QueuedRec]:
        return [r for r in self.recs.values() if r.alive]


class Hold:
    """Capacity held back for a blocked job at quota ``node`` (ROOT = the pool itself) on key ``key``.

    kind GUARANTEE: the job's quota is below its guarantee; quotas that would borrow may not take this capacity.
    kind STARVATION: the job waited past the age limit; jobs of lower or equal class that are not more urgent (higher
    priority, or aged and older) may not take it. When the job fits its quota's guarantee on its own (``within``),
    its own quota's jobs may not take it either, whatever their class: they fit the guarantee only because the
    quota's usage leaves room for them, and the aged job would fit it too (and reclaim) if they stopped overtaking
    it. An aged job that needs more than its guarantee does not hold its quota's jobs back: they are guaranteed.
    kind DELAY: the job fits its quota's guarantee alone and may preempt once its preemption delay ends (``until``);
    until then it holds the capacity against the lower-priority jobs it could preempt then: its own quota's where
    the quota preempts lower priority within itself (``within``), other quotas' jobs that would borrow where its
    quota reclaims (``reclaims``) and they are under the quota whose limit blocks the job (``scope``; ROOT: the
    pool is full, any quota). Started during the delay, those jobs would be preempted when it ends; held, the
    capacity that frees by itself reaches the job, which is what the delay waits for. The hold is on the pool (node
    ROOT) whatever blocks the job, as a guarantee hold: jobs its scope leaves out pass it.
    """

    GUARANTEE: Final = 1
    STARVATION: Final = 2
    DELAY: Final = 3
    __slots__ = ("blocked", "blocker", "cls", "group", "job_id", "key", "kind", "node", "paths", "priority",
                 "quota", "reclaims", "scope", "seq", "submitted_at", "until", "within")

    def __init__(self, node: int, key: int, kind: int, group: Group, rec: QueuedRec, cls: int,
                 within: bool = False, reclaims: bool = False, until: float = 0.0, scope: int = 0,
                 paths: list[tuple[int, ...]] | None = None) -> None:
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
        self.within = within  # the job fits its quota's guarantee alone: it holds against that quota's jobs too
        self.reclaims = reclaims  # DELAY: it holds against other quotas' lower-priority borrowers too
        self.until = until  # DELAY: when its preemption delay ends
        self.scope = scope  # DELAY: the quota whose limit blocks the job, or ROOT
        self.paths = paths  # DELAY: each quota's path to the pool (UsageTree.path_root)
        self.blocked: dict[Group, None] = {}  # groups parked because of this hold: re-examined when it goes
        # The HOLD Blocker it last answered (admission._try): the next job it blocks with the same amount gets it too
        self.blocker: Blocker | None = None

    def blocks(self, group: Group, rec: QueuedRec, cls: int, aged: bool) -> bool:
        if group is self.group:
            return False
        if self.kind == Hold.GUARANTEE:
            return cls > 0
        if self.kind == Hold.DELAY:
            if rec.priority >= self.priority:
                return False
            if group.quota == self.quota:
                return self.within
            paths = self.paths
            return self.reclaims and cls > 0 and (paths is None or self.scope in paths[group.quota])
        if rec.priority > self.priority or (cls < self.cls and not (self.within and group.quota == self.quota)):
            return False
        return not (aged and (rec.submitted_at, rec.seq) < (self.submitted_at, self.seq))


class HoldSet:
    """The holds on one (quota or ROOT, key). Guarantee holds all block the same candidates (any that would
    borrow), so they are checked in O(1); starvation holds are few and checked one by one. Delay holds can be many
    (every blocked job in its preemption delay that fits its guarantee alone): they are indexed by what they block,
    own-quota holds by quota, borrower holds by scope, priority and quota, so that a check costs the candidate's
    path times the priorities held, not the number of holds."""

    __slots__ = ("delay", "delay_own", "delay_scoped", "guarantee", "paths", "starvation")

    def __init__(self) -> None:
        self.guarantee: dict[Group, Hold] = {}
        self.starvation: list[Hold] = []
        self.delay = 0  # how many delay holds
        self.delay_own: dict[int, dict[Hold, None]] = {}  # quota -> its holds against its own lower priorities
        # scope -> priority -> quota -> holds against lower-priority borrowers under that scope
        self.delay_scoped: dict[int, dict[int, dict[int, dict[Hold, None]]]] = {}
        self.paths: list[tuple[int, ...]] | None = None  # the delay holds' quota paths (UsageTree.path_root)

    def add(self, hold: Hold) -> None:
        if hold.kind == Hold.GUARANTEE:
            self.guarantee[hold.group] = hold
        elif hold.kind == Hold.DELAY:
            self.delay += 1
            self.paths = hold.paths
            if hold.within:
                self.delay_own.setdefault(hold.quota, {})[hold] = None
            if hold.reclaims:
                by_quota = self.delay_scoped.setdefault(hold.scope, {}).setdefault(hold.priority, {})
                by_quota.setdefault(hold.quota, {})[hold] = None
        else:
            self.starvation.append(hold)

    def remove(self, hold: Hold) -> None:
        if hold.kind == Hold.GUARANTEE:
            self.guarantee.pop(hold.group, None)
        elif hold.kind == Hold.DELAY:
            self.delay -= 1
            if hold.within:
                own = self.delay_own[hold.quota]
                del own[hold]
                if not own:
                    del self.delay_own[hold.quota]
            if hold.reclaims:
                by_prio = self.delay_scoped[hold.scope]
                by_quota = by_prio[hold.priority]
                holds = by_quota[hold.quota]
                del holds[hold]
                if not holds:
                    del by_quota[hold.quota]
                    if not by_quota:
                        del by_prio[hold.priority]
                        if not by_prio:
                            del self.delay_scoped[hold.scope]
        else:
            self.starvation.remove(hold)

    def __bool__(self) -> bool:
        return bool(self.guarantee) or bool(self.starvation) or self.delay > 0

    def blocking(self, group: Group, rec: QueuedRec, cls: int, aged: bool) -> Hold | None:
        if cls > 0:
            for holder, hold in self.guarantee.items():
                if holder is not group:
                    return hold
        for hold in self.starvation:
            if hold.blocks(group, rec, cls, aged):
                return hold
        if self.delay:
            return self._delay_blocking(group, rec, cls)
        return None

    def _delay_blocking(self, group: Group, rec: QueuedRec, cls: int) -> Hold | None:
        """The delay hold that blocks this candidate (Hold.blocks for kind DELAY, through the indexes), or None."""
        priority, quota = rec.priority, group.quota
        own = self.delay_own.get(quota)
        if own:
            for hold in own:
                if priority < hold.priority and hold.group is not group:
                    return hold
        scoped, paths = self.delay_scoped, self.paths
        if cls > 0 and scoped and paths is not None:
            for scope in paths[quota]:
                by_prio = scoped.get(scope)
                if by_prio:
                    for held, by_quota in by_prio.items():
                        if priority < held:
                            for holder, holds in by_quota.items():
                                if holder != quota:
                                    for hold in holds:
                                        return hold
        return None


class ParkIndex:
    """Parked groups by the event that can unblock them.

    Limit parking, key ("limit", quota, pool): usage dropped under that quota's limit in pool (pool may be "*").
    Every group parked there is woken by such an event (they all belong to that quota's subtree).

    Limit rooms, per quota, (key, amount): a group whose re-examination could change nothing but its Wait's numbers
    until the limit has room for it (it may not preempt yet, holds nothing and is not held: Blocking._block) waits
    for ``amount`` of ``key`` to be free under that quota's limit. It is woken when a job's end makes that room
    (RunningIndex._release), not at every end under the limit: at a full limit where jobs end a few at a time, every
    end re-examined every group the limit blocks, each blocked again with a new Wait for the loop to write
    (benchmarks/limit_rooms_bench.py).

    Capacity parking, per pool (or "*"): the group waits for ``needed`` raw units of key ``key`` at the cluster level.
    These are NOT all woken when capacity frees (that would re-examine every waiting group of a busy pool for each
    finished job); the state wakes them by need, best order key first, until the freed capacity is spoken for.
    """

    def __init__(self) -> None:
        self._limit: dict[tuple, dict[Group, None]] = {}
        # pool -> key -> needed amount -> bucket [orders, groups]: the parked groups' order keys, sorted, and the
        # groups in the same order. Order keys are unique (they end with a job's submission seq), so a bucket is
        # kept in order by bisecting integers (a fraction of what comparing (order, ..., group) tuples costs).
        self._cap: dict[str, dict[int, dict[int, list[list]]]] = {}
        self._buckets: dict[tuple, list[list]] = {}  # the same buckets by (pool, key, needed) (see Blocking._block)
        self._rooms: dict[int, dict[tuple[int, int], dict[Group, None]]] = {}  # quota -> (key, amount) -> groups

    def park(self, group: Group, limit_keys: list[tuple], cap_entries: list[tuple], order: int,
             needs: list[tuple] | tuple = ()) -> None:
        """Park ``group`` under the events ``limit_keys``, the capacity buckets ``cap_entries`` (pool, key, needed)
        and the limit rooms ``needs`` (quota, key, amount). Keeps the lists (the caller builds them for this call)."""
        group.parked = True
        limit, buckets = self._limit, self._buckets
        for k in limit_keys:
            groups = limit.get(k)
            if groups is None:
                groups = limit[k] = {}
            groups[group] = None
        if needs:
            rooms = self._rooms
            node: int
            rk: int
            amount: int
            for node, rk, amount in needs:
                at = rooms.get(node)
                if at is None:
                    at = rooms[node] = {}
                waiting = at.get((rk, amount))
                if waiting is None:
                    waiting = at[(rk, amount)] = {}
                waiting[group] = None
            group.park_needs = needs
        for entry in cap_entries:
            bucket = buckets.get(entry)
            if bucket is None:
                pool: str
                key: int
                needed: int
                pool, key, needed = entry
                by_key = self._cap.get(pool)  # (setdefault would build an empty dict at every call)
                if by_key is None:
                    by_key = self._cap[pool] = {}
                by_need = by_key.get(key)
                if by_need is None:
                    by_need = by_key[key] = {}
                by_need[needed] = buckets[entry] = [[order], [group]]
            else:
                orders = bucket[0]
                i = bisect_right(orders, order)
                orders.insert(i, order)
                bucket[1].insert(i, group)
        group.park_keys = limit_keys
        group.park_caps = cap_entries
        group.park_order = order

    def unpark(self, group: Group) -> None:
        for k in group.park_keys:
            s2 = self._limit.get(k)
            if s2 is not None:
                s2.pop(group, None)
                if not s2:
                    del self._limit[k]
        if group.park_needs:
            rooms = self._rooms
            node: int
            rk: int
            amount: int
            for node, rk, amount in group.park_needs:
                at = rooms.get(node)
                if at is not None:
                    waiting = at.get((rk, amount))
                    if waiting is not None:
                        waiting.pop(group, None)
                        if not waiting:
                            del at[(rk, amount)]
                            if not at:
                                del rooms[node]
            group.park_needs = ()
            group.park_blockers = []
        if group.park_caps:
            order, buckets = group.park_order, self._buckets
            for entry in group.park_caps:
                orders, groups = buckets[entry]
                i = bisect_left(orders, order)
                del orders[i]
                del groups[i]
                if not orders:
                    del buckets[entry]
                    pool, key, needed = entry
                    del self._cap[pool][key][needed]
            group.park_caps = ()
        group.park_keys = ()
        group.parked = False

    @property
    def rooms(self) -> dict[int, dict[tuple[int, int], dict[Group, None]]]:
        """Quota -> (key, amount) -> groups waiting for that much room under the quota's limit (read only)."""
        return self._rooms

    @property
    def limits(self) -> dict[tuple, dict[Group, None]]:
        """Event key -> groups parked under it (read only)."""
        return self._limit

    def limit_groups(self, key: tuple) -> list[Group]:
        s = self._limit.get(key)
        return list(s) if s else []

    def cap_buckets(self, pool: str) -> dict[int, dict[int, list[list]]]:
        """key -> needed -> bucket [orders, groups] (parked groups in order), for one pool (live lists: copy before
        iterating)."""
        return self._cap.get(pool) or {}
