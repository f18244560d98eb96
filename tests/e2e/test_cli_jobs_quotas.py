"""End to end: an admin builds a quota and binds a user; the user submits, lists, shows and cancels a job with the
real `allot` against a real server."""

from __future__ import annotations

import json

import pytest

from e2e.clitools import ok, unique

pytestmark = pytest.mark.e2e


def test_quota_binding_and_job_lifecycle(server, allot, admin_config, new_user):
    quota = unique("research")
    username, _, user_config = new_user("scientist")
    ok(allot("quotas", "create", quota, "--gpu", "8", "--gpu-limit", "16", config_dir=admin_config))
    ok(allot("admin", "add-cluster-user", "local", username, "user", config_dir=admin_config))
    refused = allot("jobs", "submit", "--quota", quota, "--gpu", "1", "--", "python", "train.py",
                    config_dir=user_config)
    assert refused.returncode == 1 and "not bound to you" in refused.stderr
    ok(allot("quotas", "bind", quota, "--user", username, config_dir=admin_config))

    submitted = ok(allot("jobs", "submit", "--quota", quota, "--gpu", "0.5", "--time-limit", "2h", "--json",
                         "--", "python", "train.py", "--lr", "0.1", config_dir=user_config))
    job = json.loads(submitted.stdout)
    assert (job["state"], job["reason"], job["command"]) == ("queued", "waiting for the scheduler",
                                                             ["python", "train.py", "--lr", "0.1"])
    listed = json.loads(ok(allot("jobs", "list", "--json", config_dir=user_config)).stdout)
    assert [j["id"] for j in listed["items"]] == [job["id"]]
    shown = ok(allot("jobs", "show", str(job["id"]), config_dir=user_config)).stdout
    # The server's scheduler may already have explained why it waits (this host has no GPU); either way it says why.
    assert "queued" in shown and "reason" in shown and "python train.py --lr 0.1" in shown
    cancelled = ok(allot("jobs", "cancel", str(job["id"]), config_dir=user_config)).stdout
    assert f"job {job['id']} cancelled" in cancelled
    bad = allot("jobs", "submit", "--quota", quota, "--gpu", "0.255", "--", "x", config_dir=user_config)
    assert bad.returncode == 1 and "fractional GPUs go in steps of 0.01" in bad.stderr
