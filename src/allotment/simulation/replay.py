"""The replay driver: trace jobs through `core.admission.SchedulerState` in virtual time, and what came of them.

Time moves from event to event: a submission, the end of a run, or the core's own `next_due` (a preemption delay
ending, a job ageing past the starvation limit), so nothing that core schedules for later fires late on a sparse
trace. At each such instant the submissions and ends are applied, one cycle runs, and its decisions are applied as
the scheduler loop would: an admitted job starts at once and runs its duration; a preempted job loses the work of its
run so far and is queued again with its original submission time (a new submission order, as the loop requeues it).
A job refused for good (unknown quota or pool, a priority class its quota does not allow, a request core cannot
take) is taken out and counted. The quota tree's GPU- and CPU-hour budgets hold jobs at the gate as the real loop
does (simulation/budgets.py): a job held there counts as queueing until its budget's period renews it.

Measures, per quota (jobs of that quota):
- queueing: the time a job spent queued in all, from submission to its first start plus every wait after a
  preemption (mean, p50, p95, p99 over the jobs that finished); JCT: submission to the end of its last run;
- jobs run (finished), still queued at the end (they never fit), refused; preemptions (in all and the most of any one
  job) and GPU-hours lost (the GPU time of runs cut by preemption); GPU-hours used (finished runs and lost ones);
- per budget: the hours spent in all and the most in one period, the periods it ran out in, the jobs it held;
- time below guarantee: per GPU guarantee of the quota, the time during which the quota (with its sub-quotas) used
  less than its guarantee while one of its queued jobs would have fit in what is left of it; in all, the part of
  each such spell beyond `grace_s`, and the longest spell.
Per pool: GPU utilisation from the first submission to the end of the replay (the last run's end), and over time
in `series` equal steps of that span when asked (for the console's charts).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from heapq import heappop, heappush
from math import ceil, inf

from allotment.core.admission import SchedulerState
from allotment.core.model import Admit, Preempt, QueuedJob, Wait, WaitCode
from allotment.core.quantity import Quantity
from allotment.core.resources import ANY_POOL
from allotment.simulation.budgets import Spend
from allotment.simulation.config import SimConfig
from allotment.simulation.report import differences
from allotment.simulation.traces import TraceJob

# Waits that no later event can lift: the job is taken out of the replay and counted as refused.
REFUSED = frozenset({WaitCode.UNKNOWN_QUOTA, WaitCode.UNKNOWN_POOL, WaitCode.UNKNOWN_PROFILE,
                     WaitCode.INVALID_REQUEST, WaitCode.PRIORITY_CLASS_NOT_ALLOWED})
PROGRESS_EVERY = 4096

# QueuedJob is a frozen dataclass: its __init__ sets each field through object.__setattr__, about 3 µs a job, a
# twentieth of a replay. The replay builds its jobs by the slots' own setters instead (the same values in every field;
# tests/unit/simulation compare it with the constructor, field list included).
_QUEUED_JOB_FIELDS = ("id", "quota", "priority", "seq", "submitted_at", "requests", "pools", "profile",
                      "priority_class", "nodes", "best_fit")
(_set_id, _set_quota, _set_priority, _set_seq, _set_submitted_at, _set_requests, _set_pools, _set_profile,
 _set_priority_class, _set_nodes, _set_best_fit) = (QueuedJob.__dict__[f].__set__ for f in _QUEUED_JOB_FIELDS)
_new_object = object.__new__


def queued_job(job_id: str, quota: str, priority: int, seq: int, submitted_at: float, requests: dict[str, Quantity],
               pools: tuple[str, ...], priority_class: str | None, nodes: int) -> QueuedJob:
    """QueuedJob(job_id, quota, priority, seq, submitted_at, requests, pools, None, priority_class, nodes), built
    without the frozen dataclass's __init__ (see _QUEUED_JOB_FIELDS)."""
    job = _new_object(QueuedJob)
    _set_id(job, job_id)
    _set_quota(job, quota)
    _set_priority(job, priority)
    _set_seq(job, seq)
    _set_submitted_at(job, submitted_at)
    _set_requests(job, requests)
    _set_pools(job, pools)
    _set_profile(job, None)
    _set_priority_class(job, priority_class)
    _set_nodes(job, nodes)
    _set_best_fit(job, False)
    return job


