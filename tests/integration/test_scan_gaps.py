"""The scan's contract on PostgreSQL: every committed job is handed to the loop exactly once, also when a batch that
drew lower ids commits after a batch with higher ids was already scanned (scheduler/scan.py tracks the ids missing
below its watermark). Submission draws ids from the jobs' sequence in request order (workloads/service.py)."""

from __future__ import annotations

import pytest
from sched_helpers import Harness
from sqlalchemy import select

from allotment.core.permissions import Principal
from allotment.db import transaction
from allotment.identity.models import User
from allotment.inventory.service import find_cluster
from allotment.scheduler.runtime import ClusterRuntime
from allotment.workloads import service
from allotment.workloads.models import Job


@pytest.fixture
def handed(monkeypatch) -> list[int]:
    """The ids of the rows the scan hands to a cluster's runtime, in order, repeats included."""
    seen: list[int] = []
    add_new = ClusterRuntime.add_new

    def counted(self, row, owner=None):
        seen.append(row.id)
        return add_new(self, row, owner)

    monkeypatch.setattr(ClusterRuntime, "add_new", counted)
    return seen


def test_a_batch_committed_after_a_later_one_was_scanned_is_picked_up_once(client, admin_headers, backend, handed):
    if backend != "postgres":
        pytest.skip("SQLite has one writer at a time: ids are given in commit order")
    h = Harness(client, admin_headers)
    h.node("n-1", cpu=64)
    h.pool("p", ["n-1"])
    h.quota("team", [{"resource": "cpu", "guarantee": 64, "limit": 64}])
    h.cycle()
    sessions = client.app.state.allot.sessions
    with transaction(sessions) as s:
        admin = s.scalar(select(User).where(User.username == "admin"))
        principal = Principal(id=admin.id, kind=admin.kind, username=admin.username, is_platform_admin=True)
    slow = sessions()  # a submission that draws its ids first and commits last
    try:
        early = service.submit_batch(slow, principal, [service.JobRequest(quota="team", command=["a"], cpu="1")
                                                       for _ in range(3)])
        late = h.batch([{"quota": "team", "command": ["b"], "cpu": "1"} for _ in range(2)])
        assert max(early) < min(late)  # drawn in that order
        h.cycle()
        assert sorted(handed) == late  # the early ones are not committed yet
        slow.commit()
    finally:
        slow.close()
    h.settle(3)
    assert sorted(handed) == sorted(early + late)  # each exactly once
    assert set(early + late) <= set(h.scheduler.runtimes[_cluster_id(sessions, h.cluster)].jobs)
    with transaction(sessions) as s:
        stored = dict(s.execute(select(Job.id, Job.state).where(Job.id.in_(early + late))).all())
    assert set(stored.values()) <= {"admitted", "running"}


def _cluster_id(sessions, name: str) -> int:
    with transaction(sessions) as s:
        return find_cluster(s, name).id
