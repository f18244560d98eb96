"""Storage folders through the API on the local host: user and group folders, permissions, invitations, the owner's
resource policy acting (count, capacity, allowed hosts), staged deletion and streamed files."""

from __future__ import annotations

from inventory_helpers import API, make_user


def folder(client, headers, name, **extra):
    return client.post(f"{API}/folders", headers=headers, json={"name": name, **extra})


def upload(client, headers, ref, path, content: bytes):
    return client.put(f"{API}/folders/{ref}/files/{path}", headers=headers, content=content)


def test_user_folder_files_round_trip(client, admin_headers):
    alice = make_user(client, "alice")
    r = folder(client, alice, "data")
    assert r.status_code == 201, r.text
    assert (r.json()["host"], r.json()["type"], r.json()["permission"]) == ("local", "user", "rwd")
    assert upload(client, alice, "data", "sub/a.txt", b"hello").status_code == 201
    listing = client.get(f"{API}/folders/data/files", headers=alice).json()
    assert [(e["path"], e["is_dir"]) for e in listing["items"]] == [("sub", True)]
    assert listing["usage_bytes"] == 5
    inner = client.get(f"{API}/folders/data/files", headers=alice, params={"prefix": "sub"}).json()
    assert [(e["path"], e["size"]) for e in inner["items"]] == [("sub/a.txt", 5)]
    got = client.get(f"{API}/folders/data/files/sub/a.txt", headers=alice)
    assert got.status_code == 200 and got.content == b"hello"
    assert upload(client, alice, "data", "%2E%2E/escape", b"x").status_code == 422
    assert client.delete(f"{API}/folders/data/files/sub/a.txt", headers=alice).status_code == 204
    assert client.get(f"{API}/folders/data/files/sub/a.txt", headers=alice).status_code == 404
    bob = make_user(client, "bob")
    assert client.get(f"{API}/folders/data/files", headers=bob).status_code == 404


def test_group_folders_only_admins_create_and_members_see_with_its_permission(client, admin_headers):
    carol = make_user(client, "carol", groups=("lab",))
    dave = make_user(client, "dave")
    r = folder(client, carol, "shared", group="lab")
    assert r.status_code == 403
    r = folder(client, admin_headers, "shared", group="lab", permission="ro")
    assert r.status_code == 201, r.text
    assert upload(client, admin_headers, r.json()["id"], "readme", b"read me").status_code == 201
    mine = client.get(f"{API}/folders", headers=carol).json()["items"]
    assert [(f["name"], f["type"], f["permission"], f["via"]) for f in mine] == [("shared", "group", "ro", "group")]
    assert client.get(f"{API}/folders/shared/files/readme", headers=carol).content == b"read me"
    refused = upload(client, carol, "shared", "mine", b"x")
    assert refused.status_code == 403 and "ro" in refused.json()["detail"]
    assert client.get(f"{API}/folders", headers=dave).json()["items"] == []


def test_invitations_pending_accepted_rejected_cancelled_and_no_delete_unless_granted(client, admin_headers):
    erin = make_user(client, "erin")
    frank = make_user(client, "frank")
    grace = make_user(client, "grace")
    folder(client, erin, "results")
    upload(client, erin, "results", "r.csv", b"1,2")
    r = client.post(f"{API}/folders/results/share", headers=erin, json={"user": "frank"})
    assert r.status_code == 201 and (r.json()["state"], r.json()["permission"]) == ("pending", "rw")
    invitation = r.json()["id"]
    assert client.get(f"{API}/folders", headers=frank).json()["items"] == []  # not before accepting
    received = client.get(f"{API}/folder-invitations", headers=frank).json()["items"]
    assert [(i["folder"], i["direction"], i["state"]) for i in received] == [("results", "received", "pending")]
    assert client.post(f"{API}/folder-invitations/{invitation}/accept", headers=frank).json()["state"] == "accepted"
    seen = client.get(f"{API}/folders", headers=frank).json()["items"]
    assert [(f["name"], f["permission"], f["via"]) for f in seen] == [("results", "rw", "invitation")]
    assert upload(client, frank, "results", "f.txt", b"frank").status_code == 201
    denied = client.delete(f"{API}/folders/results/files/r.csv", headers=frank)
    assert denied.status_code == 403 and "rwd" in denied.json()["detail"]
    assert client.post(f"{API}/folders/results/trash", headers=frank).status_code == 403
    # rejected, and cancelled by the owner
    g = client.post(f"{API}/folders/results/share", headers=erin, json={"user": "grace", "permission": "ro"}).json()
    assert client.post(f"{API}/folder-invitations/{g['id']}/reject", headers=grace).json()["state"] == "rejected"
    g2 = client.post(f"{API}/folders/results/share", headers=erin, json={"user": "grace", "permission": "rwd"}).json()
    assert client.post(f"{API}/folder-invitations/{g2['id']}/accept", headers=erin).status_code == 404
    assert client.post(f"{API}/folder-invitations/{g2['id']}/cancel", headers=erin).json()["state"] == "cancelled"
    assert client.post(f"{API}/folder-invitations/{g2['id']}/accept", headers=grace).status_code == 409
    # an invitation to a trashed folder waits for its restoration
    g3 = client.post(f"{API}/folders/results/share", headers=erin, json={"user": "grace"}).json()
    client.post(f"{API}/folders/results/trash", headers=erin)
    assert client.post(f"{API}/folder-invitations/{g3['id']}/accept", headers=grace).status_code == 409
    client.post(f"{API}/folders/results/restore", headers=erin)
    assert client.post(f"{API}/folder-invitations/{g3['id']}/accept", headers=grace).status_code == 200
    # withdrawing an accepted invitation ends the access
    client.post(f"{API}/folder-invitations/{invitation}/cancel", headers=erin)
    assert client.get(f"{API}/folders/results/files", headers=frank).status_code == 404


