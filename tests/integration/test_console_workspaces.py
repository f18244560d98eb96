"""The console's workspaces pages over HTTP: create a workspace, invite (the link shown once, the invitation pending
with its date), the invitee's dashboard notice and accepting, setting a role, removing, leaving, cancelling, and a
form's field message."""

from __future__ import annotations

import re

from integration.test_web_console import csrf, make_user, sign_in

LINK = re.compile(r"<code>(/ui/workspace-invitations/accept\?token=[\w-]+)</code>")


def post(client, page: str, action: str, **data):
    return client.post(action, data={**data, "csrf_token": csrf(client, page)}, follow_redirects=False)


def test_the_workspace_pages(client, admin_headers):
    for name in ("bob", "carol", "dave"):
        make_user(client, admin_headers, name)
        client.put(f"/api/v1/clusters/local/users/{name}", headers=admin_headers, json={"role": "user"})
    assert sign_in(client, "bob", "Passw0rd!x").status_code == 303
    r = post(client, "/ui/workspaces", "/ui/workspaces", cluster="local", name="vision", description="Team vision")
    assert r.status_code == 303 and r.headers["location"] == "/ui/workspaces/local/vision"
    r = post(client, "/ui/workspaces", "/ui/workspaces", cluster="local", name="vision")
    assert r.status_code == 409 and 'data-testid="errors-name"' in r.text
    page = "/ui/workspaces/local/vision"
    r = post(client, page, f"{page}/invite", email="carol@example.com", role="viewer")
    assert r.status_code == 200 and LINK.search(r.text)
    r = post(client, page, f"{page}/invite", email="dave@example.com", role="member")
    link = LINK.search(r.text).group(1)
    r = post(client, page, f"{page}/invite", email="nope", role="member")
    assert r.status_code == 422 and 'data-testid="errors-email"' in r.text
    shown = client.get(page).text
    assert 'data-testid="pending-carol@example.com"' in shown and "pending since" in shown

    client.cookies.clear()
    assert sign_in(client, "carol", "Passw0rd!x").status_code == 303
    assert 'data-testid="workspace-invitations-notice"' in client.get("/ui/").text
    mine = client.get("/ui/workspaces").text
    invitation = re.search(r'/ui/workspace-invitations/(\d+)/accept', mine).group(1)
    r = post(client, "/ui/workspaces", f"/ui/workspace-invitations/{invitation}/accept")
    assert r.status_code == 303 and r.headers["location"] == page
    assert 'data-testid="workspace-invitations-notice"' not in client.get("/ui/").text
    assert 'data-testid="leave-workspace"' in client.get(page).text

    client.cookies.clear()
    assert sign_in(client, "dave", "Passw0rd!x").status_code == 303
    assert "Invitation token" in client.get(link).text  # the link asks before joining
    token = link.split("token=")[1]
    r = post(client, link, "/ui/workspace-invitations/accept", token=token)
    assert r.status_code == 303 and r.headers["location"] == page
    r = post(client, page, f"{page}/leave")
    assert r.status_code == 303 and r.headers["location"] == "/ui/workspaces"
    r = post(client, "/ui/workspaces", "/ui/workspace-invitations/accept", token=token)
    assert r.status_code == 422 and 'data-testid="errors-token"' in r.text

    client.cookies.clear()
    assert sign_in(client, "bob", "Passw0rd!x").status_code == 303
    r = post(client, page, f"{page}/members/users/carol/role", role="admin")
    assert r.status_code == 303
    assert 'data-testid="set-role-carol"' in client.get(page).text
    r = post(client, page, f"{page}/members/users/carol/remove")
    assert r.status_code == 303 and "carol" not in re.search(r'data-testid="members-table".*?</table>',
                                                             client.get(page).text, re.DOTALL).group(0)
    audit = client.get("/api/v1/audit", headers=admin_headers, params={"target": "local/vision"}).json()["items"]
    assert {"workspace.create", "workspace.invite", "workspace.invitation_accept", "workspace.leave",
            "workspace.member_role", "workspace.member_remove"} <= {e["action"] for e in audit}
