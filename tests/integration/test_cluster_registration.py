"""Registering, changing and removing clusters with their engine settings; secrets sealed and never shown back; the
engine's status."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from inventory_helpers import API, make_user, sessions
from sched_helpers import Harness
from sqlalchemy import text

from allotment.db import transaction
from allotment.inventory.engine_settings import engine_config
from allotment.inventory.sealing import seal
from allotment.inventory.service import find_cluster, report_engine_status
from allotment.scheduler.engines import cluster_backend

TOKEN = "eyJhbGciOiJIUzI1NiJ9.c2x1cm0tdG9rZW4tc2VjcmV0.T0tFTi1zaWduYXR1cmU"
RAY_ADDRESS = "http://ray-user:Ray-pa55word@ray-head:8265"
SLURM = {"rest_url": "http://slurm-head:6820", "rest_user": "allot", "token": TOKEN, "log_dir": "/srv/slurm/jobs",
         "partitions": {"a100": "gpu-a100"}, "name_prefix": "site1"}


def create(client, headers, name: str, backend: str, engine: dict | None = None, status: int = 201) -> dict:
    body = {"name": name, "backend": backend} | ({"engine": engine} if engine is not None else {})
    r = client.post(f"{API}/clusters", headers=headers, json=body)
    assert r.status_code == status, r.text
    return r.json()


def patch(client, headers, name: str, body: dict, status: int = 200) -> dict:
    r = client.patch(f"{API}/clusters/{name}", headers=headers, json=body)
    assert r.status_code == status, r.text
    return r.json()


def raw_row(client, name: str) -> dict:
    """The cluster's row as stored, read with plain SQL."""
    with sessions(client)() as s:
        row = s.execute(text("SELECT engine_settings, engine_secrets, status, status_error, status_since "
                             "FROM clusters WHERE name = :n"), {"n": name}).mappings().one()
        return dict(row)


def everything_served(client, headers, name: str) -> str:
    """Every answer that speaks of the cluster, the audit log included, as one text."""
    paths = ["/clusters", f"/clusters/{name}", f"/clusters/{name}/pools", "/audit?limit=200"]
    return "\n".join(client.get(f"{API}{p}", headers=headers).text for p in paths)


def test_slurm_cluster_keeps_its_settings_and_shows_its_token_only_as_set(client, admin_headers):
    out = create(client, admin_headers, "hpc", "slurm", SLURM)
    assert out["engine"] == {"rest_url": "http://slurm-head:6820", "rest_user": "allot", "token": {"set": True},
                             "log_dir": "/srv/slurm/jobs", "partitions": {"a100": "gpu-a100"},
                             "name_prefix": "site1"}
    assert out["status"] == "ready" and out["status_error"] is None
    stored = raw_row(client, "hpc")
    assert TOKEN not in json.dumps(stored, default=str)  # neither in the settings nor in the sealed text
    assert TOKEN[:20] not in (stored["engine_secrets"] or "") and stored["engine_secrets"]
    assert TOKEN not in everything_served(client, admin_headers, "hpc")
    with sessions(client)() as s:  # the server itself opens them, for the engine
        config = engine_config(s, find_cluster(s, "hpc").id, client.app.state.allot.secret_key)
    assert config.get("token") == TOKEN and config.get("log_dir") == "/srv/slurm/jobs"
    assert TOKEN not in repr(config)


def test_an_update_without_the_secret_keeps_it_null_clears_it(client, admin_headers):
    create(client, admin_headers, "hpc", "slurm", SLURM)
    sealed = raw_row(client, "hpc")["engine_secrets"]
    out = patch(client, admin_headers, "hpc", {"engine": {"rest_url": "https://slurm-head:6820", "partitions": None},
                                               "description": "the big one"})
    assert out["engine"]["token"] == {"set": True} and out["engine"]["rest_url"] == "https://slurm-head:6820"
    assert "partitions" not in out["engine"] and out["description"] == "the big one"
    assert raw_row(client, "hpc")["engine_secrets"] == sealed
    # Clearing the token alone leaves rest_url without it: refused, naming both fields' rule.
    bad = patch(client, admin_headers, "hpc", {"engine": {"token": None}}, 422)
    assert [e["field"] for e in bad["errors"]] == ["engine.token"]
    # Back to Slurm's commands: rest settings reset together, the token cleared.
    out = patch(client, admin_headers, "hpc", {"engine": {"rest_url": None, "rest_user": None, "token": None,
                                                          "slurm_conf": "/etc/slurm/slurm.conf"}})
    assert out["engine"]["token"] == {"set": False} and out["engine"]["slurm_conf"] == "/etc/slurm/slurm.conf"
    assert raw_row(client, "hpc")["engine_secrets"] is None
    events = client.get(f"{API}/audit?limit=200", headers=admin_headers).json()["items"]
    updates = [e for e in events if e["action"] == "cluster.update"]
    assert any("token" in e["changes"].get("engine_settings_changed", []) for e in updates)