def test_policy_limits_act_on_folders(client, admin_headers):
    r = client.post(f"{API}/resource-policies", headers=admin_headers, json={
        "name": "small", "folders": 2, "folder_capacity": "1Mi", "allowed_storage_hosts": ["local"]})
    assert r.status_code == 201, r.text
    heidi = make_user(client, "heidi", policy="small")
    ivan = make_user(client, "ivan")
    r = folder(client, heidi, "one")
    assert r.status_code == 201 and r.json()["capacity"] == "1Mi"
    big = folder(client, heidi, "big", capacity="2Mi")
    assert big.status_code == 409 and "folder_capacity" in big.json()["detail"] and "1Mi" in big.json()["detail"]
    # an invited folder counts
    folder(client, ivan, "theirs")
    inv = client.post(f"{API}/folders/theirs/share", headers=ivan, json={"user": "heidi"}).json()
    assert client.post(f"{API}/folder-invitations/{inv['id']}/accept", headers=heidi).status_code == 200
    caps = client.get(f"{API}/users/heidi/allowance", headers=heidi).json()["caps"]
    assert (caps["folders"]["in_use"], caps["folders"]["remaining"]) == (2, 0)
    over = folder(client, heidi, "three")
    assert over.status_code == 409
    assert "has 2 folders" in over.json()["detail"] and "limit folders of resource policy small is 2" \
        in over.json()["detail"]
    # capacity is enforced on uploads, naming the numbers
    full = upload(client, heidi, "one", "blob", b"x" * (1024 * 1024 + 1))
    assert full.status_code == 409 and "capacity is 1Mi" in full.json()["detail"]
    assert client.get(f"{API}/folders/one/files", headers=heidi).json()["items"] == []
    # allowed hosts
    client.post(f"{API}/resource-policies", headers=admin_headers, json={"name": "nohost",
                                                                          "allowed_storage_hosts": []})
    judy = make_user(client, "judy", policy="nohost")
    refused = folder(client, judy, "x")
    assert refused.status_code == 409 and "not among the allowed hosts of resource policy nohost" \
        in refused.json()["detail"]


def test_trash_restore_purge_and_purging_a_user_keeps_group_folders(client, admin_headers):
    kim = make_user(client, "kim", groups=("team",))
    folder(client, kim, "old")
    upload(client, kim, "old", "f", b"data")
    assert client.delete(f"{API}/folders/old", headers=kim).status_code == 404  # not in the trash
    assert client.post(f"{API}/folders/old/trash", headers=kim).json()["trashed"] is True
    assert client.get(f"{API}/folders", headers=kim).json()["items"] == []
    assert [f["name"] for f in client.get(f"{API}/folders?trashed=true", headers=kim).json()["items"]] == ["old"]
    assert client.get(f"{API}/folders/old/files", headers=kim).status_code == 409
    assert client.post(f"{API}/folders/old/restore", headers=kim).json()["trashed"] is False
    assert client.get(f"{API}/folders/old/files/f", headers=kim).content == b"data"
    client.post(f"{API}/folders/old/trash", headers=kim)
    assert client.delete(f"{API}/folders/old", headers=kim).status_code == 204
    assert client.get(f"{API}/folders?trashed=true", headers=kim).json()["items"] == []
    # an admin purges kim's folders: the group folder kim's group has stays
    folder(client, kim, "mine")
    group_folder = folder(client, admin_headers, "teamdata", group="team").json()
    r = client.delete(f"{API}/users/kim/folders", headers=admin_headers)
    assert r.status_code == 200 and r.json()["purged"] == ["mine"]
    assert [f["name"] for f in client.get(f"{API}/folders", headers=kim).json()["items"]] == ["teamdata"]
    assert group_folder["type"] == "group"
    assert client.delete(f"{API}/users/kim/folders", headers=kim).status_code == 403


def test_a_group_that_owns_folders_is_not_deleted_until_they_are_purged(client, admin_headers):
    make_user(client, "kim", groups=("vision",))
    r = folder(client, admin_headers, "weights", group="vision", permission="rw")
    assert r.status_code == 201, r.text
    ref = r.json()["id"]
    assert upload(client, admin_headers, ref, "w.bin", b"w").status_code == 201
    for force in ("false", "true"):  # forcing takes memberships and grants, never files on a storage host
        refused = client.delete(f"{API}/groups/vision", headers=admin_headers, params={"force": force})
        assert refused.status_code == 409 and "weights" in refused.json()["detail"], refused.text
    assert client.get(f"{API}/folders/{ref}/files/w.bin", headers=admin_headers).content == b"w"
    assert client.post(f"{API}/folders/{ref}/trash", headers=admin_headers).status_code in (200, 204)
    assert client.delete(f"{API}/folders/{ref}", headers=admin_headers).status_code == 204
    assert client.delete(f"{API}/groups/vision", headers=admin_headers, params={"force": "true"}).status_code == 204
