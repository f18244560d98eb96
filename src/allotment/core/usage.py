"""Quota tree usage accounting: the arithmetic behind admission rule 1 (limits and borrowing along a path).

Model (Kueue semantics over a PAI-style tree; integers in raw units, see quantity.py):

- ``u[a][k]``: usage of quota ``a``'s whole subtree on key ``k`` (a job counts on its quota and every ancestor).
- A quota *borrows* on key ``k`` when ``u > guarantee`` (only keys the quota specifies count).
- ``floor[a][k] = guarantee - lending_limit`` (0 without a lending limit): unused guarantee that nobody else may use.
- ``occ(a) = max(eu(a), floor(a))``: what quota ``a`` occupies in its parent, i.e. its usage plus its unlendable
  unused guarantee; ``eu(a) = direct usage of a + sum of occ(children)``.
- The virtual root (index 0, ROOT) is the cluster; its capacity is the physical pool capacity.

A job fits (``first_block`` returns None) when, adding its request:
  1. ``u(a) + r <= limit(a)`` for every quota ``a`` on the path from its quota to the top, and
  2. ``eu(ROOT) + delta <= capacity``, where ``delta`` is how much the job raises the occupancy of its top-level quota
     after absorbing what lies inside unlendable guarantees on the way up. So borrowing only ever takes capacity
     that is physically free and not held back by another quota's lending limit.

Every operation walks one path (depth of the tree) over the job's few keys: the cost does not depend on how many jobs
are queued or running. Two shortcuts keep the walk short: only quotas with a finite limit are checked for limits, and
``eu`` is only maintained where it matters (quotas with a lending limit, and ROOT): a quota without lending limits
passes every change to its parent unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Final, NamedTuple

from allotment.core.quantity import UNLIMITED_RAW
from allotment.core.quota_tree import InvalidQuotaTree, QuotaSpec, Reclaim, WithinQuota, validate_tree
from allotment.core.resources import ANY_POOL, ResourceKey

ROOT: Final = 0
ROOT_ID = "<cluster>"

LIMIT: Final = 1
CAPACITY: Final = 2

Request = tuple[tuple[int, int], ...]  # ((key index, raw amount), ...)


_WITHIN = (0, 0.0)


class Block(NamedTuple):
    """Why a request does not fit: ``kind`` LIMIT at quota ``node`` or CAPACITY at ROOT, on key ``key``;
    ``needed`` is the amount that had to fit at that level."""

    kind: int
    node: int
    key: int
    needed: int


# Block(...) runs a Python-level __new__; tuple.__new__(Block, fields) builds the same value in C (a blocked option is
# common on the admission path: the first pool is often full).
_new_block: Final = tuple.__new__


class AdmitPlan(NamedTuple):
    """See UsageTree.plan()."""

    lchk: tuple[tuple[list[int], list[int], int, int, int], ...]  # (usage, limit row, key, amount, quota): limited
    floored: bool  # a lending limit on the path: use the general admit()/apply() (occupancy must be propagated)
    req: Request
    adds: tuple[tuple[list[int], int, int], ...]  # (usage row, key, amount) for the path and ROOT


class KeyIndex:
    """Dense integer indexes for resource keys, so per-quota state is a list indexed by key."""

    def __init__(self) -> None:
        self.keys: list[ResourceKey] = []
        self._index: dict[ResourceKey, int] = {}

    def get(self, k: tuple[str, str]) -> int:
        # (a new name: compiled, a variable typed tuple[str, str] holds a plain tuple and would drop the NamedTuple)
        rk = ResourceKey(*k)
        idx = self._index.get(rk)
        if idx is None:
            idx = len(self.keys)
            self._index[rk] = idx
            self.keys.append(rk)
        return idx

    def find(self, k: tuple[str, str]) -> int | None:
        return self._index.get(ResourceKey(*k))

    def __len__(self) -> int:
        return len(self.keys)


class UsageTree:
    """Compiled quota tree plus mutable usage. Node 0 is the virtual root (the cluster)."""

    def __init__(
        self,
        specs: Sequence[QuotaSpec],
        capacity: Mapping[tuple[str, str], int],
        extra_keys: Sequence[tuple[str, str]] = (),
    ) -> None:
        errors = validate_tree(specs)
        if errors:
            raise InvalidQuotaTree(errors)
        self.keys = KeyIndex()
        for k in capacity:
            self.keys.get(k)
        for k in extra_keys:
            self.keys.get(k)
        for spec in specs:
            for k in spec.resources:
                self.keys.get(k)
        self.uses_any_pool = any(k.pool == ANY_POOL for k in self.keys.keys)
        if self.uses_any_pool:
            for resource in ("gpu", "cpu", "memory"):
                self.keys.get((ANY_POOL, resource))
        nkeys = len(self.keys)

        # Parents before children, so paths can be built in one pass.
        by_id = {s.id: s for s in specs}
        order: list[QuotaSpec] = []
        seen: set[str] = set()

        def visit(spec: QuotaSpec) -> None:
            if spec.id in seen:
                return
            if spec.parent_id is not None:
                visit(by_id[spec.parent_id])
            seen.add(spec.id)
            order.append(spec)

        for spec in specs:
            visit(spec)

        self.specs: list[QuotaSpec | None] = [None] + order
        self.ids: list[str] = [ROOT_ID] + [s.id for s in order]
        self.index: dict[str, int] = {qid: i for i, qid in enumerate(self.ids) if i}
        n = len(self.ids)
        self.parent: list[int] = [-1] * n
        self.path: list[tuple[int, ...]] = [()] * n  # quota, parent, ..., top-level quota (ROOT excluded)
        self.ancestors: list[frozenset[int]] = [frozenset()] * n  # path as a set (includes the node itself)
        self.path_root: list[tuple[int, ...]] = [(ROOT,)] * n  # path + (ROOT,)
        self.children: list[list[int]] = [[] for _ in range(n)]
        for i, spec in enumerate(order, start=1):
            p = ROOT if spec.parent_id is None else self.index[spec.parent_id]
            self.parent[i] = p
            self.children[p].append(i)
            self.path[i] = (i,) + self.path[p]
            self.ancestors[i] = frozenset(self.path[i])
            self.path_root[i] = self.path[i] + (ROOT,)
        self._descendants: dict[int, tuple[int, ...]] = {}

        self.weight: list[float] = [1.0] + [s.weight for s in order]
        self.g: list[list[int]] = [[0] * nkeys for _ in range(n)]
        self.lim: list[list[int]] = [[UNLIMITED_RAW] * nkeys for _ in range(n)]
        self.floor: list[list[int]] = [[0] * nkeys for _ in range(n)]
        self.spec_keys: list[frozenset[int]] = [frozenset()] * n
        # Per quota, for preemption planning: (within-quota lower priority, reclaims at all, reclaims lower priority
        # only, child preemption), and its minimum runtime.
        self.preempt_policy: list[tuple[bool, bool, bool, bool]] = [(False, False, False, False)] + [
            (s.within_quota_preemption == WithinQuota.LOWER_PRIORITY, s.reclaim != Reclaim.NEVER,
             s.reclaim == Reclaim.LOWER_PRIORITY, s.child_preemption) for s in order
        ]
        self.min_runtime: list[float] = [0.0] + [s.min_runtime_s for s in order]
        for i, spec in enumerate(order, start=1):
            ks = []
            for k, lim in spec.resources.items():
                ki = self.keys.get(k)
                ks.append(ki)
                self.g[i][ki] = lim.guarantee.raw
                self.lim[i][ki] = lim.limit.raw
                if lim.lending_limit is not None:
                    self.floor[i][ki] = lim.guarantee.raw - lim.lending_limit.raw
            # A quota that sets a resource per pool has no guarantee in the pools it does not name: what it uses there
            # is borrowed, for the order of candidates (guarantee first) as for reclaim. A resource it sets only on
            # "*" is judged on "*"; one it does not set at all is not its concern.
            per_pool = {k.resource for k in spec.resources if k.pool != ANY_POOL}
            per_pool -= {k.resource for k in spec.resources if k.pool == ANY_POOL}
            if per_pool:
                ks.extend(ki for ki, key in enumerate(self.keys.keys)
                          if key.pool != ANY_POOL and key.resource in per_pool)
            self.spec_keys[i] = frozenset(ks)
        self.cap: list[int] = [0] * nkeys
        for ki, k in enumerate(self.keys.keys):
            if k.pool == ANY_POOL:
                total = sum(v for kk, v in capacity.items() if kk[1] == k.resource)
                self.cap[ki] = min(total, UNLIMITED_RAW)
            else:
                self.cap[ki] = capacity.get(k, 0)
        self.u: list[list[int]] = [[0] * nkeys for _ in range(n)]
        # eu starts at the floors: an idle quota with a lending limit already occupies its unlendable guarantee.
        self.eu: list[list[int]] = [[0] * nkeys for _ in range(n)]
        for i in reversed(range(1, n)):
            p = self.parent[i]
            occ_i, eu_p = self.floor[i], self.eu[p]
            ei = self.eu[i]
            for ki in range(nkeys):
                occ = max(occ_i[ki], ei[ki])
                eu_p[ki] = eu_p[ki] + occ

        # Occupancy of an idle cluster (only unlendable guarantees): what "could this ever fit?" is measured against.
        self.idle_eu: list[list[int]] = [row[:] for row in self.eu]
        # Shortcuts for the hot path. A quota without any finite limit cannot block; a quota without any lending
        # limit (floor 0 everywhere) passes every change to its parent unchanged, so its eu is never needed and is
        # not maintained (eu stays exact at floored quotas and at ROOT, the only places it is read).
        self.inv_weight = [1.0 / w if w > 0 else float("inf") for w in self.weight]
        self._refresh_inv_cap()
        # Per quota, references to the rows the hot path touches (the row lists are never replaced, only mutated).
        self.u_rows = [tuple(self.u[a] for a in p) + (self.u[ROOT],) for p in self.path]
        has_limit = [any(x < UNLIMITED_RAW for x in row) for row in self.lim]
        has_floor = [any(x > 0 for x in row) for row in self.floor]
        self.limited_path = [tuple(a for a in p if has_limit[a]) for p in self.path]
        self.limit_rows = [tuple((self.u[a], self.lim[a]) for a in p) for p in self.limited_path]
        self.floored_path = [tuple(a for a in p if has_floor[a]) for p in self.path]

    # -- structure ----------------------------------------------------------------------------------------------
    def descendants(self, node: int) -> tuple[int, ...]:
        """Strict descendants of ``node`` (cached)."""
        cached = self._descendants.get(node)
        if cached is None:
            out: list[int] = []
            stack = list(self.children[node])
            while stack:
                c = stack.pop()
                out.append(c)
                stack.extend(self.children[c])
            cached = tuple(out)
            self._descendants[node] = cached
        return cached

    def lca_below(self, a: int, b: int) -> int:
        """Lowest common ancestor of two quotas (ROOT when they only share the cluster)."""
        anc = self.ancestors[b]
        for x in self.path[a]:
            if x in anc:
                return x
        return ROOT

    def set_capacity(self, ki: int, raw: int) -> None:
        self.cap[ki] = min(raw, UNLIMITED_RAW)
        self._refresh_inv_cap()

    def _refresh_inv_cap(self) -> None:
        """1/capacity per key for dominant shares (0 where capacity is unlimited or zero: no share there)."""
        self.inv_cap = [1.0 / c if 0 < c < UNLIMITED_RAW else 0.0 for c in self.cap]

    # -- the hot path ---------------------------------------------------------------------------------------------
    def first_block(self, q: int, req: Request) -> Block | None:
        """None when ``req`` fits at quota ``q``; otherwise the first limit or capacity that blocks it."""
        u, lim = self.u, self.lim
        for a in self.limited_path[q]:
            ua, la = u[a], lim[a]
            for k, r in req:
                if ua[k] + r > la[k]:
                    return _new_block(Block, (LIMIT, a, k, r))
        eu, floor = self.eu, self.floor
        delta: Request | list[tuple[int, int]] = req
        for a in self.floored_path[q]:
            ea, fa = eu[a], floor[a]
            nxt = []
            for k, d in delta:
                e, f = ea[k], fa[k]
                if e + d > f:  # only the part above the unlendable floor reaches the parent
                    nxt.append((k, d if e >= f else e + d - f))
            if not nxt:
                return None
            delta = nxt
        er, cap = eu[ROOT], self.cap
        for k, d in delta:
            if er[k] + d > cap[k]:
                return _new_block(Block, (CAPACITY, ROOT, k, d))
        return None

    def admit(self, q: int, req: Request) -> Block | None:
        """first_block and apply(+1) in one pass: when the request fits, add it and return None; otherwise change
        nothing and return the Block. (The admission hot path: the deltas computed by the check are reused.)"""
        for ua, la in self.limit_rows[q]:
            for k, r in req:
                if ua[k] + r > la[k]:
                    return self.first_block(q, req)  # rare: let the plain check say which quota blocks
        eu = self.eu
        delta: Request | list[tuple[int, int]] = req
        levels = []
        floored = self.floored_path[q]
        if floored:
            floor = self.floor
            for a in floored:
                ea, fa = eu[a], floor[a]
                levels.append((ea, delta))
                nxt = []
                for k, d in delta:
                    e, f = ea[k], fa[k]
                    if e + d > f:
                        nxt.append((k, d if e >= f else e + d - f))
                delta = nxt
                if not nxt:
                    break
        er = eu[ROOT]
        if delta:
            cap = self.cap
            for k, d in delta:
                if er[k] + d > cap[k]:
                    return _new_block(Block, (CAPACITY, ROOT, k, d))
            for k, d in delta:
                er[k] = er[k] + d
        for ea, dl in levels:
            for k, d in dl:
                ea[k] = ea[k] + d
        for ua in self.u_rows[q]:
            for k, r in req:
                ua[k] = ua[k] + r
        return None

    def plan(self, q: int, req: Request) -> AdmitPlan:
        """Precompiled rows for admitting and releasing ``req`` at quota ``q`` (a group's option or a running job):
        the limit checks and usage updates as flat (row, key, amount) lists, so the hot path runs one short loop
        each instead of nested loops over the path. Valid for the tree's lifetime (rows are mutated, never replaced)."""
        lchk = tuple((ua, la, k, r, a) for a, (ua, la) in zip(self.limited_path[q], self.limit_rows[q]) for k, r in req)
        adds = tuple((ua, k, r) for ua in self.u_rows[q] for k, r in req)
        return AdmitPlan(lchk, bool(self.floored_path[q]), req, adds)

    def admit_plan(self, q: int, p: AdmitPlan) -> Block | None:
        """admit() with a precompiled plan (same result, same changes)."""
        for ua, la, k, r, a in p.lchk:
            if ua[k] + r > la[k]:
                # the first limit in first_block()'s order (lchk follows the path, then the request)
                return _new_block(Block, (LIMIT, a, k, r))
        if p.floored:
            return self.admit(q, p.req)
        er, cap = self.eu[ROOT], self.cap
        req = p.req
        for k, r in req:
            if er[k] + r > cap[k]:
                return _new_block(Block, (CAPACITY, ROOT, k, r))
        for k, r in req:  # (not er[k] += r: compiled, that adds boxed ints, as Python objects)
            er[k] = er[k] + r
        for ua, k, r in p.adds:
            ua[k] = ua[k] + r
        return None

    def release_plan(self, q: int, p: AdmitPlan) -> None:
        """apply(q, req, -1) with a precompiled plan."""
        if p.floored:
            self.apply(q, p.req, -1)
            return
        for ua, k, r in p.adds:
            ua[k] = ua[k] - r
        er = self.eu[ROOT]
        for k, r in p.req:
            er[k] = er[k] - r

    def take_plan(self, q: int, p: AdmitPlan) -> None:
        """apply(q, req, +1) with a precompiled plan (no checks)."""
        if p.floored:
            self.apply(q, p.req, 1)
            return
        for ua, k, r in p.adds:
            ua[k] = ua[k] + r
        er = self.eu[ROOT]
        for k, r in p.req:
            er[k] = er[k] + r

    def fits_when_idle(self, q: int, req: Request) -> bool:
        """Would ``req`` fit if nothing at all were running? False means it can never run with this configuration
        (a limit or the capacity is smaller than the request, or other quotas' unlendable guarantees are in the way)."""
        lim, eu, floor = self.lim, self.idle_eu, self.floor
        for a in self.limited_path[q]:
            la = lim[a]
            for k, r in req:
                if r > la[k]:
                    return False
        delta: Request | list[tuple[int, int]] = req
        for a in self.floored_path[q]:
            ea, fa = eu[a], floor[a]
            delta = [(k, d if ea[k] >= fa[k] else ea[k] + d - fa[k]) for k, d in delta if ea[k] + d > fa[k]]
            if not delta:
                return True
        er, cap = eu[ROOT], self.cap
        for k, d in delta:
            if er[k] + d > cap[k]:
                return False
        return True

    def apply(self, q: int, req: Request, sign: int) -> None:
        """Add (sign=+1) or remove (sign=-1) a job's usage along its path, keeping u and eu consistent."""
        u, eu, floor = self.u, self.eu, self.floor
        for a in self.path[q]:
            ua = u[a]
            for k, r in req:
                ua[k] = ua[k] + sign * r
        ur = u[ROOT]
        for k, r in req:
            ur[k] = ur[k] + sign * r
        delta = [(k, sign * r) for k, r in req]
        for a in self.floored_path[q]:
            ea, fa = eu[a], floor[a]
            nxt = []
            for k, d in delta:
                e, f = ea[k], fa[k]
                old = max(f, e)
                e += d
                ea[k] = e
                new = max(f, e)
                if new != old:
                    nxt.append((k, new - old))
            if not nxt:
                return
            delta = nxt
        er = eu[ROOT]
        for k, d in delta:
            er[k] = er[k] + d

    # -- borrowing ------------------------------------------------------------------------------------------------
    def borrow_class_and_share(self, q: int, req: Request) -> tuple[int, float]:
        """(0, 0.0) when admitting ``req`` keeps quota ``q`` within its guarantee on every key it specifies;
        otherwise (1, weighted dominant share of what it would borrow): max over keys of borrowed / capacity,
        divided by the quota's weight (Kueue fair sharing; a weight of 0 always sorts last)."""
        spec = self.spec_keys[q]
        if not spec:
            return _WITHIN
        uq, gq, inv = self.u[q], self.g[q], self.inv_cap
        share = -1.0
        for k, r in req:
            if k in spec and uq[k] + r > gq[k]:
                s = (uq[k] + r - gq[k]) * inv[k]
                if s > share:  # noqa: PLR1730 - hot loop: on CPython a comparison is ~5x cheaper than max()
                    share = s
        if share < 0:
            return _WITHIN
        return 1, (share * self.inv_weight[q] if share > 0 else 0.0)  # (0 * inf would be NaN for weight 0)

    def within_guarantee(self, q: int, req: Request) -> bool:
        """True when ``req`` fits inside ``q``'s own guarantee on every key it specifies, and at least one requested
        key carries a guarantee: the condition to reclaim lent capacity."""
        spec, uq, gq = self.spec_keys[q], self.u[q], self.g[q]
        guaranteed = False
        for k, r in req:
            if k in spec:
                if uq[k] + r > gq[k]:
                    return False
                if gq[k] > 0:
                    guaranteed = True
        return guaranteed

    def fits_guarantee_alone(self, q: int, req: Request) -> bool:
        """within_guarantee() if ``q`` used nothing: the request alone fits q's guarantee on every key q specifies,
        and one of them carries a guarantee."""
        spec, gq = self.spec_keys[q], self.g[q]
        guaranteed = False
        for k, r in req:
            if k in spec:
                if r > gq[k]:
                    return False
                if gq[k] > 0:
                    guaranteed = True
        return guaranteed

    def guarantee_room(self, q: int, req: Request) -> tuple[tuple[tuple[int, int], ...], bool]:
        """((key, guarantee - amount) for the keys of ``req`` that ``q`` specifies, whether one of them carries a
        guarantee). Guarantees never change within a tree, so a caller keeps this per (quota, request): then
        ``within_guarantee(q, req)`` is ``guaranteed and u[q][k] <= room`` on every pair, and
        ``borrow_class_and_share(q, req)[0]`` is 0 exactly when ``u[q][k] <= room`` on every pair."""
        spec, gq = self.spec_keys[q], self.g[q]
        room = tuple((k, gq[k] - r) for k, r in req if k in spec)
        return room, any(gq[k] > 0 for k, _ in room)

    def is_borrowing(self, q: int, keys: Iterable[int]) -> bool:
        spec, uq, gq = self.spec_keys[q], self.u[q], self.g[q]
        for k in keys:
            if k in spec and uq[k] > gq[k]:
                return True
        return False

    def borrows_up_to(self, v: int, keys: Iterable[int], stop: int) -> bool:
        """Does every quota from ``v`` up to (excluding) ``stop`` use more than its guarantee on one of ``keys``?
        (Necessary for any job of ``v`` to be reclaimable: otherwise removing it would push one below.)"""
        u, g = self.u, self.g
        for a in self.path[v]:
            if a == stop:
                return True
            ua, ga = u[a], g[a]
            for k in keys:
                if ua[k] > ga[k]:
                    break
            else:
                return False
        return True

    def removable_without_dropping_below_guarantee(self, v: int, req: Sequence[tuple[int, int]], stop: int) -> bool:
        """Would removing ``req`` from quota ``v`` keep every quota from ``v`` up to (excluding) ``stop`` at or above
        its guarantee? ("preemption never pushes a quota below its guarantee")."""
        u, g = self.u, self.g
        for a in self.path[v]:
            if a == stop:
                return True
            ua, ga = u[a], g[a]
            for k, x in req:
                if ua[k] - x < ga[k]:
                    return False
        return True
