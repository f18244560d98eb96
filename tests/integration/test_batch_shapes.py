"""A batch checks each shape of job once per kind of quota (workloads/service.py: _rows): the jobs that ask for the
same things in quotas alike take the checked job's values. What a quota decides (its cluster, the priority classes it
allows, whether the caller may submit to it) still decides for every job, and every job's row is the row it would get
alone."""

from __future__ import annotations

import pytest
from inventory_helpers import API, make_user, quota, register_node
from sqlalchemy import JSON, Text, cast, select

from allotment.workloads import service
from allotment.workloads.models import Job


@pytest.fixture
def dev(client, admin_headers):
    """dev, bound to open-1, open-2 and picky (which allows only the class training), not to other."""
    register_node(client, admin_headers, "gpu-01", "H100", 8)
    for name in ("open-1", "open-2", "other"):
        quota(client, admin_headers, name, gpu="0", limit="8")
    quota(client, admin_headers, "picky", gpu="0", limit="8", allowed_priority_classes=["training"])
    headers = make_user(client, "dev", cluster_role="user")
    for name in ("open-1", "open-2", "picky"):
        assert client.put(f"{API}/quotas/{name}/bindings/users/dev", headers=admin_headers).status_code == 204
    return headers


def job(quota_name: str, i: int = 0, **extra) -> dict:
    return {"quota": quota_name, "gpu": 1, "cpu": "2", "command": ["train", "--fast"], "priority_class": "interactive",
            "name": f"job-{i}", "labels": {"i": i, "class": "small"}, **extra}


def test_a_shape_that_passed_in_one_quota_is_still_held_to_anothers_classes(client, dev):
    for jobs, bad in (([job("open-1"), job("picky")], 1), ([job("picky"), job("open-1")], 0)):
        r = client.post(f"{API}/jobs/batch", headers=dev, json={"jobs": jobs})
        assert r.status_code == 422, r.text
        assert r.json()["errors"] == [{"field": f"jobs.{bad}.priority_class",
                                       "message": "quota picky allows only training"}]


def test_a_shape_that_passed_in_one_quota_is_still_refused_where_the_caller_may_not_submit(client, dev):
    r = client.post(f"{API}/jobs/batch", headers=dev, json={"jobs": [job("open-1"), job("other"), job("open-2")]})
    assert r.status_code == 403, r.text
    assert [e["field"] for e in r.json()["errors"]] == ["jobs.1.quota"]


def test_each_shape_is_checked_once_and_every_row_is_the_row_of_the_job_alone(client, dev, monkeypatch):
    shapes = [{}, {"gpu": 2, "priority_class": "training", "time_limit": "1h"}]
    jobs = [job(("open-1", "open-2", "picky")[i % 3] if i % 2 else ("open-1", "open-2")[i % 2], i, **shapes[i % 2])
            for i in range(30)]
    built = []
    whole = service._build
    monkeypatch.setattr(service, "_build", lambda look, owner, policy, req, *rest: built.append(req.quota)
                        or whole(look, owner, policy, req, *rest))
    r = client.post(f"{API}/jobs/batch", headers=dev, json={"jobs": jobs})
    assert r.status_code == 201, r.text
    batch_ids = r.json()["ids"]
    # Shape 1 in open-1/open-2 (alike), shape 2 there and in picky (which allows other classes): three checks.
    assert sorted(built) == ["open-1", "open-2", "picky"], built
    alone = []
    for body in jobs:
        r = client.post(f"{API}/jobs", headers=dev, json=body)
        assert r.status_code == 201, r.text
        alone.append(r.json()["id"])
    table = Job.__table__
    columns = [cast(c, Text) if isinstance(c.type, JSON) else c for c in table.columns
               if c.name not in ("id", "seq", "submitted_at", "updated_at")]
    with client.app.state.allot.sessions() as session:
        rows = {row[0]: row[1:] for row in session.execute(select(table.c.id, *columns)
                                                           .where(table.c.id.in_(batch_ids + alone)))}
    for in_batch, by_itself in zip(batch_ids, alone, strict=True):
        assert rows[in_batch] == rows[by_itself]
    assert len({rows[i] for i in batch_ids}) == len(jobs)  # names and labels are each job's own
