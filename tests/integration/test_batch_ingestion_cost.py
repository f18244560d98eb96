"""POST /jobs/batch costs the same statements whatever the number of quotas its jobs name: who may submit where is
read once per batch, not once per quota (a 500-job batch of the Kueue large-scale benchmark names 500 quotas), and
the jobs go in with one INSERT statement. The decisions stay the same: a quota the user is not bound to is still refused
by name. The owner's configuration goes in with the rows, not as an UPDATE per job."""

from __future__ import annotations

import json

import pytest
from inventory_helpers import API, make_user, quota, register_node
from sqlalchemy import JSON, Text, cast, event, select

from allotment.workloads.models import Job


class StatementCount:
    def __init__(self, engine) -> None:
        self.engine = engine
        self.statements: list[str] = []

    def _count(self, conn, cursor, statement, parameters, context, executemany) -> None:
        self.statements.append(statement)

    def __enter__(self):
        event.listen(self.engine, "before_cursor_execute", self._count)
        return self

    def __exit__(self, *exc) -> None:
        event.remove(self.engine, "before_cursor_execute", self._count)


QUOTAS = [f"Q{i}" for i in range(12)]


@pytest.fixture
def bound_user(client, admin_headers):
    """dev: a user of cluster local, bound (directly or through group team) to every quota Q0..Q11 but not to Other."""
    register_node(client, admin_headers, "gpu-01", "H100", 8)
    for name in [*QUOTAS, "Other"]:
        quota(client, admin_headers, name, gpu="0", limit="8")
    headers = make_user(client, "dev", groups=("team",), cluster_role="user")
    for i, name in enumerate(QUOTAS):
        target = "users/dev" if i % 2 else "groups/team"
        assert client.put(f"{API}/quotas/{name}/bindings/{target}", headers=admin_headers).status_code == 204
    return headers


def batch(client, headers, quotas: list[str]) -> list[str]:
    engine = client.app.state.allot.engine
    jobs = [{"quota": q, "gpu": 1, "command": ["train"]} for q in quotas]
    with StatementCount(engine) as counted:
        r = client.post(f"{API}/jobs/batch", headers=headers, json={"jobs": jobs})
    assert r.status_code == 201, r.text
    assert r.json()["total"] == len(quotas)
    return counted.statements


@pytest.mark.parametrize("who", ["admin", "dev"])
def test_a_batch_over_many_quotas_costs_what_a_batch_over_one_does(client, admin_headers, bound_user, who):
    headers = admin_headers if who == "admin" else bound_user
    batch(client, headers, ["Q0"])  # warm: the principal's cache, the priority classes
    one = batch(client, headers, ["Q0"] * len(QUOTAS))
    many = batch(client, headers, QUOTAS)
    assert len(many) == len(one), "\n".join(many)
    inserts = [s for s in many if s.lstrip().upper().startswith(("INSERT INTO JOBS", "COPY JOBS"))]
    assert len(inserts) == 1


def test_a_quota_not_bound_is_still_refused_by_name(client, bound_user):
    r = client.post(f"{API}/jobs/batch", headers=bound_user,
                    json={"jobs": [{"quota": q, "gpu": 1, "command": ["train"]} for q in [*QUOTAS, "Other"]]})
    assert r.status_code == 403, r.text
    assert r.json()["errors"] == [{"field": f"jobs.{len(QUOTAS)}.quota", "message": "you may not submit to quota "
                                   "Other: it is not bound to you, your groups or your workspaces"}]


def test_every_job_of_a_batch_gets_its_owners_configuration_with_its_row(client, bound_user):
    r = client.post(f"{API}/vaults", headers=bound_user, json={
        "name": "dev-sdk", "format": "yaml", "content": "sdk:\n  region: eu\n", "enabled": True})
    assert r.status_code == 201, r.text
    statements = batch(client, bound_user, QUOTAS[:3])
    assert not [s for s in statements if s.lstrip().upper().startswith("UPDATE JOBS SET CONFIG_FILE")]
    state = client.app.state.allot
    with state.sessions() as session:
        rows = session.execute(select(Job.config_file).order_by(Job.id.desc()).limit(3)).scalars().all()
    assert [json.loads(c) for c in rows] == [{"sdk": {"region": "eu"}}] * 3