class _Watch:
    """One GPU guarantee of one quota: how much of it is used, and the sizes of the queued jobs that could use it."""

    __slots__ = ("below_since", "beyond", "guarantee", "longest", "pool", "queued", "quota", "spells", "total",
                 "used")

    def __init__(self, quota: str, pool: str, guarantee: int) -> None:
        self.quota, self.pool, self.guarantee = quota, pool, guarantee
        self.used = 0
        self.queued: dict[int, int] = {}  # milli-GPU size -> queued jobs of that size
        self.below_since: float | None = None
        self.total = self.beyond = self.longest = 0.0
        self.spells = 0

    def update(self, now: float, grace: float) -> None:
        # Starved: below the guarantee with a queued job that fits in what is left of it.
        room = self.guarantee - self.used
        starved = False
        if room > 0:
            for size, n in self.queued.items():
                if n and size <= room:
                    starved = True
                    break
        if starved and self.below_since is None:
            self.below_since = now
        elif not starved and self.below_since is not None:
            self.close(now, grace)

    def close(self, now: float, grace: float) -> None:
        spell = now - self.below_since  # type: ignore[operator]
        self.below_since = None
        self.spells += 1
        self.total += spell
        self.beyond += max(0.0, spell - grace)
        self.longest = max(self.longest, spell)


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of sorted values (0 for none)."""
    if not values:
        return 0.0
    return values[max(0, min(len(values) - 1, ceil(p / 100.0 * len(values)) - 1))]


def replay(cfg: SimConfig, jobs: Sequence[TraceJob], progress: Callable[[float], None] | None = None,
           series: int = 0, grace_s: float = 60.0) -> dict:
    """Replay ``jobs`` (sorted by submission) against ``cfg``; returns the measures as one JSON-ready object."""
    cpu0, wall0 = time.process_time(), time.perf_counter()
    state = SchedulerState(cfg.quotas, cfg.pools, cfg.profiles, config=cfg.scheduler)
    n = len(jobs)
    parent = {s.id: s.parent_id for s in cfg.quotas}
    capacity = {p.name: sum(d.capacity.raw for d in p.devices) for p in cfg.pools}
    watches: list[_Watch] = [_Watch(s.id, k.pool, lim.guarantee.raw) for s in cfg.quotas
                             for k, lim in s.resources.items() if k.resource == "gpu" and lim.guarantee.raw > 0]
    by_quota: dict[str, list[_Watch]] = {}
    for w in watches:
        by_quota.setdefault(w.quota, []).append(w)
    watch_cache: dict[tuple[str, tuple[str, ...]], tuple[_Watch, ...]] = {}

    def watches_of(quota: str, pools: tuple[str, ...]) -> tuple[_Watch, ...]:
        """The guarantees a job of ``quota`` that may use ``pools`` counts against (its quota's and ancestors')."""
        key = (quota, pools)
        found = watch_cache.get(key)
        if found is None:
            out, q, seen = [], quota, set()
            while q is not None and q not in seen:
                seen.add(q)
                out.extend(w for w in by_quota.get(q, ()) if w.pool == ANY_POOL or w.pool in pools)
                q = parent.get(q)
            found = watch_cache[key] = tuple(out)
        return found

    first = jobs[0].submit if n else 0.0
    spends = [Spend(q, b, first) for q, bs in cfg.budgets.items() for b in bs]
    spends_by_quota: dict[str, list[Spend]] = {}
    for sp in spends:
        spends_by_quota.setdefault(sp.quota, []).append(sp)
    spend_cache: dict[str, tuple[Spend, ...]] = {}

    def spends_of(quota: str) -> tuple[Spend, ...]:
        """The budgets a job of ``quota`` counts against: its quota's and every ancestor's."""
        found = spend_cache.get(quota)
        if found is None:
            out, q, seen = [], quota, set()
            while q is not None and q not in seen:
                seen.add(q)
                out.extend(spends_by_quota.get(q, ()))
                q = parent.get(q)
            found = spend_cache[quota] = tuple(out)
        return found

    def uses(i: int, sp: Spend) -> int:
        return jobs[i].gpu if sp.budget.resource == "gpu" else jobs[i].cpu

    used = dict.fromkeys(capacity, 0)
    changes: dict[str, list[tuple[float, int]]] = {p: [] for p in capacity}  # (time, milli-GPU in use from then)

    queued_since = [0.0] * n
    waited = [0.0] * n
    started = [-1.0] * n
    finished = [-1.0] * n
    preempted = [0] * n
    lost = [0.0] * n  # milli-GPU-seconds
    epoch = [0] * n
    pools_of: list[tuple[str, ...]] = [()] * n
    queue_watches: list[tuple[_Watch, ...]] = [()] * n  # the guarantees a job counts against while queued
    run_watches: dict[tuple[str, str], tuple[_Watch, ...]] = {}  # (quota, pool) -> those a run there counts against
    placed: list[str | None] = [None] * n
    refused: dict[int, str] = {}
    prio = cfg.priorities
    seq = 0
    finishes: list[tuple[float, int, int]] = []
    nxt = 0
    prev = first
    dirty: set[_Watch] = set()
    in_core: set[int] = set()  # queued in the core (not held at the budget gate)

    def enter(i: int, now: float) -> None:
        """A job is queued (submitted, or preempted and requeued): held if a budget on its path is spent."""
        queued_since[i] = now
        if spends:
            for sp in spends_of(jobs[i].quota):
                if uses(i, sp) and sp.spent():
                    sp.held.append(i)
                    sp.jobs_held += 1
                    return
        queue(i, now)

    # Trace jobs repeat a few shapes and classes: each request mapping and class priority is built once (core copies
    # a job's requests as it takes the job, so one mapping can serve every job of a shape).
    request_cache: dict[tuple[int, int, int, int], dict[str, Quantity]] = {}
    class_cache: dict[str | None, tuple[str | None, int]] = {}

    def queue(i: int, now: float) -> None:
        nonlocal seq
        if spends:  # only budgets look at it (gate)
            in_core.add(i)
        j = jobs[i]
        seq += 1
        found = class_cache.get(j.priority_class)
        if found is None:
            cls = j.priority_class or cfg.default_class
            found = class_cache[j.priority_class] = (cls, prio.get(cls, 0) if cls else 0)
        per = j.nodes  # a gang asks core for each node's share
        shape = (j.gpu, j.cpu, j.memory, per)
        requests = request_cache.get(shape)
        if requests is None:
            requests = request_cache[shape] = {r: Quantity(v // per) for r, v in zip(("gpu", "cpu", "memory"), shape)
                                               if v}
        pools = pools_of[i]
        state.add_job(queued_job(str(i), j.quota, found[1], seq, j.submit, requests, pools, found[0], per))
        gpu = j.gpu
        if gpu:
            for w in queue_watches[i]:
                q = w.queued
                q[gpu] = q.get(gpu, 0) + 1
                dirty.add(w)

    def unqueue(i: int) -> None:
        if spends:
            in_core.discard(i)
        j = jobs[i]
        gpu = j.gpu
        if gpu:
            for w in queue_watches[i]:
                w.queued[gpu] -= 1
                dirty.add(w)

    now = first

    def hold(i: int, pool: str, sign: int) -> None:
        j = jobs[i]
        gpu = sign * j.gpu
        if gpu:
            used[pool] = amount = used[pool] + gpu
            changes[pool].append((now, amount))
            found = run_watches.get((j.quota, pool))
            if found is None:
                found = run_watches[(j.quota, pool)] = watches_of(j.quota, (pool,))
            for w in found:
                w.used += gpu
                dirty.add(w)
        if spends:
            for sp in spends_of(j.quota):
                if uses(i, sp):
                    sp.change(now, sign * uses(i, sp))

    def gate(now: float) -> None:
        """Budgets that ran out hold their subtree's queued jobs; budgets renewed by a new period let theirs go."""
        for sp in spends:
            sp.advance(now)
            if sp.spent():
                if sp.closed:
                    continue  # nothing enters the core past a spent budget (enter): one sweep is enough
                sp.closed = True
                for i in [i for i in in_core if uses(i, sp) and sp in spends_of(jobs[i].quota)]:
                    if state.remove_job(str(i)):
                        unqueue(i)
                        sp.held.append(i)
                        sp.jobs_held += 1
            else:
                sp.closed = False
            if sp.held and not sp.spent():
                held, sp.held = sp.held, []
                for i in held:
                    since = queued_since[i]
                    enter(i, now)
                    queued_since[i] = since  # the hold counts as queueing

    def budget_due() -> float | None:
        """The next instant a budget runs out (at the current rates) or a budget holding jobs is renewed."""
        times = [t for sp in spends for t in (sp.runs_out_at(), sp.end if sp.held else None) if t is not None]
        return min(times, default=None)

    pools_cache: dict[tuple[str, bool, str | None], tuple[str, ...]] = {}  # (quota, asks for GPUs, pin) -> pools
    events = 0
    while True:
        now = jobs[nxt].submit if nxt < n else inf
        if finishes and finishes[0][0] < now:
            now = finishes[0][0]
        due = state.next_due
        if due is not None and prev < due < now:
            now = due
        if spends:
            due = budget_due()
            if due is not None and prev < due < now:
                now = due
        if now == inf:
            break
        prev = now
        while finishes and finishes[0][0] <= now:
            _, i, ep = heappop(finishes)
            if ep == epoch[i] and finished[i] < 0:
                state.job_finished(str(i))
                finished[i] = now
                hold(i, placed[i], -1)  # type: ignore[arg-type]
        while nxt < n and jobs[nxt].submit <= now:
            j = jobs[nxt]
            where = (j.quota, j.gpu > 0, j.pool)
            pools = pools_cache.get(where)
            if pools is None:
                pools = pools_cache[where] = cfg.pools_for(j.quota, j.gpu, j.pool)
            pools_of[nxt] = pools
            queue_watches[nxt] = watches_of(j.quota, pools)
            enter(nxt, now)
            nxt += 1
        if spends:
            gate(now)
        for d in state.cycle(now):
            if type(d) is Admit:
                i = int(d.job_id)
                started[i] = now
                waited[i] += now - queued_since[i]
                placed[i] = pool = d.pool
                j = jobs[i]
                gpu = j.gpu
                if gpu:  # unqueue(i), inlined (every admission)
                    for w in queue_watches[i]:
                        w.queued[gpu] -= 1
                        dirty.add(w)
                if spends:
                    in_core.discard(i)
                hold(i, pool, 1)
                heappush(finishes, (now + j.duration, i, epoch[i]))
            elif type(d) is Preempt:
                i = int(d.victim_id)
                preempted[i] += 1
                epoch[i] += 1
                lost[i] += jobs[i].gpu * (now - started[i])
                hold(i, placed[i], -1)  # type: ignore[arg-type]
                enter(i, now)
            elif type(d) is Wait and d.code in REFUSED:
                i = int(d.job_id)
                if i not in refused and state.remove_job(d.job_id):
                    refused[i] = d.code
                    unqueue(i)
        for w in dirty:
            w.update(now, grace_s)
        dirty.clear()
        events += 1
        if progress is not None and events % PROGRESS_EVERY == 0:
            progress(nxt / n)
    end = prev
    for w in watches:
        if w.below_since is not None:
            w.close(end, grace_s)
    if progress is not None:
        progress(1.0)
    pools = _utilisation(changes, capacity, first, end, series)
    held = sum(len(sp.held) for sp in spends)
    budgets: dict[str, list[dict]] = {}
    for sp in spends:
        budgets.setdefault(sp.quota, []).append(sp.report(end))
    out = _measures(cfg, jobs, finished, waited, preempted, lost, refused, watches, pools,
                    time.process_time() - cpu0, time.perf_counter() - wall0, first, end)
    for q, rows in budgets.items():
        out["quotas"][q]["budgets"] = rows
    out["totals"]["held_at_end"] = held
    return out


