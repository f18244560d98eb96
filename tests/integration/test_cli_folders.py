"""`allot folders ...` against the app in process: create, list, upload, ls, download, share, invitations, accept,
reject, trash, restore, purge and the storage hosts, each through the real API."""

from __future__ import annotations

import json

import pytest
from cli_inprocess import cli_runner
from inventory_helpers import make_user, quota


@pytest.fixture
def allot_as(client, admin_headers, monkeypatch, tmp_path):
    return cli_runner(client, monkeypatch, tmp_path / "config")


def test_the_folder_workflow_from_the_cli(client, admin_headers, allot_as, tmp_path):
    ann = allot_as(make_user(client, "ann"))
    ben = allot_as(make_user(client, "ben"))
    code, out = ann("folders", "create", "models", "--capacity", "1Gi")
    assert code == 0 and "folder models" in out and "capacity 1Gi" in out, out
    source = tmp_path / "weights.bin"
    source.write_bytes(b"\x00\x01" * 300_000)
    code, out = ann("folders", "upload", "models", str(source), "v1/")
    assert code == 0 and "uploaded v1/weights.bin" in out, out
    code, out = ann("folders", "ls", "models", "v1")
    assert code == 0 and "v1/weights.bin" in out, out
    code, out = ann("folders", "share", "models", "ben", "--permission", "ro")
    assert code == 0 and "ben to models (ro), pending" in out, out
    invitation = out.split("invitation ")[1].split(":")[0]
    code, out = ben("folders", "invitations", "--state", "pending")
    assert code == 0 and "models" in out and "received" in out
    code, out = ben("folders", "accept", invitation)
    assert code == 0 and "accepted" in out
    code, out = ben("folders", "list")
    assert code == 0 and "models" in out and "invitation" in out
    target = tmp_path / "copy.bin"
    code, out = ben("folders", "download", "models", "v1/weights.bin", str(target))
    assert code == 0 and target.read_bytes() == source.read_bytes(), out
    code, out = ben("folders", "upload", "models", str(source))
    assert code == 1 and "your permission on this folder is ro" in out, out
    code, out = ann("folders", "trash", "models")
    assert code == 0 and "trash" in out
    code, out = ann("folders", "list", "--trashed")
    assert "models" in out
    code, out = ann("folders", "restore", "models")
    assert code == 0
    ann("folders", "trash", "models")
    code, out = ann("folders", "purge", "models", "--yes")
    assert code == 0 and "purged" in out
    code, out = ben("folders", "share", "x", "ann")
    assert code == 1 and "no folder 'x'" in out


def test_reject_and_hosts_from_the_cli(client, admin_headers, allot_as):
    admin = allot_as(admin_headers)
    cid = allot_as(make_user(client, "cid"))
    dee = allot_as(make_user(client, "dee"))
    cid("folders", "create", "notes")
    code, out = cid("folders", "share", "notes", "dee")
    invitation = out.split("invitation ")[1].split(":")[0]
    code, out = dee("folders", "reject", invitation)
    assert code == 0 and "rejected" in out
    code, out = admin("folders", "hosts", "create", "bucket1", "--endpoint", "http://127.0.0.1:1", "--bucket", "b",
                      "--access-key", "AK", "--secret-key", "very-secret")
    assert code == 0 and "bucket1 (s3) created" in out, out
    code, out = admin("folders", "hosts", "list", "--json")
    assert code == 0 and "very-secret" not in out and '"secret_set": true' in out
    code, out = admin("folders", "hosts", "test", "bucket1")
    assert code == 1 and "could not be reached" in out, out
    code, out = cid("folders", "hosts", "create", "mine", "--endpoint", "http://x", "--bucket", "b",
                    "--access-key", "a", "--secret-key", "s")
    assert code == 1


def test_jobs_submit_mount_from_the_cli(client, admin_headers, allot_as):
    eve = allot_as(make_user(client, "eve", cluster_role="user"))
    eve("folders", "create", "inputs")
    quota(client, admin_headers, "q")
    assert client.put("/api/v1/quotas/q/bindings/users/eve", headers=admin_headers).status_code == 204
    code, out = eve("jobs", "submit", "--quota", "q", "--json", "--mount", "inputs:data:ro", "--mount", "inputs",
                    "--", "ls")
    assert code == 0, out
    mounts = json.loads(out)["mounts"]
    assert mounts == [{"folder": "inputs", "host": "local", "target": "data", "read_only": True},
                      {"folder": "inputs", "host": "local", "target": "folders/inputs", "read_only": False}]
    code, out = eve("jobs", "submit", "--quota", "q", "--mount", "nope", "--", "ls")
    assert code == 1 and "no folder 'nope'" in out
