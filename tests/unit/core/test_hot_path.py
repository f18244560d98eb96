"""The admission hot path computes some values in shortcut form; each shortcut must equal the plain definition."""

import random

import pytest
from core_testkit import gpu_pool, job, quota

from allotment.core.admission import SchedulerState
from allotment.core.model import Admit, Wait, new_wait
from allotment.core.order_keys import job_bits, order_key, rank_bits
from allotment.core.queues import TOKEN_MASK, QueuedRec, RunningRec


def test_cycle_builds_admits_and_running_records_like_their_constructors():
    """_admit builds Admit and RunningRec with slot stores, not their __init__: every field is set, the values equal
    the plain constructor's, and a running record has every slot (an unset slot raises AttributeError)."""
    state = SchedulerState([quota("q", gpu_in={"a": 8})], [gpu_pool("a", 4)])
    state.add_job(job("j1", "q", gpus=2, pools=("a",)))
    state.add_job(job("j2", "q", gpus=0.5, pools=("a",)))
    admits = state.cycle(0.0)
    assert [type(d) for d in admits] == [Admit, Admit]
    for d in admits:
        assert d == Admit(d.job_id, d.quota, d.pool, d.requests, d.devices, d.preempted, d.nodes) and d.quota == "q"
        assert d.nodes == ("a-n0",)
    for run in state._running.values():
        values = {name: getattr(run, name) for name in RunningRec.__slots__}
        plain = RunningRec(run.id, run.quota, run.priority, run.started_at, run.pool, run.req, run.shares,
                           run.requests, run.plan, run.qp, run.keys, run.nodes, run.ncpu, run.nmem)
        assert values == {name: getattr(plain, name) for name in RunningRec.__slots__}


@pytest.mark.parametrize("fields", [("j1", "no_capacity", "pool p: 1 gpu requested"), ("j2", "pending", "")])
def test_fast_wait_equals_the_dataclass(fields):
    fast, plain = new_wait(*fields), Wait(*fields)
    assert type(fast) is Wait and fast == plain and repr(fast) == repr(plain) and hash(fast) == hash(plain)


@pytest.mark.parametrize("seed", range(5))
def test_queue_heap_integers_sort_like_priority_seq_token(seed):
    rng = random.Random(seed)
    recs = []
    for token in range(1, 200):
        priority = rng.choice([-(2**40), -5, 0, 0, 100, 200, 2**31, 2**40])
        seq = rng.choice([-(2**62), -1, 0, 0, 7, 2**62]) + rng.randrange(3)
        recs.append(QueuedRec(f"j{token}", priority, seq, 0.0, None, job_bits(priority, seq), token))
    by_int = sorted(recs, key=lambda r: (r.gkey << 64) | r.token)
    by_tuple = sorted(recs, key=lambda r: (-r.priority, r.seq, r.token))
    assert by_int == by_tuple
    assert all(((r.gkey << 64) | r.token) & TOKEN_MASK == r.token for r in recs)


@pytest.mark.parametrize("seed", range(8))
def test_order_key_shortcut_equals_order_key(seed):
    """StateBase._key (precomputed fields) == order_key(...) from borrow_class_and_share, as usage and time move."""
    rng = random.Random(seed)
    quotas = [quota("cohort", gpu_in={"a": 8, "b": 2}, cpu_in={"a": 32})]
    for i in range(4):
        quotas.append(quota(f"q{i}", "cohort", gpu_in={"a": (rng.randint(0, 2), 6)}, cpu_in={"a": rng.randint(0, 8)},
                            weight=rng.choice([0.0, 0.5, 1.0, 3.0])))
    state = SchedulerState(quotas, [gpu_pool("a", 8, nodes=2, cpu_total=32), gpu_pool("b", 4)])
    for n in range(60):
        state.add_job(job(f"j{n}", rng.choice(["cohort", "q0", "q1", "q2", "q3"]), gpus=rng.choice([0.5, 1, 2]),
                          cores=rng.choice([0, 1, 4]), pools=rng.choice([("a",), ("a", "b"), ("b", "a")]),
                          priority=rng.choice([0, 100, -3]), at=float(rng.randint(0, 50))))
    tree = state._tree
    for now in (0.0, 40.0, 4000.0):
        for group in list(state._groups.values()):
            rec = group.head()
            q = group.quota
            cls, share = tree.borrow_class_and_share(q, group.options[0].req)
            aged = state._age is not None and now - rec.submitted_at >= state._age
            expected = order_key(cls, aged, group.pool_rank, group.policy_rank, share, rec.priority, rec.seq)
            assert state._key(q, group, rec, now) == expected
            assert group.rank_bits == rank_bits(group.pool_rank, group.policy_rank)
        state.cycle(now)


