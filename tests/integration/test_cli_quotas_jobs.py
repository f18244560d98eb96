"""The `allot jobs|quotas|pools|profiles|policies` commands against the app in-process (the CLI's HTTP client is
pointed at the test client, so every command goes through the real API)."""

from __future__ import annotations

import json

import pytest
from cli_inprocess import cli_runner
from inventory_helpers import register_node


@pytest.fixture
def allot(client, admin_headers, monkeypatch, tmp_path):
    """Run `allot ARGS...` as the admin; returns (exit code, output)."""
    return cli_runner(client, monkeypatch, tmp_path)(admin_headers)


def test_pools_quotas_and_scale_from_the_cli(allot, client, admin_headers):
    register_node(client, admin_headers, "gpu-01", "A100", 4)
    code, out = allot("pools", "create", "a100", "--node", "gpu-01")
    assert code == 0 and "pool a100 created with 4 device(s)" in out
    code, out = allot("pools", "list", "--json")
    assert {p["name"]: p["devices"] for p in json.loads(out)["items"]} == {"default": 0, "a100": 4}
    assert allot("quotas", "create", "Quota1", "--pool", "a100", "--gpu", "128", "--gpu-limit", "128",
                 "--child-preemption")[0] == 0
    for name, size in (("Quota1.1", "48"), ("Quota1.2", "80")):
        code, out = allot("quotas", "create", name, "--parent", "Quota1", "--pool", "a100", "--gpu", size,
                          "--gpu-limit", size)
        assert code == 0, out
    code, out = allot("quotas", "scale", "Quota1.1=56", "Quota1.2=72", "--pool", "a100", "--json")
    assert code == 0, out
    sizes = {q["name"]: q["resources"][0]["guarantee"] for q in json.loads(out)["items"]}
    assert sizes == {"Quota1.1": "56", "Quota1.2": "72"}
    code, out = allot("quotas", "scale", "Quota1.1=64", "--pool", "a100")
    assert code == 1 and "but Quota1 guarantees 128" in out
    code, out = allot("quotas", "set", "Quota1.2", "--pool", "a100", "--gpu", "70", "--reclaim", "any", "--json")
    assert code == 0 and json.loads(out)["reclaim"] == "any"
    assert json.loads(out)["resources"][0]["guarantee"] == "70"
    code, out = allot("quotas", "show", "Quota1")
    assert code == 0 and "Quota1.1, Quota1.2" in out


def test_jobs_submit_list_show_cancel_from_the_cli(allot, client, admin_headers):
    allot("quotas", "create", "research")
    code, out = allot("jobs", "submit", "--quota", "research", "--gpu", "0.5", "--memory", "16Gi",
                      "--priority-class", "interactive", "--time-limit", "2h", "--name", "nb", "--json",
                      "--", "python", "train.py", "--epochs", "3")
    assert code == 0, out
    job = json.loads(out)
    assert job["command"] == ["python", "train.py", "--epochs", "3"]
    assert (job["gpu"], job["memory"], job["time_limit_s"], job["state"]) == ("0.5", "16Gi", 7200, "queued")
    code, out = allot("jobs", "list")
    assert code == 0 and "1 job(s)" in out
    code, out = allot("jobs", "list", "--state", "queued", "--json")
    assert [(j["id"], j["quota"], j["reason"]) for j in json.loads(out)["items"]] == \
        [(job["id"], "research", "waiting for the scheduler")]
    code, out = allot("jobs", "show", str(job["id"]))
    assert code == 0 and "pending: waiting for the scheduler" in out
    code, out = allot("jobs", "cancel", str(job["id"]))
    assert code == 0 and f"job {job['id']} cancelled" in out
    code, out = allot("jobs", "submit", "--quota", "research", "--gpu", "0.255", "--", "x")
    assert code == 1 and "fractional GPUs go in steps of 0.01" in out
    code, out = allot("jobs", "submit", "--quota", "research", "--gpu", "1", "--profile", "p", "--", "x")
    assert code != 0