def _utilisation(changes: dict[str, list[tuple[float, int]]], capacity: dict[str, int], first: float, end: float,
                 series: int) -> dict[str, dict]:
    """Per pool: the share of its GPUs in use from the first submission to the end of the replay, and the same
    over ``series`` equal steps of that span."""
    span = end - first
    out = {}
    for name, points in changes.items():
        cap = capacity[name]
        busy = 0.0
        steps = [0.0] * series
        width = span / series if series and span > 0 else 0.0
        for k, (t, amount) in enumerate(points):
            t_next = points[k + 1][0] if k + 1 < len(points) else end
            if not amount or t_next <= t:
                continue
            busy += amount * (t_next - t)
            if not width:
                continue
            b0, b1 = (min(int((x - first) / width), series - 1) for x in (t, t_next))
            for b in range(b0, b1 + 1):  # the steps this stretch overlaps
                lo = t if b == b0 else first + b * width
                hi = t_next if b == b1 else first + (b + 1) * width
                if hi > lo:
                    steps[b] += amount * (hi - lo)
        entry = {"gpus": cap / 1000, "utilisation": round(busy / (cap * span), 4) if cap and span > 0 else 0.0}
        if series:
            entry["series"] = [round(v / (cap * width), 4) if cap and width else 0.0 for v in steps]
        out[name] = entry
    return out