def test_access_rules_on_quotas_are_read_once_per_batch_and_still_refuse(client, admin_headers, bound_user):
    """A rule letting only someone else modify Q5 refuses dev's job there by name, and a batch over every quota
    still costs what a batch over one does."""
    make_user(client, "erin", cluster_role="user")
    r = client.post(f"{API}/access-rules", headers=admin_headers, json={
        "resource_type": "quota", "level": "modify", "resource": "Q5", "grantees": [{"kind": "user", "name": "erin"}]})
    assert r.status_code == 201, r.text
    others = [q for q in QUOTAS if q != "Q5"]
    batch(client, bound_user, ["Q0"])
    one = batch(client, bound_user, ["Q0"] * len(others))
    many = batch(client, bound_user, others)
    assert len(many) == len(one), "\n".join(many)
    r = client.post(f"{API}/jobs/batch", headers=bound_user,
                    json={"jobs": [{"quota": q, "gpu": 1, "command": ["train"]} for q in QUOTAS]})
    assert r.status_code == 403, r.text
    (error,) = r.json()["errors"]
    assert error["field"] == "jobs.5.quota" and error["message"].startswith("you may not submit to quota Q5: ")


def test_a_batch_comes_back_in_request_order_and_queues_in_it(client, bound_user):
    """The ids come back in the order the jobs were sent, and each job's place in the queue (seq) is its id."""
    jobs = [{"quota": q, "gpu": 1, "command": ["train"], "name": f"job-{i}"} for i, q in enumerate(QUOTAS)]
    first = client.post(f"{API}/jobs/batch", headers=bound_user, json={"jobs": jobs}).json()["ids"]
    second = client.post(f"{API}/jobs/batch", headers=bound_user, json={"jobs": jobs[:3]}).json()["ids"]
    assert first == sorted(first) and second == sorted(second) and first[-1] < second[0]
    with client.app.state.allot.sessions() as session:
        rows = session.execute(select(Job.id, Job.name, Job.seq).where(Job.id.in_(first))).all()
    assert {job_id: (name, seq) for job_id, name, seq in rows} == {
        job_id: (f"job-{i}", job_id) for i, job_id in enumerate(first)}


def test_a_batch_job_is_stored_as_a_single_submission_stores_it(client, bound_user):
    """The batch writes its rows through the driver (SQLite: executemany; PostgreSQL: COPY) with the values converted
    as the ORM converts them: every column of a batch job's row reads back, as stored, like the same job submitted
    alone (JSON columns with values and without, text, numbers, the configuration), on both databases."""
    full = {"quota": "Q1", "command": ["python", "train.py", "--say", 'a "quoted"\tvalue\\'], "gpu": "0.5",
            "cpu": "500m", "memory": "2Gi", "time_limit": "1h30m", "name": "full",
            "labels": {"runtime_ms": 150, "class": "small", "note": 'a "quote", a \\ and é', "weight": 2.5,
                       "flag": True, "none": None},
            "env": {"MODE": "fast", "HINT": "tab\there, back\\slash"}}
    bare = {"quota": "Q2", "command": "sleep 1", "cpu": 1}
    ids = []
    for job in (full, bare):
        r = client.post(f"{API}/jobs", headers=bound_user, json=job)
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    r = client.post(f"{API}/jobs/batch", headers=bound_user, json={"jobs": [full, bare]})
    assert r.status_code == 201, r.text
    ids += r.json()["ids"]
    table = Job.__table__
    raw = [cast(c, Text) if isinstance(c.type, JSON) else c for c in table.columns
           if c.name not in ("id", "seq", "submitted_at", "updated_at")]
    with client.app.state.allot.sessions() as session:
        rows = {row[0]: row[1:] for row in session.execute(select(table.c.id, *raw).where(table.c.id.in_(ids)))}
    single_full, single_bare, batch_full, batch_bare = (rows[i] for i in ids)
    assert batch_full == single_full
    assert batch_bare == single_bare
    assert single_full != single_bare
