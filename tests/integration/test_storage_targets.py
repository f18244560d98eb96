"""Storage targets (DKube DVS, ClearML cloud access; issue 17): S3/MinIO against a real S3 server that checks
credentials (SeaweedFS), GCS, a git metadata source and a cluster folder; secrets sealed and never shown back (an
edit without a new one keeps it); "test connection" reporting the service's own error; validation naming the field;
only platform admins manage them."""

from __future__ import annotations

import json
import subprocess

import pytest
from inventory_helpers import API, make_user
from s3_helpers import s3_server  # noqa: F401 - the session fixture

from allotment.db import transaction
from allotment.storage.targets_models import StorageTarget


def _s3(client, headers, server, name="dvs", secret=None):
    return client.post(f"{API}/storage/targets", headers=headers, json={
        "name": name, "kind": "s3", "endpoint": server.endpoint, "bucket": server.bucket, "region": "us-east-1",
        "access_key": server.access_key, "secret_key": secret or server.secret_key})


def test_s3_target_secret_sealed_never_shown_kept_on_edit_and_tested_for_real(client, admin_headers,
                                                                            s3_server):  # noqa: F811
    r = _s3(client, admin_headers, s3_server)
    assert r.status_code == 201, r.text
    assert r.json()["secret_set"] is True and s3_server.secret_key not in r.text
    assert "AWS_SECRET_ACCESS_KEY" in r.json()["job_env"]
    with transaction(client.app.state.allot.sessions) as s:
        stored = s.query(StorageTarget).one()
        assert stored.sealed_secrets and s3_server.secret_key not in stored.sealed_secrets
    tested = client.post(f"{API}/storage/targets/dvs/test", headers=admin_headers).json()
    assert tested["ok"] is True and tested["message"] is None and tested["target"]["last_test_ok"] is True
    # An edit without a new secret keeps the old one: the connection still works.
    r = client.patch(f"{API}/storage/targets/dvs", headers=admin_headers, json={"description": "versions"})
    assert r.status_code == 200 and r.json()["secret_set"] and r.json()["last_test_ok"] is None
    assert client.post(f"{API}/storage/targets/dvs/test", headers=admin_headers).json()["ok"] is True
    # A wrong secret is refused by the server itself, and its words are reported.
    r = client.patch(f"{API}/storage/targets/dvs", headers=admin_headers, json={"secret_key": "wrong-secret"})
    assert r.status_code == 200
    tested = client.post(f"{API}/storage/targets/dvs/test", headers=admin_headers).json()
    assert tested["ok"] is False and "the S3 server refused: SignatureDoesNotMatch" in tested["message"]
    assert client.get(f"{API}/storage/targets/dvs", headers=admin_headers).json()["last_test_ok"] is False
    # A bucket that does not exist, and a server that does not answer.
    r = client.patch(f"{API}/storage/targets/dvs", headers=admin_headers,
                     json={"secret_key": s3_server.secret_key, "bucket": "no-such-bucket"})
    assert "NoSuchBucket" in client.post(f"{API}/storage/targets/dvs/test", headers=admin_headers).json()["message"]
    assert client.patch(f"{API}/storage/targets/dvs", headers=admin_headers,
                        json={"endpoint": "http://127.0.0.1:9"}).status_code == 200
    assert "could not be reached" in client.post(f"{API}/storage/targets/dvs/test",
                                                 headers=admin_headers).json()["message"]
    events = client.get(f"{API}/audit?limit=50", headers=admin_headers).text
    assert "storage_target.create" in events and s3_server.secret_key not in events and "wrong-secret" not in events


def test_git_and_folder_targets_are_tested_for_real(client, admin_headers, tmp_path):
    repo = tmp_path / "meta.git"
    subprocess.run(["git", "init", "--bare", "-q", str(repo)], check=True)
    r = client.post(f"{API}/storage/targets", headers=admin_headers, json={
        "name": "meta", "kind": "git", "repository_url": f"file://{repo}", "token": "ghp_not_shown"})
    assert r.status_code == 201, r.text
    assert "ghp_not_shown" not in r.text and r.json()["job_env"] == ["GIT_REPOSITORY_URL", "GIT_TOKEN"]
    assert client.post(f"{API}/storage/targets/meta/test", headers=admin_headers).json()["ok"] is True
    client.patch(f"{API}/storage/targets/meta", headers=admin_headers,
                 json={"repository_url": f"file://{tmp_path / 'missing.git'}"})
    tested = client.post(f"{API}/storage/targets/meta/test", headers=admin_headers).json()
    assert tested["ok"] is False and "git could not read the repository" in tested["message"]
    assert "ghp_not_shown" not in tested["message"]

    r = client.post(f"{API}/storage/targets", headers=admin_headers, json={
        "name": "shared", "kind": "folder", "path": str(tmp_path)})
    assert r.status_code == 201 and r.json()["secret_set"] is False
    assert client.post(f"{API}/storage/targets/shared/test", headers=admin_headers).json()["ok"] is True
    client.patch(f"{API}/storage/targets/shared", headers=admin_headers, json={"path": str(tmp_path / "gone")})
    assert "is not a directory" in client.post(f"{API}/storage/targets/shared/test",
                                               headers=admin_headers).json()["message"]