def test_jobs_submit_with_a_profile_cpu_and_a_pinned_pool_from_the_cli(allot, client, admin_headers):
    register_node(client, admin_headers, "gpu-01", "H100", 4)
    register_node(client, admin_headers, "gpu-02", "H100", 4)
    assert allot("pools", "create", "h100-a", "--node", "gpu-01")[0] == 0
    assert allot("pools", "create", "h100-b", "--node", "gpu-02")[0] == 0
    assert allot("profiles", "create", "2xGPU", "--gpu", "2", "--cpu", "8", "--memory", "64Gi",
                 "--pool", "h100-a", "--pool", "h100-b")[0] == 0
    assert allot("quotas", "create", "research")[0] == 0

    # --profile: the job takes the profile's allotment (copied at submission)
    code, out = allot("jobs", "submit", "--quota", "research", "--profile", "2xGPU", "--json", "--", "train")
    assert code == 0, out
    job = json.loads(out)
    assert (job["profile"], job["gpu"], job["cpu"], job["memory"], job["pool"]) == ("2xGPU", "2", "8", "64Gi", None)
    code, out = allot("jobs", "submit", "--quota", "research", "--profile", "2xGPU", "--", "train")
    assert code == 0 and "queued in quota research: waiting for the scheduler" in out

    # --profile with --pool pins the job to one of the profile's pools
    code, out = allot("jobs", "submit", "--quota", "research", "--profile", "2xGPU", "--pool", "h100-b", "--json",
                      "--", "train")
    assert code == 0, out
    assert (json.loads(out)["profile"], json.loads(out)["pool"]) == ("2xGPU", "h100-b")
    code, out = allot("jobs", "submit", "--quota", "research", "--profile", "2xGPU", "--pool", "default", "--",
                      "train")
    assert code == 1 and "profile 2xGPU is not linked to pool default" in out

    # --cpu alone is a CPU job; --gpu with --cpu and --pool pins a GPU job
    code, out = allot("jobs", "submit", "--quota", "research", "--cpu", "4", "--json", "--", "etl")
    assert code == 0, out
    assert (json.loads(out)["cpu"], json.loads(out)["gpu"]) == ("4", "0")
    code, out = allot("jobs", "submit", "--quota", "research", "--gpu", "1", "--cpu", "500m", "--pool", "h100-a",
                      "--json", "--", "train")
    assert code == 0, out
    assert (json.loads(out)["gpu"], json.loads(out)["cpu"], json.loads(out)["pool"]) == ("1", "0.5", "h100-a")
    code, out = allot("jobs", "submit", "--quota", "research", "--gpu", "1", "--pool", "nowhere", "--", "x")
    assert code == 1 and "nowhere" in out

    code, out = allot("jobs", "list", "--json")
    assert sorted(j["profile"] or "-" for j in json.loads(out)["items"]) == ["-", "-", "2xGPU", "2xGPU", "2xGPU"]


def test_profiles_policies_and_config_from_the_cli(allot, client, admin_headers, tmp_path):
    register_node(client, admin_headers, "gpu-01", "H100", 2)
    allot("pools", "create", "H100", "--node", "gpu-01")
    code, out = allot("profiles", "create", "4xGPU", "--gpu", "4", "--pool", "H100=4 GPU H100 link")
    assert code == 0, out
    code, out = allot("profiles", "list", "--json")
    assert json.loads(out)["items"][0]["pools"][0]["name"] == "4 GPU H100 link"
    code, out = allot("policies", "create", "student", "--cpu", "2", "--concurrent-jobs", "3")
    assert code == 0, out
    code, out = allot("policies", "allowance", "--json")
    assert json.loads(out)["policy"] == "default"
    code, out = allot("policies", "classes")
    assert code == 0 and "inference" in out
    draft = tmp_path / "draft.json"
    draft.write_text(json.dumps({"quotas": [{"name": "Dev", "resources": [{"resource": "gpu", "guarantee": 8,
                                                                           "limit": 16}]}],
                                 "profiles": [{"name": "4xGPU", "gpu": 4, "pools": [{"pool": "H100"}],
                                               "policies": ["Dev"]}]}))
    assert allot("quotas", "config", "draft", "--file", str(draft))[0] == 0
    code, out = allot("quotas", "config", "provision")
    assert code == 0 and "provisioned" in out
    code, out = allot("quotas", "list", "--json")
    assert [q["name"] for q in json.loads(out)["items"]] == ["Dev"]
    assert allot("quotas", "config", "disable")[0] == 0
    code, out = allot("quotas", "config", "show")
    assert json.loads(out)["resource_management_enabled"] is False


