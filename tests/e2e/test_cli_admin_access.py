"""`allot admin` clusters, cluster roles, groups and service accounts against a real server."""

from __future__ import annotations

import json

import pytest

from e2e.clitools import allot, api, ok, printed_credential, unique

pytestmark = pytest.mark.e2e


def cluster_users(cfg, cluster="local") -> dict[str, tuple[str, str]]:
    items = json.loads(ok(allot("admin", "get-cluster-users", cluster, "--json", config_dir=cfg)).stdout)
    return {i["username"]: (i["role"], i["via"]) for i in items}


def whoami(cfg) -> dict:
    return json.loads(ok(allot("whoami", "--json", config_dir=cfg)).stdout)


def test_get_clusters_shows_status_backend_and_pools(admin_config):
    # A cluster of its own, so that nodes other tests register cannot change what this one shows.
    name = unique("gpu-farm")
    api(admin_config, "POST", "clusters", json={"name": name, "backend": "local"})
    devices = [{"index": i, "model": "A100-80G", "memory": "80Gi"} for i in range(2)]
    api(admin_config, "POST", f"clusters/{name}/nodes", json={"name": "node-1", "cpu": 32, "memory": "256Gi",
                                                               "devices": devices})

    out = "\n" + ok(allot("admin", "get-clusters", config_dir=admin_config)).stdout
    block = out[out.index(f"\n{name}\n") + 1:].split("\n\n")[0].splitlines()  # clusters are blank-line separated
    assert any(line.split() == ["Status", "ready"] for line in block)
    assert any(line.split() == ["Backend", "local"] for line in block)
    header = next(line for line in block if "Machine" in line)
    columns = [c.strip() for c in header.split("┃")]
    assert columns == ["Pool", "Machine", "CPU", "Memory", "Preemptible", "GPU", "Nodes", "Min", "Max"]
    [row] = [dict(zip(columns, (c.strip() for c in line.split("│")), strict=True)) for line in block
             if line.startswith("default ")]
    # Neu.ro's node-pool table: each node's CPU, memory and GPUs, how many nodes, and the pool's node bounds.
    assert (row["CPU"], row["Memory"], row["GPU"], row["Nodes"]) == ("32", "256Gi", "2 x A100-80G", "1")
    assert (row["Machine"], row["Preemptible"], row["Min"], row["Max"]) == ("-", "no", "-", "-")

    clusters = json.loads(ok(allot("admin", "get-clusters", "--json", config_dir=admin_config)).stdout)
    mine = next(c for c in clusters if c["name"] == name)
    assert mine["backend"] == "local"
    assert [(p["name"], p["devices"], p["gpus"]) for p in mine["pools"]] == [("default", 2, 2)]
    assert "local" in {c["name"] for c in clusters}


def test_cluster_user_add_change_remove(admin_config, new_user):
    name, _, cfg = new_user("john")
    r = ok(allot("admin", "add-cluster-user", "local", name, "user", config_dir=admin_config))
    assert r.stdout.strip() == f"Added {name} to cluster local as user"
    assert cluster_users(admin_config)[name] == ("user", "direct")
    assert whoami(cfg)["cluster_roles"] == {"local": "user"}

    ok(allot("admin", "set-cluster-role", "local", name, "manager", config_dir=admin_config))
    assert cluster_users(admin_config)[name] == ("manager", "direct")
    # A manager may list the cluster's users.
    assert name in cluster_users(cfg)

    # DKube's Operator is a cluster admin.
    r = ok(allot("admin", "set-cluster-role", "local", name, "operator", config_dir=admin_config))
    assert r.stdout.strip() == f"{name} is now admin on cluster local"
    assert whoami(cfg)["cluster_roles"] == {"local": "admin"}

    r = ok(allot("admin", "remove-cluster-user", "local", name, config_dir=admin_config))
    assert r.stdout.strip() == f"Removed {name} from cluster local"
    assert name not in cluster_users(admin_config)
    assert whoami(cfg)["cluster_roles"] == {}
    assert allot("admin", "get-cluster-users", "local", config_dir=cfg).returncode == 1

    # Adding back restores access.
    ok(allot("admin", "add-cluster-user", "local", name, "data-scientist", config_dir=admin_config))
    assert cluster_users(admin_config)[name] == ("user", "direct")


def test_cluster_role_errors(admin_config, new_user):
    name, _, _ = new_user("bad-role")
    r = allot("admin", "add-cluster-user", "local", name, "overlord", config_dir=admin_config)
    assert r.returncode == 1 and "role" in r.stderr
    r = allot("admin", "add-cluster-user", "no-such-cluster", name, "user", config_dir=admin_config)
    assert r.returncode == 1 and "no-such-cluster" in r.stderr
    r = allot("admin", "add-cluster-user", "local", unique("ghost"), "user", config_dir=admin_config)
    assert r.returncode == 1 and "ghost" in r.stderr


