"""The console's folder pages over HTTP: create (and a form's field message), the file browser (upload into a
directory, browse, download, delete), share and accept, a read-only invitee without upload or delete, trash, restore,
purge."""

from __future__ import annotations

import re

from integration.test_web_console import csrf, make_user, sign_in


def post(client, page: str, action: str, files=None, **data):
    return client.post(action, data={**data, "csrf_token": csrf(client, page)}, files=files, follow_redirects=False)


def test_the_folder_pages(client, admin_headers):
    make_user(client, admin_headers, "uma")
    make_user(client, admin_headers, "vic")
    assert sign_in(client, "uma", "Passw0rd!x").status_code == 303
    assert 'href="/ui/folders"' in client.get("/ui/").text
    r = post(client, "/ui/folders", "/ui/folders", name="papers", host="local", capacity="")
    assert r.status_code == 303, r.text
    page = r.headers["location"]
    r = post(client, "/ui/folders", "/ui/folders", name="papers", host="local")
    assert r.status_code == 409 and 'data-testid="errors-name"' in r.text
    r = post(client, "/ui/folders", "/ui/folders", name="x", host="local", capacity="lots")
    assert r.status_code == 422 and 'data-testid="errors-capacity"' in r.text
    r = post(client, page, f"{page}/upload", prefix="drafts", files={"file": ("a.txt", b"first draft")})
    assert r.status_code == 303 and r.headers["location"].endswith("?prefix=drafts")
    top = client.get(page).text
    assert 'data-testid="dir-drafts"' in top
    inside = client.get(f"{page}?prefix=drafts").text
    assert 'data-testid="file-drafts/a.txt"' in inside
    link = re.search(r'href="([^"]+download[^"]+)"', inside).group(1).replace("&amp;", "&")
    assert client.get(link).content == b"first draft"
    r = post(client, page, f"{page}/share", user="vic", permission="ro")
    assert r.status_code == 303
    r = post(client, page, f"{page}/share", user="nobody", permission="ro")
    assert r.status_code == 404 or 'data-testid="errors-user"' in r.text

    client.cookies.clear()
    assert sign_in(client, "vic", "Passw0rd!x").status_code == 303
    mine = client.get("/ui/folders").text
    invitation = re.search(r"/ui/folder-invitations/(\d+)/accept", mine).group(1)
    assert post(client, "/ui/folders", f"/ui/folder-invitations/{invitation}/accept").status_code == 303
    shown = client.get(page + "?prefix=drafts").text
    assert 'data-testid="my-permission">ro<' in shown
    assert 'data-testid="upload-form"' not in shown and 'data-testid="delete-drafts/a.txt"' not in shown
    assert 'data-testid="trash-folder"' not in shown
    r = post(client, page, f"{page}/delete", path="drafts/a.txt")
    assert r.status_code == 403

    client.cookies.clear()
    assert sign_in(client, "uma", "Passw0rd!x").status_code == 303
    r = post(client, page, f"{page}/delete", path="drafts/a.txt", back=f"{page}?prefix=drafts")
    assert r.status_code == 303
    assert 'data-testid="file-drafts/a.txt"' not in client.get(f"{page}?prefix=drafts").text
    assert post(client, page, f"{page}/trash").status_code == 303
    assert 'data-folder="papers"' in client.get("/ui/folders?trashed=true").text
    assert post(client, page, f"{page}/restore").status_code == 303
    post(client, page, f"{page}/trash")
    assert post(client, page, f"{page}/purge").headers["location"] == "/ui/folders?trashed=true"
    assert 'data-folder="papers"' not in client.get("/ui/folders?trashed=true").text
