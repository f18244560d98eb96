"""End to end: `allot admin remove-cluster-user` revokes the right to submit to the cluster's quotas (adding back
restores it), `allot admin deactivate-user` refuses while the user's jobs run unless --stop-jobs, and
`allot admin groups delete` refuses a group with members unless --force."""

from __future__ import annotations

import json
import time

import pytest

from e2e.clitools import api, ok, unique

pytestmark = pytest.mark.e2e


def test_removing_a_cluster_user_revokes_submission(allot, admin_config, new_user):
    quota = unique("dev")
    name, _, cfg = new_user("dev1")
    ok(allot("quotas", "create", quota, "--gpu", "1", config_dir=admin_config))
    ok(allot("quotas", "bind", quota, "--user", name, config_dir=admin_config))
    submit = ("jobs", "submit", "--quota", quota, "--gpu", "1", "--", "python", "train.py")
    refused = allot(*submit, config_dir=cfg)  # bound, but never added to the cluster
    assert refused.returncode == 1 and "no access to cluster local" in refused.stderr

    ok(allot("admin", "add-cluster-user", "local", name, "user", config_dir=admin_config))
    job = json.loads(ok(allot(*submit[:-3], "--json", "--", "python", "train.py", config_dir=cfg)).stdout)
    ok(allot("admin", "remove-cluster-user", "local", name, config_dir=admin_config))
    refused = allot(*submit, config_dir=cfg)
    assert refused.returncode == 1 and "no access to cluster local" in refused.stderr
    shown = api(cfg, "GET", f"jobs/{job['id']}").json()  # the job is kept, cancelled with the reason
    assert shown["state"] == "cancelled" and "no longer has access to cluster local" in shown["reason"]

    ok(allot("admin", "add-cluster-user", "local", name, "user", config_dir=admin_config))
    ok(allot(*submit, config_dir=cfg))


def test_deactivating_a_user_with_running_jobs_needs_stop_jobs(allot, admin_config, new_user):
    quota = unique("cpuq")
    name, _, cfg = new_user("leaver")
    ok(allot("quotas", "create", quota, "--cpu", "0.5", "--cpu-limit", "1", config_dir=admin_config))
    ok(allot("quotas", "bind", quota, "--user", name, config_dir=admin_config))
    ok(allot("admin", "add-cluster-user", "local", name, "user", config_dir=admin_config))
    out = ok(allot("jobs", "submit", "--quota", quota, "--cpu", "0.1", "--json", "--", "sleep", "600",
                   config_dir=cfg))
    job_id = json.loads(out.stdout)["id"]
    deadline = time.monotonic() + 120
    while api(admin_config, "GET", f"jobs/{job_id}").json()["state"] not in ("admitted", "running"):
        assert time.monotonic() < deadline, api(admin_config, "GET", f"jobs/{job_id}").json()
        time.sleep(0.3)

    refused = allot("admin", "deactivate-user", name, "--yes", config_dir=admin_config)
    assert refused.returncode == 1 and f"job {job_id} (" in refused.stderr and "--stop-jobs" in refused.stderr
    assert api(admin_config, "GET", f"users/{name}").json()["is_active"] is True

    done = ok(allot("admin", "deactivate-user", name, "--yes", "--stop-jobs", config_dir=admin_config))
    assert f"cancelled jobs {job_id}" in done.stdout
    deadline = time.monotonic() + 120
    while (job := api(admin_config, "GET", f"jobs/{job_id}").json())["state"] != "cancelled":
        assert time.monotonic() < deadline, job
        time.sleep(0.3)
    assert api(admin_config, "GET", f"users/{name}").json()["is_active"] is False


def test_deleting_a_group_with_members_needs_force(allot, admin_config, new_user):
    group = unique("team")
    name, _, _ = new_user("member", login=False)
    ok(allot("admin", "groups", "create", group, config_dir=admin_config))
    ok(allot("admin", "groups", "add-member", group, name, config_dir=admin_config))
    refused = allot("admin", "groups", "delete", group, "--yes", config_dir=admin_config)
    assert refused.returncode == 1 and f"members ({name})" in refused.stderr and "force" in refused.stderr
    ok(allot("admin", "groups", "show", group, config_dir=admin_config))  # still there
    ok(allot("admin", "groups", "delete", group, "--yes", "--force", config_dir=admin_config))
    assert allot("admin", "groups", "show", group, config_dir=admin_config).returncode == 1
