"""Acceptance scenario 2, end to end: Alibaba PAI's quota tree with child-level preemption, and scaling child quotas."""

from __future__ import annotations

import pytest
from sched_helpers import Harness


def gpus(n: int, guarantee: int | None = None, limit: int | None = None) -> list[dict]:
    return [{"resource": "gpu", "pool": "a100", "guarantee": n if guarantee is None else guarantee,
             "limit": n if limit is None else limit}]


@pytest.fixture
def pai(client, admin_headers) -> Harness:
    """Quota1 of 128 GPUs with child-level preemption; Quota1.1 (48) and Quota1.2 (80) full of 8-GPU training jobs."""
    h = Harness(client, admin_headers)
    for i in range(4):
        h.node(f"n{i}", gpus=32, model="A100")
    h.pool("a100", [f"n{i}" for i in range(4)])
    h.quota("Quota1", gpus(128), child_preemption=True)
    h.quota("Quota1.1", gpus(48), parent="Quota1")
    h.quota("Quota1.2", gpus(80), parent="Quota1")
    h.team_b = h.batch([{"quota": "Quota1.1", "command": ["train"], "gpu": 8, "priority_class": "training",
                         "labels": {"runtime_ms": 3_600_000}} for _ in range(6)])
    h.settle(2)
    h.team_c = h.batch([{"quota": "Quota1.2", "command": ["train"], "gpu": 8, "priority_class": "training",
                         "labels": {"runtime_ms": 3_600_000}} for _ in range(10)])
    h.settle(2, advance=1.0)
    assert h.states(h.team_b + h.team_c) == ["running"] * 16
    return h


def in_use(h: Harness, quota: str) -> str:
    (row,) = [r for r in h.get(f"/quotas/{quota}")["resources"] if r["pool"] == "a100"]
    return row["in_use"]


def test_inference_on_the_parent_preempts_just_enough_training_and_starts(pai):
    h = pai
    inference = h.submit("Quota1", gpu=12, priority_class="inference", name="eas-inference")
    report = h.cycle(5.0)
    assert report.preempted == 2 and report.admitted == 1

    job = h.job(inference)
    assert job["state"] == "admitted" and len(job["placement"]["devices"]) == 12
    victims = [j for j in h.team_b + h.team_c if h.job(j)["state"] == "preempted"]
    assert len(victims) == 2
    assert set(victims) <= set(h.team_c)  # the most recently started training jobs go first
    for v in victims:
        reason = h.job(v)["reason"]
        assert reason.startswith(f"preempted by job {inference}: ")
        assert "child-level preemption" in reason
    # the inference job runs on (some of) the devices the victims freed
    freed = {d["device_id"] for v in victims for d in h.job(v)["placement"]["devices"]}
    assert {d["device_id"] for d in job["placement"]["devices"]} <= freed

    # Kueue-style: the victims go back to the queue in their original order and say why they wait
    h.cycle(1.0)
    assert h.job(inference)["state"] == "running"
    for v in victims:
        requeued = h.job(v)
        assert requeued["state"] == "queued"
        assert requeued["seq"] == v and requeued["placement"] is None and requeued["started_at"] is None
        assert requeued["reason_code"] == "limit_reached"
        assert "quota Quota1: limit of 128 gpu in pool a100 reached (124 in use, 8 requested)" in requeued["reason"]
        assert f"preempted by job {inference}; requeued" in requeued["reason"]
    assert in_use(h, "Quota1") == "124"

    # when the inference service ends, the preempted training runs again
    h.cancel(inference)
    h.cycle(1.0)  # the loop stops it and, in the same cycle, gives its GPUs back to the preempted jobs
    assert h.job(inference)["state"] == "cancelled"
    assert h.states(victims) == ["admitted", "admitted"]
    assert [h.job(v)["reason"] for v in victims] == ["admitted to pool a100 on 8 gpu of 1 node(s)"] * 2


def test_scale_moves_capacity_between_children_in_one_call(pai):
    h = pai
    out = h.post("/clusters/sim/quotas/scale", {"changes": [
        {"quota": "Quota1.1", "resource": "gpu", "pool": "a100", "guarantee": 56},
        {"quota": "Quota1.2", "resource": "gpu", "pool": "a100", "guarantee": 72},
    ]})
    sizes = {q["name"]: q["resources"][0]["guarantee"] for q in out["items"]}
    assert sizes == {"Quota1.1": "56", "Quota1.2": "72"}

    # team B may now run one more 8-GPU job, but Quota1 is full: it waits with the parent's numbers until
    # team C shrinks below its new size
    extra = h.submit("Quota1.1", gpu=8, priority_class="training")
    h.cycle(1.0)
    job = h.job(extra)
    assert job["state"] == "queued"
    assert job["reason"] == "quota Quota1: limit of 128 gpu in pool a100 reached (128 in use, 8 requested)"
    h.cancel(h.team_c[-1])
    h.cycle(1.0)
    assert h.job(extra)["state"] == "admitted"
    assert in_use(h, "Quota1.1") == "56"


def test_scale_beyond_the_parent_is_refused_and_nothing_changes(pai):
    h = pai
    r = h.client.post("/api/v1/clusters/sim/quotas/scale", headers=h.headers, json={"changes": [
        {"quota": "Quota1.1", "resource": "gpu", "pool": "a100", "guarantee": 64}]})
    assert r.status_code == 422, r.text
    assert "children of quota Quota1 guarantee 144 gpu in pool a100 but Quota1 guarantees 128" in r.text
    assert h.get("/quotas/Quota1.1")["resources"][0]["guarantee"] == "48"