@pytest.mark.parametrize(("backend", "engine", "field", "words"), [
    ("slurm", {}, "engine.log_dir", "required"),
    ("slurm", {"log_dir": "jobs"}, "engine.log_dir", "absolute"),
    ("slurm", {"log_dir": "/srv/../etc"}, "engine.log_dir", "'..'"),
    ("slurm", {"log_dir": "/j", "rest_url": "http://h:6820"}, "engine.token", "required with rest_url"),
    ("slurm", {"log_dir": "/j", "rest_url": "ftp://h", "rest_user": "u", "token": "t"}, "engine.rest_url", "http"),
    ("slurm", {"log_dir": "/j", "rest_url": "http://u:p@h:6820", "rest_user": "u", "token": "t"}, "engine.rest_url",
     "credentials"),
    ("slurm", {"log_dir": "/j", "rest_url": "http://h:99999", "rest_user": "u", "token": "t"}, "engine.rest_url",
     "URL"),
    ("slurm", {"log_dir": "/j", "token": "t"}, "engine.token", "only with rest_url"),
    ("slurm", {"log_dir": "/j", "rest_url": "http://h", "rest_user": "u", "token": "a b"}, "engine.token",
     "printable"),
    ("slurm", {"log_dir": "/j", "rest_url": "http://h", "rest_user": "u", "token": "t", "slurm_conf": "/etc/s"},
     "engine.slurm_conf", "not used with rest_url"),
    ("slurm", {"log_dir": "/j", "partitions": {"a100": "gpu a100"}}, "engine.partitions.a100", "partition name"),
    ("slurm", {"log_dir": "/j", "partitions": {"../x": "p"}}, "engine.partitions", "pool names"),
    ("slurm", {"log_dir": "/j", "name_prefix": "9lives"}, "engine.name_prefix", "letter"),
    ("slurm", {"log_dir": "/j", "address": "http://ray:8265"}, "engine.address", "not a setting of the slurm"),
    ("slurm", {"log_dir": "/j", "colour": "blue"}, "engine.colour", ""),
    ("slurm", {"log_dir": 5}, "engine.log_dir", "string"),
    ("slurm", {"log_dir": ""}, "engine.log_dir", "empty"),
    ("ray", {}, "engine.address", "required"),
    ("ray", {"address": "ray-head:8265"}, "engine.address", "http"),
    ("ray", {"address": "http://h:8265", "resources": {"a100": "GPU"}}, "engine.resources.a100", "Ray's own"),
    ("ray", {"address": "http://h:8265", "name_prefix": "two words"}, "engine.name_prefix", "letter"),
    ("slurm", {"log_dir": "/j", "accounts": {"alice": "1bad"}}, "engine.accounts.alice", "account name"),
    ("slurm", {"log_dir": "/j", "accounts": {"../x": "alice"}}, "engine.accounts", "user names"),
    ("slurm", {"log_dir": "/j", "rest_url": "http://h", "rest_user": "root", "token": "t",
               "accounts": {"alice": "alice"}}, "engine.accounts", "would run as root"),
    ("local", {"log_dir": "/j"}, "engine.log_dir", "takes no settings"),
    ("simulated", {"nodes_file": "nodes.yaml"}, "engine.nodes_file", "absolute"),
])
def test_engine_settings_are_checked_per_backend_naming_the_field(client, admin_headers, backend, engine, field,
                                                                  words):
    body = create(client, admin_headers, "c1", backend, engine, 422)
    assert field in [e["field"] for e in body["errors"]], body
    message = next(e["message"] for e in body["errors"] if e["field"] == field)
    assert words in message, message
    assert "Traceback" not in json.dumps(body)
    assert client.get(f"{API}/clusters/c1", headers=admin_headers).status_code == 404


def test_error_messages_never_quote_a_secret(client, admin_headers):
    body = create(client, admin_headers, "c1", "slurm", {"log_dir": "/j", "rest_url": "http://h", "rest_user": "u",
                                                         "token": "x" * 9000}, 422)
    assert "xxxxxxxx" not in json.dumps(body)
    body = create(client, admin_headers, "c2", "ray", {"address": "gopher://me:Hunter2-secret@h"}, 422)
    assert "Hunter2" not in json.dumps(body)


