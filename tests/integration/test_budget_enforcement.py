"""Hour budgets hold jobs at the scheduler's admission gate: a user's GPU-hour quota and the budgets of a quota and
its ancestors, in safe mode (request x time limit must fit in what is left), with reason budget_exhausted naming the
budget and the numbers; jobs ended free what they reserved once their intervals are read."""

from __future__ import annotations

import time

import pytest
from sched_helpers import API, Harness
from sqlalchemy import update
from user_helpers import login, make_user

from allotment.accounting.gate import BudgetGate, Ledger
from allotment.accounting.models import QuotaBudget, UsageRecord
from allotment.db import transaction


@pytest.fixture
def h(client, admin_headers) -> Harness:
    h = Harness(client, admin_headers, cluster="default")
    h.node("gpu-01", gpus=8, model="H100")
    h.quota("org", [{"resource": "gpu", "guarantee": 8, "limit": 8}])
    h.quota("team", [{"resource": "gpu", "guarantee": 8, "limit": 8}], parent="org")
    make_user(client, admin_headers, "john")
    h.put("/clusters/default/users/john", {"role": "user"})
    h.put("/quotas/team/bindings/users/john", status=204)
    gate = next(g for g in h.scheduler.gates.gates if isinstance(g, BudgetGate))
    gate.refresh_s = 0.0  # read the records at every scan (the loop reads them at most every few seconds)
    return h



def _assert_ledger_equals_a_fresh_read(h, gate) -> None:
    """What the gate's ledger keeps equals what a ledger reading every record from scratch finds."""
    with h.client.app.state.allot.sessions() as s:
        fresh = Ledger()
        fresh.read(s, gate._read_at, gate.ledger._sinces, gate.parents)
    now = gate._read_at
    assert {k: round(v, 6) for k, v in gate.ledger.used(now).items() if v} == \
        {k: round(v, 6) for k, v in fresh.used(now).items() if v}

def test_a_users_gpu_hour_quota_holds_a_job_that_could_overrun_it(h, client):
    h.put("/clusters/default/user-quotas/john", {"gpu": "1h"})
    john = login(client, "john", "Passw0rd!")
    big = h.submit("team", gpu=1, time_limit="2h", headers=john)
    small = h.submit("team", gpu=1, time_limit="30m", headers=john)
    h.cycle()
    held, admitted = h.job(big), h.job(small)
    assert admitted["state"] == "admitted"
    assert held["state"] == "queued" and held["reason_code"] == "budget_exhausted"
    assert held["reason"].startswith("user john's quota: GPU-hour budget 1h 00m has ")
    assert "this job may use 2h 00m (gpu x time limit)" in held["reason"]
    h.post("/clusters/default/user-quotas/john/add", {"gpu": "2h"})  # more hours: the held job may go
    h.cycle()
    h.cycle()
    assert h.job(big)["state"] in ("admitted", "running")


def test_a_parents_budget_bounds_its_children_and_frees_what_ended_jobs_did_not_use(h):
    h.put("/quotas/org/budgets/gpu", {"period": "monthly", "amount": "3h"})
    first = h.submit("team", gpu=2, time_limit="1h", runtime_s=1800)  # reserves 2 GPU-hours, uses 1
    second = h.submit("team", gpu=2, time_limit="1h")
    h.cycle()
    assert h.states([first, second]) == ["admitted", "queued"]
    reason = h.job(second)["reason"]
    assert h.job(second)["reason_code"] == "budget_exhausted"
    assert reason.startswith("quota org: monthly GPU-hour budget 3h 00m has 1h 00m left"), reason
    h.cycle(0.001)
    h.cycle(1800.0)  # the first job ends after half an hour: 1 GPU-hour spent, 2 left
    assert h.job(first)["state"] == "succeeded"
    h.cycle()
    h.cycle()
    assert h.job(second)["state"] in ("admitted", "running")


def test_without_safe_mode_only_a_spent_budget_holds_jobs(h):
    gate = next(g for g in h.scheduler.gates.gates if isinstance(g, BudgetGate))
    gate.safe = False
    h.put("/quotas/team/budgets/gpu", {"period": "once", "amount": "1h"})
    first = h.submit("team", gpu=4, time_limit="1h", runtime_s=3600)  # may use 4 h of a 1 h budget
    h.cycle()
    assert h.job(first)["state"] == "admitted"
    h.cycle(0.001)
    h.cycle(3600.0)
    later = h.submit("team", gpu=1, time_limit="1m")
    h.cycle()
    job = h.job(later)
    assert job["state"] == "queued" and job["reason_code"] == "budget_exhausted"
    assert "quota team: GPU-hour budget 1h 00m has 0h 00m left (spent 4h 00m)" in job["reason"]


