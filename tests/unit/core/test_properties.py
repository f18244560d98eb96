"""Properties over random trees, pools and event sequences: whatever happens, no limit on any path is exceeded, no
pool holds more than its capacity, no device is oversubscribed, and the state's bookkeeping matches the decisions."""

from collections import defaultdict

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from allotment.core.admission import SchedulerState
from allotment.core.model import Admit, Preempt, PreemptReason, QueuedJob, SchedulerConfig
from allotment.core.quantity import Quantity
from allotment.core.quota_tree import QuotaLimits, QuotaSpec, validate_tree

POOLS = ("p1", "p2")
GPU_SIZES = (100, 300, 500, 1000, 2000, 3000)


@st.composite
def trees(draw):
    """A cohort with 2-4 children plus an independent top-level quota; random guarantees, limits, policies."""
    specs = []
    cohort_g = {p: draw(st.integers(0, 6)) * 1000 for p in POOLS}
    specs.append(QuotaSpec("cohort", resources={(p, "gpu"): QuotaLimits(Quantity(g)) for p, g in cohort_g.items()}))
    left = dict(cohort_g)
    for i in range(draw(st.integers(2, 4))):
        resources = {}
        for p in POOLS:
            g = draw(st.integers(0, left[p] // 1000)) * 1000
            left[p] -= g
            limit = draw(st.one_of(st.none(), st.integers(g // 1000, 8).map(lambda n: n * 1000)))
            lending = draw(st.one_of(st.none(), st.integers(0, g // 1000).map(lambda n: n * 1000)))
            resources[(p, "gpu")] = QuotaLimits(
                Quantity(g), Quantity.UNLIMITED if limit is None else Quantity(limit),
                None if lending is None else Quantity(lending),
            )
        specs.append(QuotaSpec(
            f"q{i}", "cohort", weight=draw(st.sampled_from([0.5, 1.0, 2.0])), resources=resources,
            reclaim=draw(st.sampled_from(["never", "lower_priority", "any"])),
            within_quota_preemption=draw(st.sampled_from(["never", "lower_priority"])),
            min_runtime_s=draw(st.sampled_from([0.0, 5.0])),
        ))
    specs.append(QuotaSpec("solo", resources={("p1", "gpu"): QuotaLimits(Quantity(0), Quantity(draw(st.integers(0, 6)) * 1000))},
                           child_preemption=draw(st.booleans())))
    child_preemption = draw(st.booleans())
    specs[0] = QuotaSpec("cohort", resources=specs[0].resources, child_preemption=child_preemption)
    assert validate_tree(specs) == []
    return specs


def pools_of(draw):
    from allotment.core.model import Device, Pool

    return [Pool(p, tuple(Device(f"{p}-d{i}", node=f"{p}-n{i // 2}") for i in range(draw(st.integers(0, 6)))))
            for p in POOLS]


events = st.lists(
    st.one_of(
        st.tuples(st.just("submit"), st.sampled_from(["cohort", "q0", "q1", "q2", "q3", "solo"]),
                  st.sampled_from(GPU_SIZES), st.sampled_from([0, 100, 200]),
                  st.sampled_from([("p1",), ("p2",), ("p1", "p2"), ("p2", "p1")])),
        st.tuples(st.just("cycle"), st.integers(1, 10)),
        st.tuples(st.just("finish"), st.integers(0, 1000)),
        st.tuples(st.just("cancel"), st.integers(0, 1000)),
    ),
    max_size=40,
)


def check_invariants(state, specs, pools, running):
    by_id = {s.id: s for s in specs}
    usage = defaultdict(int)  # (quota, pool) -> raw gpu of its subtree
    per_pool = defaultdict(int)
    per_device = defaultdict(int)
    for job in running.values():
        q = job["quota"]
        while q is not None:
            usage[(q, job["pool"])] += job["gpu"]
            q = by_id[q].parent_id
        per_pool[job["pool"]] += job["gpu"]
        for dev, amount in job["devices"]:
            per_device[dev] += amount.raw
    for (q, pool), used in usage.items():
        lim = by_id[q].resources.get((pool, "gpu"))
        if lim is not None:
            assert used <= lim.limit.raw, f"limit of {q} exceeded in {pool}"
        assert state.quota_usage(q)[(pool, "gpu")].raw == used, "state usage drifted from the decisions"
    for pool in pools:
        capacity = len(pool.devices) * 1000
        assert per_pool[pool.name] <= capacity
        free = state.device_free(pool.name)
        for dev in pool.devices:
            assert per_device[dev.id] <= 1000, "device oversubscribed"
            assert free[dev.id].raw == 1000 - per_device[dev.id]
    assert sorted(state.running_ids()) == sorted(running)


def check_reclaim_respects_guarantees(specs, state, before, decisions, running):
    """Preemption never pushes a quota below its guarantee: a quota that lost jobs to reclaim (and to nothing else)
    and was at or above its guarantee before the cycle is still at or above it after."""
    by_id = {s.id: s for s in specs}
    reclaimed, other = set(), set()
    started = {d.job_id: {"quota": d.quota, "pool": d.pool} for d in decisions if isinstance(d, Admit)}
    for d in decisions:
        if isinstance(d, Preempt):
            victim = running[d.victim_id] if d.victim_id in running else started[d.victim_id]  # (same cycle)
            (reclaimed if d.reason == PreemptReason.RECLAIM else other).add((victim["quota"], victim["pool"]))
    for quota, pool in reclaimed - other:
        lim = by_id[quota].resources.get((pool, "gpu"))
        if lim is None:
            continue
        g = lim.guarantee.raw
        if before[(quota, pool)] >= g:
            assert state.quota_usage(quota)[(pool, "gpu")].raw >= g, f"reclaim pushed {quota} below its guarantee"


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_random_event_sequences_keep_every_invariant(data):
    specs = data.draw(trees())
    pools = pools_of(data.draw)
    state = SchedulerState(specs, pools, config=SchedulerConfig(starvation_age_s=data.draw(st.sampled_from([None, 3.0]))))
    running: dict[str, dict] = {}
    queued: list[str] = []
    submitted: dict[str, QueuedJob] = {}
    now, seq = 0.0, 0
    for event in data.draw(events):
        if event[0] == "submit":
            _, q, size, priority, pool_order = event
            seq += 1
            jid = f"j{seq}"
            submitted[jid] = QueuedJob(jid, q, priority, seq, now, {"gpu": Quantity(size)}, pool_order)
            state.add_job(submitted[jid])
            queued.append(jid)
        elif event[0] == "cycle":
            now += event[1]
            before = {(q.id, p): state.quota_usage(q.id)[(p, "gpu")].raw for q in specs for p in POOLS}
            decisions = state.cycle(now)
            check_reclaim_respects_guarantees(specs, state, before, decisions, running)
            for d in decisions:
                if isinstance(d, Preempt):
                    assert d.victim_id in running
                    del running[d.victim_id]
                elif isinstance(d, Admit):
                    gpu = d.requests["gpu"].raw
                    assert sum(a.raw for _, a in d.devices) == gpu
                    if gpu < 1000:
                        assert len(d.devices) == 1
                    else:
                        assert all(a.raw == 1000 for _, a in d.devices)
                    running[d.job_id] = {"quota": d.quota, "pool": d.pool, "gpu": gpu, "devices": d.devices}
                    queued.remove(d.job_id)
            check_invariants(state, specs, pools, running)
        elif event[0] == "finish" and running:
            jid = sorted(running)[event[1] % len(running)]
            assert state.job_finished(jid)
            del running[jid]
        elif event[0] == "cancel" and queued:
            jid = queued.pop(event[1] % len(queued))
            assert state.remove_job(jid)
    check_invariants(state, specs, pools, running)

    # Liveness: once nothing runs, a cycle admits something whenever some queued job fits an idle cluster
    # (holds for guarantees or starving jobs must never block everyone).
    for jid in list(running):
        state.job_finished(jid)
        del running[jid]
    now += 1000.0
    if not any(isinstance(d, Admit) for d in state.cycle(now)):
        for jid in queued:
            fresh = SchedulerState(specs, pools)
            fresh.add_job(submitted[jid])
            assert not any(isinstance(d, Admit) for d in fresh.cycle(now)), f"{jid} fits an idle cluster but waits"
