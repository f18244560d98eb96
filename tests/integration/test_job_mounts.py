"""Jobs name storage folders to mount: resolved at submission as the owner sees them (own, group, shared), stored
with the job and shown in its details; read-only where asked or where the owner's permission is ro; refused for a
folder they cannot see, an S3 folder on the local engine, a target used twice; an active job's folder cannot be
trashed."""

from __future__ import annotations

import pytest
from inventory_helpers import API, make_user, sessions
from sqlalchemy import select

from allotment.core.permissions import Principal
from allotment.db import transaction
from allotment.identity.models import User
from allotment.storage import mounts
from conftest import make_settings


@pytest.fixture
def settings(tmp_path, backend):
    return make_settings(tmp_path, backend, bootstrap_default_quota=True)


def submit(client, headers, mounts):
    return client.post(f"{API}/jobs", headers=headers, json={"cpu": 1, "command": ["ls"], "mounts": mounts})


def test_mounts_are_resolved_at_submission_and_shown(client, admin_headers):
    wes = make_user(client, "wes", cluster_role="user", groups=("lab",))
    xia = make_user(client, "xia", cluster_role="user")
    client.post(f"{API}/folders", headers=wes, json={"name": "data"})
    client.post(f"{API}/folders", headers=admin_headers, json={"name": "shared", "group": "lab", "permission": "ro"})
    r = submit(client, wes, ["data", "data:inputs/copy:ro", "shared:ref"])
    assert r.status_code == 201, r.text
    assert r.json()["mounts"] == [
        {"folder": "data", "host": "local", "target": "folders/data", "read_only": False},
        {"folder": "data", "host": "local", "target": "inputs/copy", "read_only": True},
        {"folder": "shared", "host": "local", "target": "ref", "read_only": True},  # the group's permission is ro
    ]
    job = r.json()["id"]
    # an active job's folder stays out of the trash
    refused = client.post(f"{API}/folders/data/trash", headers=wes)
    assert refused.status_code == 409 and f"mounted by active job(s) {job}" in refused.json()["detail"]
    # another user cannot mount wes's folder
    r = submit(client, xia, ["data"])
    assert r.status_code == 422 and r.json()["errors"][0] == {"field": "mounts[0]",
                                                              "message": "no folder 'data' that you can see"}
    # once the job ends, the folder can be trashed; a trashed folder cannot be mounted
    assert client.post(f"{API}/jobs/{job}/cancel", headers=wes).status_code in (200, 202)
    assert client.post(f"{API}/folders/data/trash", headers=wes).status_code == 200
    assert submit(client, wes, ["data"]).status_code == 422


def test_bad_mounts_are_refused_naming_the_field(client, admin_headers):
    yan = make_user(client, "yan", cluster_role="user")
    client.post(f"{API}/folders", headers=yan, json={"name": "d"})
    r = submit(client, yan, ["d:x", "d:x:ro", "d:../up", "d:a:b:c"])
    assert r.status_code == 422
    errors = {e["field"]: e["message"] for e in r.json()["errors"]}
    assert errors["mounts[1].path"] == "x is the target of another mount"
    assert "'..'" in errors["mounts[2]"] and "NAME[:PATH][:ro]" in errors["mounts[3]"]


def test_slurm_mounts_use_the_hosts_path_on_the_clusters_shared_file_system(client, admin_headers):
    zoe = make_user(client, "zoe")
    made = client.post(f"{API}/folders", headers=zoe, json={"name": "runs"}).json()
    with transaction(sessions(client)) as s:
        uid = s.scalar(select(User.id).where(User.username == "zoe"))
        errors: list[tuple[str, str]] = []
        principal = Principal(uid, "user", "zoe")
        assert mounts.resolve(s, principal, "hpc", "slurm", ["runs"], lambda f, m: errors.append((f, m))) is None
        assert errors == [("mounts[0]", ("storage host local has no path on cluster hpc's shared file system (an "
                                         "admin sets it: allot folders hosts update local --cluster-path hpc=PATH)"))]
    assert client.patch(f"{API}/storage-hosts/local", headers=admin_headers,
                        json={"cluster_paths": {"hpc": "/shared/allot"}}).status_code == 200
    with transaction(sessions(client)) as s:
        resolved = mounts.resolve(s, principal, "hpc", "slurm", ["runs:ro"], lambda f, m: errors.append((f, m)))
    assert resolved[0]["cluster_path"] == f"/shared/allot/{made['id']}" and resolved[0]["read_only"] is True
    with transaction(sessions(client)) as s:
        assert mounts.resolve(s, principal, "gpus", "ray", ["runs"], lambda f, m: errors.append((f, m))) is None
    assert "the ray engine does not mount storage folders" in errors[-1][1]