def test_added_jobs_carry_order_key_fields_equal_to_job_bits():
    """add_job packs (priority, seq) inline: equal to order_keys.job_bits, clamping included, for extreme values."""
    from allotment.core.order_keys import NOT_AGED

    state = SchedulerState([quota("q", gpu_in={"a": 8})], [gpu_pool("a", 4)])
    cases = [(p, s) for p in (-(2**40), -5, 0, 100, 2**31 - 1, 2**31, 2**40) for s in (0, 7, 2**62, 2**64 + 3)]
    for n, (priority, seq) in enumerate(cases):
        state.add_job(job(f"j{n}", "q", gpus=1, pools=("a",), priority=priority, seq=seq))
        rec = state._queued[f"j{n}"]
        assert rec.low == rec.group.rank_bits | job_bits(priority, seq) | NOT_AGED


@pytest.mark.parametrize("cls", [0, 1])
@pytest.mark.parametrize("aged", [False, True])
def test_order_key_class_and_age_read_from_the_packed_key(cls, aged):
    """The cycle reads an order key's borrowing class (key >> CLASS_SHIFT, key >= BORROWS) and age (not key &
    NOT_AGED) straight from the integer: they must give back what order_key() packed, whatever the other fields."""
    from allotment.core.order_keys import BORROWS, CLASS_SHIFT, NOT_AGED

    for fields in [(0, 0, 0.0, 0, 0), (65535, 65535, 2.0**21, -(2**40), 2**64 - 1), (3, 1, 0.25, 300, 12345)]:
        key = order_key(cls, aged, *fields)
        assert key >> CLASS_SHIFT == cls
        assert (key >= BORROWS) == bool(cls)
        assert (not key & NOT_AGED) == aged


@pytest.mark.parametrize("seed", range(4))
def test_options_keep_whether_they_fit_the_guarantee_alone(seed):
    """Option.alone is UsageTree.fits_guarantee_alone(quota, req), computed once per shape (guarantees are fixed)."""
    rng = random.Random(seed)
    quotas = [quota("cohort", gpu_in={"a": 8, "b": 2}, cpu_in={"a": 32})]
    for i in range(4):
        quotas.append(quota(f"q{i}", "cohort", gpu_in={"a": (rng.randint(0, 2), 6)}, cpu_in={"a": rng.randint(0, 8)}))
    state = SchedulerState(quotas, [gpu_pool("a", 8, nodes=2, cpu_total=32), gpu_pool("b", 4)])
    for n in range(40):
        state.add_job(job(f"j{n}", rng.choice(["cohort", "q0", "q1", "q2", "q3"]), gpus=rng.choice([0.5, 1, 2, 4]),
                          cores=rng.choice([0, 1, 4, 16]), pools=rng.choice([("a",), ("a", "b"), ("b", "a")])))
    tree = state._tree
    seen = set()
    for group in state._groups.values():
        for opt in group.options:
            assert opt.alone == tree.fits_guarantee_alone(group.quota, opt.req)
            seen.add(opt.alone)
    assert seen == {True, False}


def test_a_cycle_with_nothing_queued_leaves_the_state_as_a_full_cycle_would():
    """cycle() with no job queued takes a short path (_idle_cycle): parked groups, deadlines and heap entries of jobs
    cancelled since are dropped, nothing is due, and the state then decides like a state that never had them."""
    from allotment.core.model import SchedulerConfig

    config = SchedulerConfig(starvation_age_s=30.0, preemption_delay_s=5.0)
    specs = [quota("a", gpu_in={"p": (2, 4)}, reclaim="any"), quota("b", gpu_in={"p": (2, 4)})]
    state = SchedulerState(specs, [gpu_pool("p", 4)], config=config)
    state.add_job(job("b1", "b", gpus=4, pools=("p",), at=0.0))
    assert [type(d) for d in state.cycle(0.0)] == [Admit]
    state.add_job(job("a1", "a", gpus=2, pools=("p",), at=1.0))  # blocked: reclaims once its delay ends
    state.add_job(job("a2", "a", gpus=1, pools=("p",), priority=5, at=1.0))
    state.cycle(1.0)
    assert state.next_due == 6.0
    assert state.remove_job("a1") and state.remove_job("a2")
    assert state.cycle(2.0) == [] and state.next_due is None
    assert state._gheap == [] and state._deadlines == []
    state.add_job(job("a3", "a", gpus=2, pools=("p",), at=3.0))
    fresh = SchedulerState(specs, [gpu_pool("p", 4)], config=config)
    fresh.add_job(job("b1", "b", gpus=4, pools=("p",), at=0.0))
    fresh.cycle(0.0)
    fresh.add_job(job("a3", "a", gpus=2, pools=("p",), at=3.0))
    for now in (3.0, 8.0, 9.0):
        assert state.cycle(now) == fresh.cycle(now)
        assert state.next_due == fresh.next_due
