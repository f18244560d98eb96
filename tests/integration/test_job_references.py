"""A job's cluster, owner, quota and placement pool are kept by the services (workloads/references.py), not by
foreign keys: deleting a cluster deletes its jobs, deleting a quota or a pool clears it from the finished jobs that
name it, a batch naming a row deleted meanwhile is refused whole, and what a batch names cannot be deleted until it
commits; the scheduler's cycle refuses an admission into a pool deleted since it read it."""

from __future__ import annotations

import threading
import time

import pytest
from inventory_helpers import API, hold_devices, register_node, sessions
from sqlalchemy import func, select, text

from allotment.db import transaction, utcnow
from allotment.errors import Conflict
from allotment.identity.models import User
from allotment.inventory.models import Cluster, Pool
from allotment.quotas.models import Quota
from allotment.quotas.service import delete_quota
from allotment.scheduler.persist import Conflict as CycleConflict
from allotment.scheduler.persist import Writes
from allotment.workloads import references
from allotment.workloads.models import Job


def submit(client, headers, quota: str = "team", **fields) -> int:
    r = client.post(f"{API}/jobs", headers=headers, json={"quota": quota, "command": ["train"], "cpu": "1", **fields})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def finish(client, job_id: int) -> None:
    with transaction(sessions(client)) as s:
        job = s.get(Job, job_id)
        job.state, job.finished_at = "succeeded", utcnow()


def row(client, job_id: int) -> Job | None:
    with transaction(sessions(client)) as s:
        job = s.get(Job, job_id)
        if job is not None:
            s.expunge(job)
        return job


def team_references(client, headers) -> dict[str, int]:
    """A new quota "team" on the local cluster, and the references a job of the admin's to it has."""
    assert client.post(f"{API}/clusters/local/quotas", headers=headers, json={"name": "team"}).status_code == 201
    with transaction(sessions(client)) as s:
        return {"cluster_id": s.scalar(select(Cluster.id).where(Cluster.name == "local")),
                "owner_id": s.scalar(select(User.id).where(User.username == "admin")),
                "quota_id": s.scalar(select(Quota.id).where(Quota.name == "team"))}


def postgres_only(backend: str) -> None:
    if backend != "postgres":
        pytest.skip("row locks: SQLite has one writer at a time")


def test_a_deleted_cluster_takes_its_jobs_with_it(client, admin_headers):
    r = client.post(f"{API}/clusters", headers=admin_headers, json={"name": "lab", "backend": "simulated"})
    assert r.status_code == 201, r.text
    with transaction(sessions(client)) as s:
        cluster_id = s.scalar(select(Cluster.id).where(Cluster.name == "lab"))
    r = client.post(f"{API}/clusters/lab/quotas", headers=admin_headers, json={"name": "lab-team"})
    assert r.status_code == 201, r.text
    jobs = [submit(client, admin_headers, quota="lab-team") for _ in range(3)]
    assert client.post(f"{API}/clusters/local/quotas", headers=admin_headers, json={"name": "team"}).status_code == 201
    elsewhere = submit(client, admin_headers)

    r = client.delete(f"{API}/clusters/lab", headers=admin_headers)
    assert r.status_code == 409, r.text  # active jobs keep it
    for job_id in jobs:
        finish(client, job_id)
    assert client.delete(f"{API}/clusters/lab", headers=admin_headers).status_code == 204

    with transaction(sessions(client)) as s:
        assert s.scalar(select(func.count()).select_from(Job).where(Job.cluster_id == cluster_id)) == 0
    assert client.get(f"{API}/jobs/{jobs[0]}", headers=admin_headers).status_code == 404
    assert client.get(f"{API}/jobs/{elsewhere}", headers=admin_headers).status_code == 200


def test_a_deleted_quota_is_cleared_from_its_finished_jobs(client, admin_headers):
    for name in ("team", "gone"):
        assert client.post(f"{API}/clusters/local/quotas", headers=admin_headers, json={"name": name}).status_code == 201
    old = submit(client, admin_headers, quota="gone")
    other = submit(client, admin_headers)
    finish(client, old)

    assert client.delete(f"{API}/quotas/gone", headers=admin_headers).status_code == 204
    assert row(client, old).quota_id is None
    assert row(client, other).quota_id is not None
    r = client.get(f"{API}/jobs/{old}", headers=admin_headers)
    assert r.status_code == 200 and r.json()["state"] == "succeeded"