def test_groups(admin_config, new_user):
    member, _, member_cfg = new_user("grace")
    group = unique("ml-team")
    ok(allot("admin", "groups", "create", group, "--description", "ML people", config_dir=admin_config))
    groups = json.loads(ok(allot("admin", "groups", "list", "--json", config_dir=admin_config)).stdout)
    assert {"users", "admins", group} <= {g["name"] for g in groups}
    assert group in ok(allot("admin", "groups", "list", config_dir=admin_config)).stdout

    ok(allot("admin", "groups", "add-member", group, member, config_dir=admin_config))
    shown = json.loads(ok(allot("admin", "groups", "show", group, "--json", config_dir=admin_config)).stdout)
    assert shown["description"] == "ML people"
    assert member in json.dumps(shown["members"])
    assert group in whoami(member_cfg)["groups"]

    # A role granted to the group reaches its members, and says so.
    ok(allot("admin", "add-cluster-group", "local", group, "manager", config_dir=admin_config))
    assert cluster_users(admin_config)[member] == ("manager", f"group:{group}")

    renamed = unique("vision")
    ok(allot("admin", "groups", "rename", group, renamed, config_dir=admin_config))
    assert cluster_users(admin_config)[member] == ("manager", f"group:{renamed}")

    ok(allot("admin", "groups", "remove-member", renamed, member, config_dir=admin_config))
    assert member not in cluster_users(admin_config)
    ok(allot("admin", "groups", "add-member", renamed, member, config_dir=admin_config))

    r = allot("admin", "groups", "delete", renamed, config_dir=admin_config)
    assert r.returncode == 1 and "pass --yes" in r.stderr
    r = allot("admin", "groups", "delete", renamed, "--yes", config_dir=admin_config)
    assert r.returncode == 1 and f"members ({member})" in r.stderr  # it has a member: refused without --force
    ok(allot("admin", "groups", "delete", renamed, "--yes", "--force", config_dir=admin_config))
    assert member not in cluster_users(admin_config)  # only what the group granted goes
    assert allot("admin", "groups", "show", renamed, config_dir=admin_config).returncode == 1


def test_builtin_groups_are_protected(admin_config):
    r = allot("admin", "groups", "delete", "users", "--yes", config_dir=admin_config)
    assert r.returncode == 1 and r.stderr.startswith("error: ")
    r = allot("admin", "groups", "rename", "admins", unique("bosses"), config_dir=admin_config)
    assert r.returncode == 1
    r = allot("admin", "groups", "remove-member", "admins", "admin", config_dir=admin_config)
    assert r.returncode == 1  # never the last admin


def test_service_accounts(server, admin_config, tmp_path):
    name = unique("ci-bot")
    r = ok(allot("admin", "service-accounts", "create", name, "--description", "CI", "--allow-impersonation",
                 config_dir=admin_config))
    assert f"Created service account {name}" in r.stdout
    accounts = json.loads(ok(allot("admin", "service-accounts", "list", "--json", config_dir=admin_config)).stdout)
    [account] = [a for a in accounts if a["name"] == name]
    assert account["allow_impersonation"] is True and account["description"] == "CI"

    ok(allot("admin", "service-accounts", "update", name, "--no-allow-impersonation", "--description", "CI runner",
             config_dir=admin_config))
    accounts = json.loads(ok(allot("admin", "service-accounts", "list", "--json", config_dir=admin_config)).stdout)
    [account] = [a for a in accounts if a["name"] == name]
    assert account["allow_impersonation"] is False and account["description"] == "CI runner"
    assert name in ok(allot("admin", "service-accounts", "list", config_dir=admin_config)).stdout

    out = ok(allot("admin", "service-accounts", "create-credential", name, "--label", "pipeline",
                   config_dir=admin_config)).stdout
    key, secret = printed_credential(out)
    assert f"--access-key {key} --secret-stdin" in out

    sa_cfg = tmp_path / "sa-cli"
    ok(allot("login", server.url, "--access-key", key, "--secret-stdin", input=secret + "\n", config_dir=sa_cfg))
    me = whoami(sa_cfg)
    assert me["username"] == name and me["kind"] == "service_account"

    # Never logs in with a password (it has none; the login endpoint refuses service accounts).
    assert allot("login", server.url, "-u", name, "--password-stdin", input=secret + "\n",
                 config_dir=tmp_path / "pw").returncode == 1

    r = allot("admin", "service-accounts", "delete", name, config_dir=admin_config)
    assert r.returncode == 1  # no terminal, no --yes
    ok(allot("admin", "service-accounts", "delete", name, "--yes", config_dir=admin_config))
    assert allot("whoami", config_dir=sa_cfg).returncode == 1  # its credentials were revoked