def test_ray_address_is_a_secret_and_resources_map_pools(client, admin_headers):
    out = create(client, admin_headers, "ray1", "ray", {"address": RAY_ADDRESS, "resources": {"a100": "pool_a100"}})
    assert out["engine"] == {"address": {"set": True}, "resources": {"a100": "pool_a100"}}
    assert "Ray-pa55word" not in everything_served(client, admin_headers, "ray1")
    assert "Ray-pa55word" not in json.dumps(raw_row(client, "ray1"), default=str)
    out = patch(client, admin_headers, "ray1", {"engine": {"resources": {"h100": "pool_h100"}}})
    assert out["engine"] == {"address": {"set": True}, "resources": {"h100": "pool_h100"}}  # maps replaced whole


def test_slurm_accounts_reach_the_engine(client, admin_headers, tmp_path):
    """An owner's jobs run as their mapped account; '*' names everyone else's."""
    accounts = {"alice": "alice", "*": "slurm-jobs"}
    out = create(client, admin_headers, "hpc", "slurm", SLURM | {"log_dir": str(tmp_path / "jobs"),
                                                                 "rest_user": "root", "accounts": accounts})
    assert out["engine"]["accounts"] == accounts
    state = client.app.state.allot
    with transaction(sessions(client)) as s:
        engine = cluster_backend(s, state.settings, state.secret_key, find_cluster(s, "hpc").id, "slurm")
    assert engine is not None and engine.config.accounts == accounts
    assert (engine.account_of("alice"), engine.account_of("bob"), engine.account_of(None)) == (
        "alice", "slurm-jobs", "slurm-jobs")


def test_ray_name_prefix_reaches_the_engine(client, admin_headers):
    """Each allotment sharing a Ray head needs its own prefix, or their orphan sweeps stop each other's jobs."""
    out = create(client, admin_headers, "ray1", "ray", {"address": RAY_ADDRESS, "name_prefix": "site2"})
    assert out["engine"]["name_prefix"] == "site2"
    state = client.app.state.allot
    with transaction(sessions(client)) as s:
        engine = cluster_backend(s, state.settings, state.secret_key, find_cluster(s, "ray1").id, "ray")
        assert engine is not None and engine.config.name_prefix == "site2"
        assert engine.submission_id(7, "a1").startswith("site2-7-")
    out = patch(client, admin_headers, "ray1", {"engine": {"name_prefix": None}})
    assert "name_prefix" not in out["engine"]


def test_changing_the_backend_starts_from_empty_settings(client, admin_headers):
    create(client, admin_headers, "hpc", "slurm", SLURM)
    patch(client, admin_headers, "hpc", {"backend": "ray"}, 422)  # ray needs its address
    out = patch(client, admin_headers, "hpc", {"backend": "ray", "engine": {"address": "http://ray:8265"}})
    assert out["backend"] == "ray" and out["engine"] == {"address": {"set": True}}
    out = patch(client, admin_headers, "hpc", {"backend": "local"})
    assert out["engine"] == {} and raw_row(client, "hpc")["engine_secrets"] is None
    bad = patch(client, admin_headers, "hpc", {"backend": "k8s"}, 422)
    assert bad["errors"][0]["field"] == "backend"


def test_creator_is_cluster_admin_and_only_platform_admins_change_engines(client, admin_headers):
    create(client, admin_headers, "hpc", "slurm", SLURM)
    me = client.get(f"{API}/auth/whoami", headers=admin_headers).json()
    assert me["cluster_roles"]["hpc"] == "admin"
    users = client.get(f"{API}/clusters/hpc/users", headers=admin_headers).json()["items"]
    assert [(u["username"], u["role"]) for u in users] == [("admin", "admin")]
    alice = make_user(client, "alice", cluster_role="admin")  # admin of `local`
    assert client.patch(f"{API}/clusters/local", headers=alice, json={"description": "x"}).status_code == 403
    assert client.post(f"{API}/clusters", headers=alice, json={"name": "mine"}).status_code == 403
    local = client.get(f"{API}/clusters/local", headers=alice).json()
    assert local["engine"] == {}  # a cluster admin sees the settings
    bob = make_user(client, "bob", cluster_role="user")
    assert client.get(f"{API}/clusters/local", headers=bob).json()["engine"] is None


