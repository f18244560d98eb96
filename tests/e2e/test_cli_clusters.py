"""`allot admin add-cluster`, `update-cluster`, `remove-cluster` and `get-clusters` against a real server: engine
settings per backend, secrets from stdin that never come back nor lie in the database in clear, refusals."""

from __future__ import annotations

import json

import pytest

from e2e.clitools import allot, api, ok, unique

pytestmark = pytest.mark.e2e

TOKEN = "eyJhbGciOiJIUzI1NiJ9.Y2xpLXRva2Vu.c2lnbmF0dXJlLW9mLXRoZS1jbGktdG9rZW4"


def cluster_json(cfg, name: str) -> dict:
    clusters = json.loads(ok(allot("admin", "get-clusters", "--json", config_dir=cfg)).stdout)
    return next(c for c in clusters if c["name"] == name)


def block_of(cfg, name: str) -> str:
    out = "\n" + ok(allot("admin", "get-clusters", config_dir=cfg)).stdout
    return out[out.index(f"\n{name}\n") + 1:].split("\n\n")[0]


def database_bytes(server) -> bytes:
    return b"".join(p.read_bytes() for p in server.data_dir.glob("allotment.db*"))


def test_slurm_cluster_from_the_cli_keeps_its_token_secret(server, admin_config):
    name = unique("hpc")
    created = ok(allot("admin", "add-cluster", name, "--backend", "slurm", "--rest-url", "http://127.0.0.1:9",
                       "--rest-user", "allot", "--token-stdin", "--log-dir", "/srv/slurm/jobs",
                       "--partition", "a100=gpu-a100", "--partition", "h100=gpu-h100", "--name-prefix", "site1",
                       input=TOKEN + "\n", config_dir=admin_config))
    assert f"Added cluster {name} (slurm); you are its admin" in created.stdout
    assert TOKEN not in created.stdout + created.stderr
    shown = cluster_json(admin_config, name)
    assert shown["engine"]["token"] == {"set": True}
    assert shown["engine"]["partitions"] == {"a100": "gpu-a100", "h100": "gpu-h100"}
    block = block_of(admin_config, name)
    assert "token" in block and "set (write-only)" in block and TOKEN not in block
    assert "a100=gpu-a100, h100=gpu-h100" in block
    whoami = json.loads(ok(allot("whoami", "--json", config_dir=admin_config)).stdout)
    assert whoami["cluster_roles"][name] == "admin"
    assert TOKEN.encode() not in database_bytes(server)

    # An update without the token keeps it; --clear resets settings; the commands' mode needs no token.
    updated = ok(allot("admin", "update-cluster", name, "--rest-url", "http://127.0.0.1:10", "--description", "rack 7",
                       "--json", config_dir=admin_config))
    body = json.loads(updated.stdout)
    assert body["engine"]["token"] == {"set": True} and body["engine"]["rest_url"] == "http://127.0.0.1:10"
    ok(allot("admin", "update-cluster", name, "--clear", "rest_url", "--clear", "rest_user", "--clear", "token",
             "--slurm-conf", "/etc/slurm/slurm.conf", config_dir=admin_config))
    engine = cluster_json(admin_config, name)["engine"]
    assert engine["token"] == {"set": False} and "rest_url" not in engine
    assert engine["slurm_conf"] == "/etc/slurm/slurm.conf"
    ok(allot("admin", "remove-cluster", name, "--yes", config_dir=admin_config))
    assert name not in [c["name"] for c in json.loads(ok(allot("admin", "get-clusters", "--json",
                                                               config_dir=admin_config)).stdout)]


def test_bad_engine_settings_are_refused_naming_the_field(admin_config):
    name = unique("hpc")
    missing = allot("admin", "add-cluster", name, "--backend", "slurm", config_dir=admin_config)
    assert missing.returncode == 1 and "engine.log_dir" in missing.stderr and "required" in missing.stderr
    relative = allot("admin", "add-cluster", name, "--backend", "slurm", "--log-dir", "jobs", config_dir=admin_config)
    assert relative.returncode == 1 and "engine.log_dir" in relative.stderr and "absolute" in relative.stderr
    wrong = allot("admin", "add-cluster", name, "--backend", "local", "--rest-url", "http://h:6820",
                  config_dir=admin_config)
    assert wrong.returncode == 1 and "engine.rest_url" in wrong.stderr and "local engine" in wrong.stderr
    bad_map = allot("admin", "add-cluster", name, "--backend", "slurm", "--log-dir", "/j", "--partition", "a100",
                    config_dir=admin_config)
    assert bad_map.returncode == 2 and "POOL=NAME" in bad_map.stderr
    assert "Traceback" not in missing.stderr + relative.stderr + wrong.stderr + bad_map.stderr
    assert name not in json.dumps(json.loads(ok(allot("admin", "get-clusters", "--json",
                                                      config_dir=admin_config)).stdout))


def test_ray_address_with_credentials_only_through_stdin(server, admin_config):
    name = unique("ray")
    secret_address = "http://ray-user:Cli-ray-pa55@127.0.0.1:8265"
    refused = allot("admin", "add-cluster", name, "--backend", "ray", "--address", secret_address,
                    config_dir=admin_config)
    assert refused.returncode == 2 and "--address-stdin" in refused.stderr
    ok(allot("admin", "add-cluster", name, "--backend", "ray", "--address-stdin", "--resource", "a100=pool_a100",
             "--name-prefix", "site2", input=secret_address + "\n", config_dir=admin_config))
    shown = cluster_json(admin_config, name)
    assert shown["engine"] == {"address": {"set": True}, "resources": {"a100": "pool_a100"}, "name_prefix": "site2"}
    assert b"Cli-ray-pa55" not in database_bytes(server)
    ok(allot("admin", "remove-cluster", name, "--yes", config_dir=admin_config))


def test_remove_cluster_is_refused_while_jobs_are_active(admin_config):
    name = unique("sim")
    ok(allot("admin", "add-cluster", name, "--backend", "simulated", config_dir=admin_config))
    api(admin_config, "POST", f"clusters/{name}/quotas", json={"name": "q", "resources": [
        {"resource": "gpu", "guarantee": 1, "limit": 1}]})
    job = api(admin_config, "POST", "jobs", json={"cluster": name, "quota": "q", "command": ["true"],
                                                  "gpu": 1000}).json()  # more than the cluster has: it waits
    refused = allot("admin", "remove-cluster", name, "--yes", config_dir=admin_config)
    assert refused.returncode == 1, refused.stdout
    assert "1 active job" in refused.stderr and str(job["id"]) in refused.stderr
    unconfirmed = allot("admin", "remove-cluster", name, config_dir=admin_config)
    assert unconfirmed.returncode == 1 and "kept" in unconfirmed.stderr
    api(admin_config, "POST", f"jobs/{job['id']}/cancel")
    ok(allot("admin", "remove-cluster", name, "--yes", config_dir=admin_config))