def test_the_ledger_read_piece_by_piece_matches_a_full_sum(h):
    h.put("/quotas/org/budgets/gpu", {"period": "monthly", "amount": "500h"})
    h.put("/quotas/team/budgets/cpu", {"period": "once", "amount": "500h"})
    gate = next(g for g in h.scheduler.gates.gates if isinstance(g, BudgetGate))
    for runtime in (10, 20, 30, 4000):
        h.submit("team", gpu=1, cpu=2, runtime_s=runtime)
    for _ in range(6):
        h.cycle(15.0)  # jobs end one after another; each read adds only what closed since the last one
    assert any(gate.ledger.open.values()) and gate.ledger.closed
    _assert_ledger_equals_a_fresh_read(h, gate)


def test_running_jobs_stop_when_their_budget_is_spent_after_the_grace_or_finish_when_told_to(h):
    gate = next(g for g in h.scheduler.gates.gates if isinstance(g, BudgetGate))
    gate.safe, gate.grace_s = False, 0.0
    h.put("/quotas/org/budgets/gpu", {"period": "once", "amount": "1h"})
    runaway = h.submit("team", gpu=2, runtime_s=7200)  # no time limit: 2 GPUs for 2 h, on a 1 h budget
    h.cycle()
    h.cycle(0.001)
    assert h.job(runaway)["state"] == "running"
    # Its open interval counts up to the refresh's wall clock: make it (and the grant) an hour older.
    with transaction(h.client.app.state.allot.sessions) as s:
        s.execute(update(UsageRecord).where(UsageRecord.job_id == runaway).values(start_s=UsageRecord.start_s - 3600))
        s.execute(update(QuotaBudget).values(granted_at=QuotaBudget.granted_at - 3600))
    h.cycle(1.0)
    h.cycle(1.0)
    job = h.job(runaway)
    assert job["state"] == "failed" and job["reason_code"] == "budget_exhausted", job
    assert "the GPU-hour budget of quota org (1h 00m, once) is spent" in job["reason"]
    # With stopping off, a job whose budget runs out finishes; the overage shows as spent beyond the budget.
    gate.stop_running = False
    h.put("/quotas/team/budgets/gpu", {"period": "once", "amount": "10h"})
    h.put("/quotas/org/budgets/gpu", {"period": "once", "amount": "100h"})
    h.put("/quotas/team/budgets/gpu", {"period": "once", "amount": "1m"})
    finisher = h.submit("team", gpu=1, runtime_s=600)
    h.cycle()
    h.cycle(0.001)
    h.cycle(600.0)
    assert h.job(finisher)["state"] == "succeeded"
    team = h.get("/quotas/team/budgets")["items"][0]
    assert team["spent_hours"] > team["budget_hours"] and team["left_hours"] == 0


def test_with_refusal_set_a_job_whose_budget_is_spent_is_refused_at_submission(h, client):
    h.client.app.state.allot.settings.budget_when_spent = "refuse"
    h.put("/quotas/org/budgets/gpu", {"period": "monthly", "amount": "1h"})
    h.submit("team", gpu=1, runtime_s=60)  # fits: nothing spent yet
    with transaction(h.client.app.state.allot.sessions) as s:  # an hour and a half already used this month
        s.add(UsageRecord(job_id=999, cluster_id=2, owner_id=1, quota_id=2, gpu_milli=1000, cpu_milli=0,
                          memory_bytes=0, start_s=time.time() - 5460, end_s=time.time() - 60, outcome="succeeded"))
    r = client.post(f"{API}/jobs", headers=h.headers, json={"quota": "team", "gpu": 1, "command": ["x"]})
    assert r.status_code == 409 and r.json()["code"] == "budget_exhausted", r.text
    assert "quota org's monthly budget is spent: GPU: spent 1h 30m / budget 1h 00m / left 0h 00m" in r.json()["detail"]
    r = client.post(f"{API}/jobs", headers=h.headers, json={"quota": "team", "cpu": 1, "command": ["x"]})
    assert r.status_code == 201  # a CPU job does not draw on a GPU budget