def test_removal_is_refused_while_jobs_are_active(client, admin_headers):
    h = Harness(client, admin_headers, cluster="sim")
    h.node("n1", gpus=1)
    h.quota("team", [{"resource": "gpu", "guarantee": 1, "limit": 1}])
    first = h.submit("team", gpu=1)
    second = h.submit("team", gpu=1)
    r = client.delete(f"{API}/clusters/sim", headers=admin_headers)
    assert r.status_code == 409, r.text
    detail = r.json()["detail"]
    assert "2 active jobs (2 queued)" in detail and f"{first}, {second}" in detail, detail
    assert client.patch(f"{API}/clusters/sim", headers=admin_headers,
                        json={"backend": "local"}).status_code == 409
    h.cancel(first)
    h.cancel(second)
    assert client.delete(f"{API}/clusters/sim", headers=admin_headers).status_code == 204
    assert client.get(f"{API}/clusters/sim", headers=admin_headers).status_code == 404


def test_engine_status_changes_only_when_the_engine_says_something_new(client, admin_headers):
    create(client, admin_headers, "hpc", "slurm", SLURM)
    since = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    with transaction(sessions(client)) as s:
        cid = find_cluster(s, "hpc").id
        assert report_engine_status(s, cid, "unreachable", "slurmctld: Connection refused to "
                                    "http://allot:hunter2@slurm-head:6820", since)
        assert not report_engine_status(s, cid, "unreachable", "slurmctld: Connection refused to "
                                        "http://allot:hunter2@slurm-head:6820")
    out = client.get(f"{API}/clusters/hpc", headers=admin_headers).json()
    assert out["status"] == "unreachable" and out["status_since"].startswith("2030-01-02T03:04:05")
    assert "Connection refused" in out["status_error"] and "hunter2" not in out["status_error"]
    with transaction(sessions(client)) as s:
        assert report_engine_status(s, cid, "ready", "ignored while ready")
        with pytest.raises(ValueError):
            report_engine_status(s, cid, "sleepy")
    out = client.get(f"{API}/clusters/hpc", headers=admin_headers).json()
    assert (out["status"], out["status_error"]) == ("ready", None) and not out["status_since"].startswith("2030")


def test_cluster_backend_reports_engines_that_cannot_start(client, admin_headers, tmp_path):
    create(client, admin_headers, "ray1", "ray", {"address": RAY_ADDRESS})
    create(client, admin_headers, "sim2", "simulated", {"nodes_file": str(tmp_path / "missing.yaml")})
    create(client, admin_headers, "hpc", "slurm", SLURM | {"log_dir": str(tmp_path / "jobs")})
    state = client.app.state.allot
    with transaction(sessions(client)) as s:
        ids = {n: find_cluster(s, n).id for n in ("ray1", "sim2", "hpc")}
        ray_engine = cluster_backend(s, state.settings, state.secret_key, ids["ray1"], "ray")
        # Built without asking the head (its first call does): its records in a directory of the cluster's own.
        assert ray_engine is not None and ray_engine.config.address == RAY_ADDRESS
        assert ray_engine.state_dir == state.settings.data_dir / "engines" / f"cluster-{ids['ray1']}"
        assert cluster_backend(s, state.settings, state.secret_key, ids["sim2"], "simulated") is None
        engine = cluster_backend(s, state.settings, state.secret_key, ids["hpc"], "slurm")
        assert engine is not None and engine.config.token == TOKEN and engine.config.partitions == {"a100": "gpu-a100"}
    assert client.get(f"{API}/clusters/ray1", headers=admin_headers).json()["status"] == "ready"
    sim = client.get(f"{API}/clusters/sim2", headers=admin_headers).json()
    assert sim["status"] == "unreachable" and "missing.yaml" in sim["status_error"]
    assert client.get(f"{API}/clusters/hpc", headers=admin_headers).json()["status"] == "ready"


def test_secrets_sealed_under_another_key_must_be_set_again(client, admin_headers):
    """As after a change of the server's secret key: the stored token cannot be opened any more."""
    create(client, admin_headers, "hpc", "slurm", SLURM)
    with transaction(sessions(client)) as s:
        find_cluster(s, "hpc").engine_secrets = seal("an-earlier-secret-key", {"token": TOKEN})
    bad = patch(client, admin_headers, "hpc", {"engine": {"log_dir": "/srv/other"}}, 422)
    assert bad["errors"][0]["field"] == "engine.token" and "set it again" in bad["errors"][0]["message"]
    state = client.app.state.allot
    with transaction(sessions(client)) as s:
        assert cluster_backend(s, state.settings, state.secret_key, find_cluster(s, "hpc").id, "slurm") is None
    out = client.get(f"{API}/clusters/hpc", headers=admin_headers).json()
    assert out["status"] == "unreachable" and "set them again" in out["status_error"]
    out = patch(client, admin_headers, "hpc", {"engine": {"token": "new.token.value"}})
    assert out["engine"]["token"] == {"set": True}
    with sessions(client)() as s:
        assert engine_config(s, find_cluster(s, "hpc").id, state.secret_key).get("token") == "new.token.value"
