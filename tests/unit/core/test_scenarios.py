"""Acceptance scenarios at the core level: ClearML's worked example, Alibaba PAI's quota tree, Kueue cohorts."""

import pytest
from core_testkit import admitted, cpu, cpu_pool, gpu, preempted, preemptions, waits

from allotment.core.admission import SchedulerState
from allotment.core.model import (
    Admit,
    Device,
    Pool,
    PreemptReason,
    Profile,
    QueuedJob,
    RunningJob,
    SchedulerConfig,
    Snapshot,
    WaitCode,
)
from allotment.core.quota_tree import QuotaLimits, QuotaSpec, ScaleError, scale

INFERENCE, TRAINING, INTERACTIVE = 300, 200, 100


# ---------------------------------------------------------------------------------------------------------------------
# 1. ClearML resource configuration, "Example Workflow"
def test_clearml_worked_example():
    pools = [
        Pool("Bare Metal", tuple(Device(f"bm{i}") for i in range(8)), profile_order=("4xGPU",)),
        Pool("H100", tuple(Device(f"h100-{i}") for i in range(8)), profile_order=("4xGPU",)),
    ]
    # Bare Metal first (pool precedence on the profile card); Dev above Research (the profile's policy priority)
    profile = Profile("4xGPU", {"gpu": gpu(4)}, ("Bare Metal", "H100"), policy_order=("Dev", "Research"))
    # A resource policy is a quota: reservation = guarantee, limit = limit, on GPUs in whichever pool ("*")
    policy = {("*", "gpu"): QuotaLimits(guarantee=gpu(8), limit=gpu(16))}
    quotas = [QuotaSpec("Dev", resources=policy), QuotaSpec("Research", resources=policy)]
    queued = [
        QueuedJob(f"{team}-{i}", team, TRAINING, seq, 0.0, profile="4xGPU")
        for seq, (team, i) in enumerate(((t, i) for t in ("Dev", "Research") for i in range(1, 5)), start=1)
    ]
    state = SchedulerState.from_snapshot(Snapshot(quotas, pools, [profile], queued=queued))
    decisions = state.cycle(0.0)

    assert admitted(decisions) == {
        "Dev-1": "Bare Metal",
        "Dev-2": "Bare Metal",
        "Research-1": "H100",  # to honour Research's reservation, ahead of Dev's borrowing jobs
        "Research-2": "H100",
    }
    for jid in ("Dev-3", "Dev-4", "Research-3", "Research-4"):
        reason = state.explain(jid)
        assert reason is not None and reason.code in (WaitCode.NO_CAPACITY, WaitCode.QUEUED_BEHIND)
    assert waits(decisions)["Dev-3"].message == (
        "pool Bare Metal: 4 gpu requested but only 0 available (8 of 8 in use); "
        "pool H100: 4 gpu requested but only 0 available (8 of 8 in use)"
    )
    assert "queued behind 1 identical job(s)" in state.explain("Research-4").message

    # When a Dev job finishes, Dev (now below its reservation) gets the 4 GPUs back before Research borrows them.
    state.job_finished("Dev-1")
    assert admitted(state.cycle(1.0)) == {"Dev-3": "Bare Metal"}


# ---------------------------------------------------------------------------------------------------------------------
# 2. Alibaba PAI: a quota tree with child-level preemption, and scaling child quotas
def pai_tree():
    return [
        QuotaSpec("Quota1", resources={("a100", "gpu"): QuotaLimits(gpu(128), gpu(128))}, child_preemption=True),
        QuotaSpec("Quota1.1", "Quota1", resources={("a100", "gpu"): QuotaLimits(gpu(48), gpu(48))}),
        QuotaSpec("Quota1.2", "Quota1", resources={("a100", "gpu"): QuotaLimits(gpu(80), gpu(80))}),
    ]


def pai_pool(devices_free=None):
    devices_free = devices_free or {}
    return Pool("a100", tuple(Device(f"n{i // 8}-g{i % 8}", free=devices_free.get(f"n{i // 8}-g{i % 8}", gpu(1)),
                                     node=f"n{i // 8}") for i in range(128)))


def pai_training_jobs():
    """Quota1.1 (team B) and Quota1.2 (team C) full of 8-GPU training jobs, one node each."""
    running = []
    for i in range(16):
        q = "Quota1.1" if i < 6 else "Quota1.2"
        devices = tuple((f"n{i}-g{g}", gpu(1)) for g in range(8))
        running.append(RunningJob(f"train-{i}", q, TRAINING, float(i), "a100", {"gpu": gpu(8)}, devices))
    return running


def test_pai_inference_on_parent_preempts_minimum_training_jobs_and_starts():
    running = pai_training_jobs()
    busy = {dev: gpu(0) for r in running for dev, _ in r.devices}
    # 12 GPUs cannot be one process on 8-GPU nodes: a gang of 2 nodes with 6 GPUs each
    inference = QueuedJob("eas-inference", "Quota1", INFERENCE, 1, 100.0, {"gpu": gpu(6)}, ("a100",),
                          priority_class="inference", nodes=2)
    state = SchedulerState.from_snapshot(Snapshot(pai_tree(), [pai_pool(busy)], running=running, queued=[inference]))
    decisions = state.cycle(100.0)

    # 12 GPUs need two 8-GPU jobs, not more; the most recently started go first
    assert preempted(decisions) == ["train-15", "train-14"]
    assert {p.reason for p in preemptions(decisions)} == {PreemptReason.CHILD_PREEMPTION}
    (admit,) = [d for d in decisions if isinstance(d, Admit)]
    assert admit.job_id == "eas-inference" and admit.preempted == ("train-15", "train-14")
    assert len(admit.devices) == 12 and {d.split("-")[0] for d, _ in admit.devices} <= {"n14", "n15"}
    assert sorted(admit.nodes) == ["n14", "n15"]
    assert state.quota_usage("Quota1")[("a100", "gpu")] == gpu(124)