def test_the_ledger_reads_only_the_records_a_budget_can_count(h):
    """With GPU-hour quotas alone (the built-in default), CPU jobs' records cannot count on any budget and are not
    read; a CPU-hour budget set later makes the ledger read every record, the CPU jobs' past ones included."""
    gate = next(g for g in h.scheduler.gates.gates if isinstance(g, BudgetGate))
    cpu_job = h.submit("team", cpu=2, runtime_s=30)
    gpu_job = h.submit("team", gpu=1, runtime_s=4000)
    h.cycle()
    h.cycle(0.001)
    h.cycle(30.0)
    assert h.states([cpu_job, gpu_job]) == ["succeeded", "running"]
    assert gate.ledger.scope == "gpu"
    assert [r.job_id for r in gate.ledger.open.values()] == [gpu_job]
    assert not any(v for k, v in gate.ledger.closed.items() if k[-1] == "cpu")
    h.put("/quotas/team/budgets/cpu", {"period": "once", "amount": "500h"})
    h.cycle()
    assert gate.ledger.scope == "all"
    team = next(qid for qid, name in gate.quota_names.items() if name == "team")
    assert gate.ledger.closed[("quota", team, "cpu")] > 0  # from the grant on (its period began then)
    _assert_ledger_equals_a_fresh_read(h, gate)


def _gate(h) -> BudgetGate:
    return next(g for g in h.scheduler.gates.gates if isinstance(g, BudgetGate))


def test_a_job_let_through_with_no_budget_on_its_path_counts_on_one_set_later(h):
    first = h.submit("team", cpu=4, time_limit="1h", runtime_s=3600)  # a CPU job: john's GPU-hour quota is not its
    h.cycle()
    assert h.job(first)["state"] == "admitted"
    h.cycle(1.0)
    h.cycle(1.0)  # refreshes with the limits unchanged keep it let through, counting on nothing
    h.put("/quotas/team/budgets/cpu", {"period": "once", "amount": "5h"})  # 4 of its 5 CPU-hours may go to `first`
    second = h.submit("team", cpu=2, time_limit="1h")
    h.cycle()
    job = h.job(second)
    assert job["state"] == "queued" and job["reason_code"] == "budget_exhausted", job
    assert "quota team: CPU-hour budget 5h 00m has " in job["reason"]


def test_a_refresh_with_the_limits_unchanged_counts_again_only_the_jobs_that_count_on_a_budget(h):
    gpu_jobs = [h.submit("team", gpu=1, time_limit="1h", runtime_s=3600) for _ in range(2)]  # the owner's GPU hours
    cpu_jobs = [h.submit("team", cpu=1, time_limit="1h", runtime_s=3600) for _ in range(5)]
    h.cycle()
    gate = _gate(h)
    cluster_id = next(key[0] for key in gate.reserved)
    assert gate.counting == {(cluster_id, j) for j in gpu_jobs}
    assert {(cluster_id, j) for j in cpu_jobs} <= set(gate.reserved)
    pathed: list[int] = []
    path = gate._path
    gate._path = lambda job: (pathed.append(job.job_id), path(job))[1]  # type: ignore[method-assign]
    h.cycle(1.0)
    assert sorted(pathed) == sorted(gpu_jobs)  # the CPU jobs' paths are still empty: not built again
    used = gate.used
    gate._limits = None  # as if the limits had changed: every job's path is built again, the same sums follow
    gate._read_at = None
    with h.client.app.state.allot.sessions() as session:
        gate.refresh(session)
    assert sorted(pathed[2:]) == sorted(gpu_jobs + cpu_jobs)
    assert gate.used == pytest.approx(used)


def test_a_job_that_counted_on_no_budget_is_forgotten_when_it_ends_one_that_counted_at_the_next_refresh(h):
    gate = _gate(h)
    gate.refresh_s = 3600.0  # no refresh between the end and the checks below
    gpu_job = h.submit("team", gpu=1, time_limit="1h", runtime_s=10)  # counts on its owner's GPU hours
    cpu_job = h.submit("team", cpu=1, time_limit="1h", runtime_s=10)  # counts on nothing
    h.cycle()
    h.cycle(0.001)
    cluster_id = next(key[0] for key in gate.reserved)
    assert {(cluster_id, gpu_job), (cluster_id, cpu_job)} <= set(gate.reserved)
    h.cycle(10.0)
    assert h.states([gpu_job, cpu_job]) == ["succeeded", "succeeded"]
    assert (cluster_id, cpu_job) not in gate.reserved  # nothing of it to keep
    assert (cluster_id, gpu_job) in gate.ended and (cluster_id, gpu_job) in gate.reserved  # kept until its record
    gate._read_at = None  # is read
    with h.client.app.state.allot.sessions() as session:
        gate.refresh(session)
    assert (cluster_id, gpu_job) not in gate.reserved and not gate.counting
