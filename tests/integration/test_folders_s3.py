"""Folders on an S3-compatible host, against a real S3 server (SeaweedFS) that checks credentials: files stream in
and out, the secret is sealed and never shown, a wrong secret is refused by the server and reported."""

from __future__ import annotations

from inventory_helpers import API, make_user
from s3_helpers import s3_server  # noqa: F401 - the session fixture


def s3_host(client, admin_headers, server, name="objects", secret=None):
    return client.post(f"{API}/storage-hosts", headers=admin_headers, json={
        "name": name, "kind": "s3", "endpoint": server.endpoint, "bucket": server.bucket,
        "access_key": server.access_key, "secret_key": secret or server.secret_key})


def test_folder_on_s3_round_trip(client, admin_headers, s3_server):  # noqa: F811
    r = s3_host(client, admin_headers, s3_server)
    assert r.status_code == 201, r.text
    assert r.json()["secret_set"] is True and s3_server.secret_key not in r.text
    assert client.post(f"{API}/storage-hosts/objects/test", headers=admin_headers).json() == \
        {"name": "objects", "ok": True, "error": None}
    ola = make_user(client, "ola")
    made = client.post(f"{API}/folders", headers=ola, json={"name": "ds", "host": "objects", "capacity": "1Mi"})
    assert made.status_code == 201 and made.json()["host"] == "objects", made.text
    content = bytes(range(256)) * 2048  # 512 KiB
    assert client.put(f"{API}/folders/ds/files/train/part-0", headers=ola, content=content).status_code == 201
    listing = client.get(f"{API}/folders/ds/files", headers=ola).json()
    assert [(e["path"], e["is_dir"]) for e in listing["items"]] == [("train", True)]
    assert listing["usage_bytes"] == len(content)
    inner = client.get(f"{API}/folders/ds/files", headers=ola, params={"prefix": "train"}).json()["items"]
    assert [(e["path"], e["size"]) for e in inner] == [("train/part-0", len(content))]
    assert client.get(f"{API}/folders/ds/files/train/part-0", headers=ola).content == content
    full = client.put(f"{API}/folders/ds/files/train/part-1", headers=ola, content=content + content)
    assert full.status_code == 409 and "capacity is 1Mi" in full.json()["detail"]
    assert client.delete(f"{API}/folders/ds/files/train", headers=ola).status_code == 204
    assert client.get(f"{API}/folders/ds/files", headers=ola).json()["items"] == []
    client.put(f"{API}/folders/ds/files/keep", headers=ola, content=b"k")
    client.post(f"{API}/folders/ds/trash", headers=ola)
    assert client.delete(f"{API}/folders/ds", headers=ola).status_code == 204
    import boto3
    from botocore.config import Config

    raw = boto3.client("s3", endpoint_url=s3_server.endpoint, aws_access_key_id=s3_server.access_key,
                       aws_secret_access_key=s3_server.secret_key, region_name="us-east-1",
                       config=Config(s3={"addressing_style": "path"}))
    left = raw.list_objects_v2(Bucket=s3_server.bucket, Prefix=f"folders/{made.json()['id']}/")
    assert left.get("KeyCount", 0) == 0  # the purge removed the objects


def test_a_wrong_secret_is_refused_by_the_real_server(client, admin_headers, s3_server):  # noqa: F811
    assert s3_host(client, admin_headers, s3_server, "badkeys", secret="not-the-secret").status_code == 201
    tested = client.post(f"{API}/storage-hosts/badkeys/test", headers=admin_headers).json()
    assert tested["ok"] is False and "refused" in tested["error"]
    pia = make_user(client, "pia")
    r = client.post(f"{API}/folders", headers=pia, json={"name": "x", "host": "badkeys"})
    assert r.status_code == 502 and "the S3 server refused" in r.json()["detail"]
    # the admin sets the right secret; an edit without one keeps it
    assert client.patch(f"{API}/storage-hosts/badkeys", headers=admin_headers,
                        json={"secret_key": s3_server.secret_key}).status_code == 200
    assert client.patch(f"{API}/storage-hosts/badkeys", headers=admin_headers,
                        json={"description": "fixed"}).status_code == 200
    assert client.post(f"{API}/storage-hosts/badkeys/test", headers=admin_headers).json()["ok"] is True


def test_allowed_hosts_restrict_who_uses_an_s3_host(client, admin_headers, s3_server):  # noqa: F811
    s3_host(client, admin_headers, s3_server, "restricted")
    client.post(f"{API}/resource-policies", headers=admin_headers, json={"name": "localonly",
                                                                          "allowed_storage_hosts": ["local"]})
    quinn = make_user(client, "quinn", policy="localonly")
    r = client.post(f"{API}/folders", headers=quinn, json={"name": "q", "host": "restricted"})
    assert r.status_code == 409
    assert r.json()["detail"] == ("storage host restricted is not among the allowed hosts of resource policy "
                                  "localonly (local)")
    refused = client.post(f"{API}/storage-hosts", headers=quinn, json={"name": "mine", "kind": "s3"})
    assert refused.status_code == 403


def test_an_s3_folder_cannot_be_mounted_on_the_local_engine(client, admin_headers, s3_server):  # noqa: F811
    from inventory_helpers import quota

    s3_host(client, admin_headers, s3_server, "objs")
    rae = make_user(client, "rae", cluster_role="user")
    client.post(f"{API}/folders", headers=rae, json={"name": "remote", "host": "objs"})
    quota(client, admin_headers, "rq")
    client.put(f"{API}/quotas/rq/bindings/users/rae", headers=admin_headers)
    r = client.post(f"{API}/jobs", headers=rae, json={"quota": "rq", "cpu": 1, "command": ["ls"],
                                                      "mounts": ["remote"]})
    assert r.status_code == 422
    assert r.json()["errors"] == [{"field": "mounts[0]", "message": (
        "folder remote is on s3 host objs: the local engine mounts only folders of local hosts (download the files "
        "in the job instead)")}]