def test_config_provision_shows_why_a_stale_draft_is_refused(allot, tmp_path):
    assert allot("quotas", "create", "Dev")[0] == 0
    code, out = allot("quotas", "config", "draft")
    draft = tmp_path / "draft.json"
    draft.write_text(out)
    assert allot("quotas", "config", "draft", "--file", str(draft))[0] == 0
    assert allot("quotas", "create", "Ops")[0] == 0  # a live edit after the draft was saved
    code, out = allot("quotas", "config", "provision")
    assert code == 1
    assert "the live configuration of cluster local has changed since" in out
    assert "allot quotas config reset --cluster local" in out
    code, out = allot("quotas", "list", "--json")
    assert [q["name"] for q in json.loads(out)["items"]] == ["Dev", "Ops"]
    assert allot("quotas", "config", "draft", "--file", str(draft))[0] == 0  # re-saved: the admin means it
    code, out = allot("quotas", "config", "provision")
    assert code == 0 and "provisioned" in out
    code, out = allot("quotas", "list", "--json")
    assert [q["name"] for q in json.loads(out)["items"]] == ["Dev"]


def test_quota_pools_from_the_cli(allot, client, admin_headers):
    register_node(client, admin_headers, "gpu-01", "A100", 4)
    assert allot("pools", "create", "a100", "--node", "gpu-01")[0] == 0
    code, out = allot("quotas", "create", "vision", "--pools", "a100", "--json")
    assert code == 0 and json.loads(out)["pools"] == ["a100"]
    code, out = allot("quotas", "show", "vision")
    assert code == 0 and "a100" in out.split("pools", 1)[1].splitlines()[0]
    code, out = allot("quotas", "set", "vision", "--pools", "a100,nope")
    assert code == 1 and "no pool 'nope' in cluster local" in out
    code, out = allot("quotas", "set", "vision", "--pools", "all", "--json")
    assert code == 0 and json.loads(out)["pools"] == [] and json.loads(out)["usable_pools"] is None


def test_workspaces_from_the_cli(allot, client, admin_headers):
    assert allot("quotas", "create", "Quota1.1", "--gpu", "4")[0] == 0
    r = client.post("/api/v1/users", headers=admin_headers,
                    json={"email": "bob@example.com", "username": "bob", "password": "Str0ng-password!"})
    assert r.status_code == 201
    code, out = allot("admin", "workspaces", "create", "workspace-b", "--description", "Team B", "--user", "bob",
                      "--quota", "Quota1.1")
    assert code == 0 and "workspace workspace-b created, bound to Quota1.1" in out
    code, out = allot("admin", "workspaces", "list", "--json")
    assert code == 0
    [ws] = json.loads(out)["items"]
    assert ([(m["kind"], m["name"], m["role"]) for m in ws["members"]], ws["quotas"]) == (
        [("user", "bob", "member")], ["Quota1.1"])
    code, out = allot("admin", "workspaces", "show", "workspace-b")
    assert code == 0 and "user:bob" in out and "Quota1.1" in out
    code, out = allot("admin", "workspaces", "remove-member", "workspace-b", "--user", "bob")
    assert code == 0 and "user bob removed from workspace workspace-b" in out
    code, out = allot("admin", "workspaces", "remove-member", "workspace-b", "--user", "bob")
    assert code == 1 and "user bob is not a member of workspace workspace-b" in out
    assert allot("quotas", "bind", "Quota1.1", "--workspace", "workspace-b", "--remove")[0] == 0
    code, out = allot("quotas", "show", "Quota1.1", "--json")
    assert code == 0 and json.loads(out)["bindings"] == []
    code, out = allot("quotas", "bind", "Quota1.1", "--workspace", "workspace-b")
    assert code == 0 and "workspace workspace-b may submit to quota Quota1.1" in out
    code, out = allot("admin", "workspaces", "delete", "workspace-b", "--yes")
    assert code == 0 and "workspace workspace-b deleted" in out