def test_gcs_target_checks_the_key_file_and_reports_googles_refusal(client, admin_headers):
    bad = client.post(f"{API}/storage/targets", headers=admin_headers, json={
        "name": "gcs", "kind": "gcs", "bucket": "my-bucket", "service_account_json": "{not json"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "service_account_json"
    assert "line 1, column 2" in bad.json()["errors"][0]["message"]
    key = {"type": "service_account", "client_email": "dvs@p.iam.gserviceaccount.com", "token_uri":
           "https://oauth2.googleapis.com/token", "private_key": "-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE "
                                                                 "KEY-----\n", "private_key_id": "1", "project_id": "p"}
    r = client.post(f"{API}/storage/targets", headers=admin_headers, json={
        "name": "gcs", "kind": "gcs", "bucket": "my-bucket", "service_account_json": json.dumps(key)})
    assert r.status_code == 201 and "BEGIN PRIVATE KEY" not in r.text
    tested = client.post(f"{API}/storage/targets/gcs/test", headers=admin_headers).json()
    assert tested["ok"] is False and tested["message"].startswith("Google Cloud refused the service account")


@pytest.mark.parametrize(("body", "field"), [
    ({"kind": "s3", "access_key": "a", "secret_key": "s"}, "bucket"),
    ({"kind": "s3", "bucket": "b-1", "secret_key": "s"}, "access_key"),
    ({"kind": "s3", "bucket": "b-1", "access_key": "a"}, "secret_key"),
    ({"kind": "s3", "bucket": "Bad_Bucket", "access_key": "a", "secret_key": "s"}, "bucket"),
    ({"kind": "s3", "bucket": "b-1", "access_key": "a", "secret_key": "s", "endpoint": "ftp://x"}, "endpoint"),
    ({"kind": "s3", "bucket": "b-1", "access_key": "a", "secret_key": "s", "region": "EU WEST"}, "region"),
    ({"kind": "s3", "bucket": "b-1", "access_key": "a", "secret_key": "s", "token": "t"}, "token"),
    ({"kind": "gcs", "bucket": "b-1"}, "service_account_json"),
    ({"kind": "git", "repository_url": "not a url"}, "repository_url"),
    ({"kind": "git", "repository_url": "https://h/r.git", "path": "/x"}, "path"),
    ({"kind": "folder", "path": "relative/dir"}, "path"),
    ({"kind": "nfs", "path": "/x"}, "kind"),
])
def test_bad_targets_are_refused_naming_the_field(client, admin_headers, body, field):
    r = client.post(f"{API}/storage/targets", headers=admin_headers, json={"name": "t", **body})
    assert r.status_code == 422, r.text
    assert field in [e["field"] for e in r.json()["errors"]]


def test_only_admins_manage_targets_and_everyone_sees_them_without_secrets(client, admin_headers):
    alice = make_user(client, "alice")
    assert client.post(f"{API}/storage/targets", headers=admin_headers, json={
        "name": "shared", "kind": "folder", "path": "/srv/data"}).status_code == 201
    assert [t["name"] for t in client.get(f"{API}/storage/targets", headers=alice).json()["items"]] == ["shared"]
    r = client.post(f"{API}/storage/targets", headers=alice, json={"name": "mine", "kind": "folder", "path": "/x"})
    assert r.status_code == 403 and "platform admin" in r.json()["detail"]
    assert client.post(f"{API}/storage/targets/shared/test", headers=alice).status_code == 403
    assert client.delete(f"{API}/storage/targets/shared", headers=alice).status_code == 403
    r = client.patch(f"{API}/storage/targets/shared", headers=admin_headers, json={"kind": "s3"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "kind"
    r = client.patch(f"{API}/storage/targets/shared", headers=admin_headers, json={"path": ""})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "path"
    assert client.delete(f"{API}/storage/targets/shared", headers=admin_headers).status_code == 204
    assert client.get(f"{API}/storage/targets/shared", headers=admin_headers).status_code == 404