def test_pai_scale_child_quotas_in_one_call():
    tree = scale(pai_tree(), {"Quota1.1": {("a100", "gpu"): gpu(56)}, "Quota1.2": {("a100", "gpu"): gpu(72)}})
    sizes = {s.id: s.resources[("a100", "gpu")].guarantee for s in tree}
    assert sizes == {"Quota1": gpu(128), "Quota1.1": gpu(56), "Quota1.2": gpu(72)}
    # the new tree is immediately usable: team B can now run 56 GPUs
    jobs = [QueuedJob(f"b{i}", "Quota1.1", TRAINING, i, 0.0, {"gpu": gpu(8)}, ("a100",)) for i in range(8)]
    state = SchedulerState.from_snapshot(Snapshot(tree, [pai_pool()], queued=jobs))
    decisions = state.cycle(0.0)
    assert len(admitted(decisions)) == 7
    assert waits(decisions)["b7"].message == "quota Quota1.1: limit of 56 gpu in pool a100 reached (56 in use, 8 requested)"


def test_pai_scale_beyond_parent_is_refused():
    with pytest.raises(ScaleError) as info:
        scale(pai_tree(), {"Quota1.1": {("a100", "gpu"): gpu(64)}})
    assert str(info.value) == "children of quota Quota1 guarantee 144 gpu in pool a100 but Quota1 guarantees 128"
    with pytest.raises(ScaleError, match="children of quota Quota1 guarantee 136"):
        scale(pai_tree(), {"Quota1.1": {("a100", "gpu"): gpu(56)}})  # half of a move is refused too


# ---------------------------------------------------------------------------------------------------------------------
# 3. Kueue cohort: borrowing up to the limit, lending limit, reclaim, guarantees never preempted
def kueue_cohort():
    def cq(name, guarantee, limit, lending=None):
        lim = QuotaLimits(cpu(guarantee), cpu(limit), None if lending is None else cpu(lending))
        return QuotaSpec(name, "cohort", resources={("cpu", "cpu"): lim}, reclaim="any",
                         within_quota_preemption="lower_priority")

    return [
        QuotaSpec("cohort", resources={("cpu", "cpu"): QuotaLimits(cpu(30))}),
        cq("team-a", 10, 30),
        cq("team-b", 10, 20),  # may borrow at most 10 above its guarantee
        cq("team-d", 10, 30, lending=5),  # lends at most 5 of its 10
    ]


def cpu_jobs(q, n, start_seq, priority=TRAINING, at=0.0):
    return [QueuedJob(f"{q}-{start_seq + i}", q, priority, start_seq + i, at, {"cpu": cpu(1)}, ("cpu",))
            for i in range(n)]


def test_kueue_cohort_borrowing_lending_and_reclaim():
    state = SchedulerState([*kueue_cohort()], [cpu_pool("cpu", 30)], config=SchedulerConfig(starvation_age_s=None))

    # borrowing up to the limit: team-b alone may use 20 of the idle 30
    for j in cpu_jobs("team-b", 25, 0):
        state.add_job(j)
    decisions = state.cycle(1.0)
    assert len(admitted(decisions)) == 20
    assert waits(decisions)["team-b-20"].message == (
        "quota team-b: limit of 20 cpu in pool cpu reached (20 in use, 1 requested)"
    )
    for jid in list(admitted(decisions)):
        state.job_finished(jid)
    for j in state_pending(state, "team-b"):
        state.remove_job(j)

    # lending limit: team-a can borrow team-b's 10 but only 5 of team-d's: 25, not 30
    for j in cpu_jobs("team-a", 30, 100, at=2.0):
        state.add_job(j)
    decisions = state.cycle(2.0)
    assert len(admitted(decisions)) == 25
    assert "5 held back by other quotas' unlendable guarantees" in waits(decisions)["team-a-125"].message

    # reclaim: team-b comes back within its guarantee and preempts exactly the borrowed 10, newest first
    for j in cpu_jobs("team-b", 10, 200, at=3.0):
        state.add_job(j)
    decisions = state.cycle(3.0)
    assert len(admitted(decisions)) == 10
    assert len(preempted(decisions)) == 10
    assert {p.reason for p in preemptions(decisions)} == {PreemptReason.RECLAIM}
    assert state.quota_usage("team-a")[("cpu", "cpu")] == cpu(15)

    # team-d uses its 5 unlendable CPUs without preemption, then reclaims 5 more from team-a down to its guarantee
    for j in cpu_jobs("team-d", 12, 300, at=4.0):
        state.add_job(j)
    decisions = state.cycle(4.0)
    assert len(admitted(decisions)) == 10
    assert len(preempted(decisions)) == 5
    assert state.quota_usage("team-a")[("cpu", "cpu")] == cpu(10)
    # the 11th job would borrow: it may not touch team-a's or team-b's guarantees
    assert waits(decisions)["team-d-310"].code == WaitCode.NO_CAPACITY

    # guarantees are never preempted to serve another quota, even by a much higher priority
    for j in cpu_jobs("team-b", 1, 400, priority=INFERENCE, at=5.0):
        state.add_job(j)
    decisions = state.cycle(5.0)
    victims = preempted(decisions)
    assert all(v.startswith("team-b-") for v in victims)  # only its own lower-priority job (within quota)
    assert state.quota_usage("team-a")[("cpu", "cpu")] == cpu(10)
    assert state.quota_usage("team-d")[("cpu", "cpu")] == cpu(10)


def state_pending(state, quota_prefix):
    return [jid for jid in state.queued_ids() if jid.startswith(quota_prefix)]