def _stats(values: list[float]) -> dict:
    values.sort()
    return {"mean": round(sum(values) / len(values), 1) if values else 0.0,
            "p50": round(percentile(values, 50), 1), "p95": round(percentile(values, 95), 1),
            "p99": round(percentile(values, 99), 1)}


def _measures(cfg, jobs, finished, waited, preempted, lost, refused, watches, pools, cpu_s, wall_s, first,
              end) -> dict:
    per: dict[str, dict] = {}
    names = [s.id for s in cfg.quotas]
    names.extend(sorted({j.quota for j in jobs} - set(names)))  # quotas the configuration lacks: jobs refused
    acc = {q: {"queue": [], "jct": [], "submitted": 0, "queued_at_end": 0, "preemptions": 0, "max_preemptions": 0,
               "lost": 0.0, "used": 0.0} for q in names}
    all_queue: list[float] = []
    for i, j in enumerate(jobs):
        a = acc[j.quota]
        a["submitted"] += 1
        a["preemptions"] += preempted[i]
        a["max_preemptions"] = max(a["max_preemptions"], preempted[i])
        a["lost"] += lost[i]
        a["used"] += lost[i]
        if finished[i] >= 0:
            a["queue"].append(waited[i])
            all_queue.append(waited[i])
            a["jct"].append(finished[i] - j.submit)
            a["used"] += j.gpu * j.duration
        elif i not in refused:
            a["queued_at_end"] += 1
    refused_by: dict[str, dict[str, int]] = {}
    for i, code in refused.items():
        counts = refused_by.setdefault(jobs[i].quota, {})
        counts[code] = counts.get(code, 0) + 1
    below: dict[str, list[dict]] = {}
    for w in watches:
        below.setdefault(w.quota, []).append({
            "pool": "all pools" if w.pool == ANY_POOL else w.pool, "guarantee_gpu": w.guarantee / 1000,
            "seconds": round(w.total, 1), "beyond_grace_s": round(w.beyond, 1), "longest_s": round(w.longest, 1),
            "spells": w.spells})
    hour = 1000 * 3600.0
    for q in names:
        a = acc[q]
        per[q] = {"jobs_submitted": a["submitted"], "jobs_run": len(a["jct"]), "queued_at_end": a["queued_at_end"],
                  "refused": refused_by.get(q, {}), "queueing_s": _stats(a["queue"]), "jct_s": _stats(a["jct"]),
                  "preemptions": a["preemptions"], "max_preemptions_per_job": a["max_preemptions"],
                  "gpu_hours_lost": round(a["lost"] / hour, 1), "gpu_hours_used": round(a["used"] / hour, 1),
                  "below_guarantee": below.get(q, [])}
    queue_all = sorted(all_queue)
    totals = {
        "jobs": len(jobs), "jobs_run": sum(1 for f in finished if f >= 0), "refused": len(refused),
        "queued_at_end": sum(a["queued_at_end"] for a in acc.values()),
        "queueing_s": _stats(queue_all),
        "preemptions": sum(preempted), "max_preemptions_per_job": max(preempted, default=0),
        "gpu_hours_lost": round(sum(lost) / hour, 1),
        "below_guarantee_beyond_grace_s": round(sum(w.beyond for w in watches), 1),
        "below_guarantee_longest_s": round(max((w.longest for w in watches), default=0.0), 1),
        "cpu_s": round(cpu_s, 2), "wall_s": round(wall_s, 2),
    }
    return {"window": {"from": first, "to": jobs[-1].submit if jobs else first, "end": end}, "totals": totals,
            "quotas": per, "pools": pools}


def run_replays(cfg: SimConfig, against: SimConfig | None, jobs: list[TraceJob],
                progress: Callable[[float], None] | None = None, series: int = 0) -> dict:
    """One replay, or two side by side with their differences (``against``). Progress runs 0..1 over both."""
    if against is None:
        return {"config": replay(cfg, jobs, progress, series)}

    def half(offset: float) -> Callable[[float], None] | None:
        return None if progress is None else (lambda f: progress(offset + f / 2))

    first = replay(cfg, jobs, half(0.0), series)
    second = replay(against, jobs, half(0.5), series)
    return {"config": first, "against": second, "differences": differences(first, second)}