def test_a_deleted_pool_is_cleared_from_the_jobs_that_ran_in_it(client, admin_headers):
    register_node(client, admin_headers, "gpu-01", "H100", 2)
    r = client.post(f"{API}/clusters/local/pools", headers=admin_headers, json={"name": "h100", "nodes": ["gpu-01"]})
    assert r.status_code == 201, r.text
    assert client.post(f"{API}/clusters/local/quotas", headers=admin_headers, json={"name": "team"}).status_code == 201
    ran, running = submit(client, admin_headers, gpu=1), submit(client, admin_headers, gpu=1)
    hold_devices(client, ran, ["gpu-01:0"], "h100")
    hold_devices(client, running, ["gpu-01:1"], "h100")
    finish(client, ran)

    assert client.delete(f"{API}/clusters/local/pools/h100", headers=admin_headers).status_code == 409  # running
    finish(client, running)
    assert client.delete(f"{API}/clusters/local/pools/h100", headers=admin_headers).status_code == 204
    assert row(client, ran).placed_pool_id is None and row(client, running).placed_pool_id is None
    assert client.get(f"{API}/jobs/{ran}", headers=admin_headers).status_code == 200


def test_a_batch_naming_a_deleted_row_is_refused_whole(client, admin_headers):
    good = team_references(client, admin_headers)
    with transaction(sessions(client)) as s:
        references.hold(s, [good, {**good, "quota_id": None}])  # all there: no error
        for field, what in (("cluster_id", "cluster"), ("owner_id", "user"), ("quota_id", "quota")):
            with pytest.raises(Conflict) as caught:
                references.hold(s, [good, {**good, field: 9999}])
            assert caught.value.status == 409
            assert caught.value.detail == (f"the {what} these jobs name was deleted while they were submitted "
                                           f"(id 9999); nothing was submitted")


@pytest.mark.postgres
def test_what_a_batch_names_cannot_be_deleted_until_it_commits(client, admin_headers, backend):
    postgres_only(backend)
    good = team_references(client, admin_headers)
    factory = sessions(client)
    batch, other = factory(), factory()
    try:
        references.hold(batch, [good])
        other.execute(text("SET LOCAL lock_timeout = '300ms'"))
        with pytest.raises(Exception, match="lock timeout"):
            other.execute(text("DELETE FROM quotas WHERE id = :id"), {"id": good["quota_id"]})
        other.rollback()
        batch.commit()  # the batch is written: now the quota may go
        other.execute(text("SET LOCAL lock_timeout = '300ms'"))
        other.execute(text("DELETE FROM quotas WHERE id = :id"), {"id": good["quota_id"]})
        other.rollback()
    finally:
        batch.close()
        other.close()


def test_a_cycle_admitting_into_a_deleted_pool_is_rolled_back(client, admin_headers):
    with transaction(sessions(client)) as s:
        pool = s.scalar(select(Pool.id).where(Pool.name == "default"))
    writes = Writes()
    writes.admit(1, 1_700_000_000.0, pool, [], "admitted")
    writes.admit(2, 1_700_000_000.0, 9999, [], "admitted")
    with sessions(client)() as s, pytest.raises(CycleConflict, match=r"pool\(s\) 9999 deleted since the cycle began"):
        writes.apply(s.connection())


@pytest.mark.postgres
def test_a_deletion_waits_for_a_batch_naming_its_row_then_counts_its_jobs(client, admin_headers, backend):
    postgres_only(backend)
    good = team_references(client, admin_headers)
    factory = sessions(client)
    batch = factory()
    references.hold(batch, [good])
    outcome: list[object] = []

    def delete() -> None:
        with factory() as s:
            try:
                delete_quota(s, s.get(Quota, good["quota_id"]))
                s.commit()
                outcome.append("deleted")
            except Conflict as exc:
                outcome.append(exc.detail)

    deleting = threading.Thread(target=delete)
    deleting.start()
    time.sleep(0.5)
    assert outcome == []  # waiting for the batch
    batch.add(Job(**good, priority_class="normal", priority=0, command=["train"], cpu_milli=1000))
    batch.commit()
    batch.close()
    deleting.join(10)
    assert outcome == ["quota team has 1 queued or running jobs: wait for them or cancel them"]
