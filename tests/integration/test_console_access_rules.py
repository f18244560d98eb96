"""The console's access-rules page over HTTP: adding a rule (and a form's field messages), the table with its View
filter and filters on workspace, resource and grantee (an unknown grantee under its filter), editing a rule's level
and grantees, deleting it, and a workspace's default; and expired invitations shown as expired on the workspace
page."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from allotment.db import utcnow
from allotment.workspaces.models import WorkspaceInvitation
from integration.test_web_console import csrf, make_user, sign_in

API = "/api/v1"


def post(client, page: str, action: str, **data):
    return client.post(action, data={**data, "csrf_token": csrf(client, page)}, follow_redirects=False)


def rows(html: str) -> int:
    return html.count('data-testid="rule-')


def test_the_access_rules_page(client, admin_headers):
    for name in ("bob", "carol"):
        make_user(client, admin_headers, name)
        client.put(f"{API}/clusters/local/users/{name}", headers=admin_headers, json={"role": "user"})
    assert client.post(f"{API}/groups", headers=admin_headers, json={"name": "cv"}).status_code == 201
    assert sign_in(client, "bob", "Passw0rd!x").status_code == 303
    page = "/ui/access-rules"
    assert "Access rules" in client.get("/ui/").text  # in the sidebar
    assert post(client, "/ui/workspaces", "/ui/workspaces", cluster="local", name="team").status_code == 303
    r = client.post(f"{API}/projects", json={"workspace": "team", "name": "vision"},
                    headers={"X-CSRF-Token": csrf(client, page)})
    assert r.status_code == 201, r.text

    r = post(client, page, page, workspace="team", resource_type="project", resource="vision", level="modify",
             grantees="user:carol, group:cv")
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/ui/access-rules?cluster=local&workspace=team"
    r = post(client, page, page, workspace="team", resource_type="model", level="read", grantees="bob")
    assert r.status_code == 303
    r = post(client, page, page, workspace="team", resource_type="project", resource="nowhere", level="read",
             grantees="carol")
    assert r.status_code == 404 and 'data-testid="errors-resource"' in r.text
    r = post(client, page, page, workspace="team", resource_type="project", level="read", grantees="user:nobody")
    assert r.status_code == 404 and 'data-testid="errors-grantees"' in r.text

    listed = client.get(page, params={"workspace": "team"}).text
    assert rows(listed) == 2 and "project vision" in listed and 'data-testid="default-form"' in listed
    viewed = client.get(page, params={"workspace": "team", "view": "model"}).text
    assert rows(viewed) == 1 and "every model of the workspace" in viewed
    by_resource = client.get(page, params={"workspace": "team", "view": "project", "resource": "vision"}).text
    assert rows(by_resource) == 1
    by_grantee = client.get(page, params={"grantee": "group:cv"}).text
    assert rows(by_grantee) == 1 and "project vision" in by_grantee
    unknown = client.get(page, params={"grantee": "nobody"})
    assert unknown.status_code == 404 and 'data-testid="errors-f-grantee"' in unknown.text and rows(unknown.text) == 0

    rule_id = client.get(page, params={"grantee": "group:cv"}).text.split('data-testid="rule-')[1].split('"')[0]
    edit = f"/ui/access-rules/{rule_id}"
    assert "user:carol, group:cv" in client.get(edit).text
    r = post(client, edit, edit, level="read", grantees="group:cv")
    assert r.status_code == 303
    assert "Read only" in client.get(page, params={"grantee": "group:cv"}).text
    r = post(client, edit, edit, level="sometimes", grantees="group:cv")
    assert r.status_code == 422 and 'data-testid="errors-level"' in r.text
    assert post(client, page, f"{edit}/delete").status_code == 303
    assert rows(client.get(page, params={"workspace": "team"}).text) == 1

    r = post(client, page, "/ui/access-rules/default", cluster="local", workspace="team", default="read")
    assert r.status_code == 303
    assert '<option selected>read</option>' in client.get(page, params={"workspace": "team"}).text

    # carol, no member of the workspace, sees none of its rules.
    client.cookies.clear()
    assert sign_in(client, "carol", "Passw0rd!x").status_code == 303
    assert rows(client.get(page).text) == 0


def test_an_expired_invitation_is_shown_as_expired(client, admin_headers):
    for name in ("bob", "carol"):
        make_user(client, admin_headers, name)
        client.put(f"{API}/clusters/local/users/{name}", headers=admin_headers, json={"role": "user"})
    assert sign_in(client, "bob", "Passw0rd!x").status_code == 303
    assert post(client, "/ui/workspaces", "/ui/workspaces", cluster="local", name="team").status_code == 303
    page = "/ui/workspaces/local/team"
    r = post(client, page, f"{page}/invite", email="carol@example.com", role="member", lifetime_days="2")
    assert r.status_code == 200 and "until" in r.text
    r = post(client, page, f"{page}/invite", email="dave@example.com", role="member", lifetime_days="0")
    assert r.status_code == 422 and 'data-testid="errors-lifetime_days"' in r.text
    with client.app.state.allot.sessions() as session:
        session.execute(update(WorkspaceInvitation).values(expires_at=utcnow() - timedelta(minutes=1)))
        session.commit()
    assert "expired" in client.get(page).text
    client.cookies.clear()
    assert sign_in(client, "carol", "Passw0rd!x").status_code == 303
    mine = client.get("/ui/workspaces").text
    assert 'data-testid="expired-team"' in mine and 'data-testid="accept-team"' not in mine
    assert 'data-testid="workspace-invitations-notice"' not in client.get("/ui/").text


def test_the_project_page_shows_only_what_the_rules_let_one_read(client, admin_headers):
    for name in ("bob", "carol"):
        make_user(client, admin_headers, name)
        client.put(f"{API}/clusters/local/users/{name}", headers=admin_headers, json={"role": "user"})
    assert sign_in(client, "bob", "Passw0rd!x").status_code == 303
    assert post(client, "/ui/workspaces", "/ui/workspaces", cluster="local", name="team").status_code == 303
    token = {"X-CSRF-Token": csrf(client, "/ui/access-rules")}
    assert client.put(f"{API}/clusters/local/workspaces/team/members/users/carol", headers=token).status_code == 204
    vision = client.post(f"{API}/projects", json={"workspace": "team", "name": "vision"}, headers=token).json()["id"]
    for child in ("open-child", "closed-child"):
        r = client.post(f"{API}/projects", json={"workspace": "team", "name": child, "parent": "vision"},
                        headers=token)
        assert r.status_code == 201, r.text
    models = {name: client.post(f"{API}/models", headers=token, json={"project": str(vision), "name": name,
                                                                        "uri": f"s3://b/{name}"}).json()["id"]
              for name in ("open-model", "closed-model")}
    page = "/ui/access-rules"
    assert post(client, page, page, workspace="team", resource_type="model", resource=str(models["closed-model"]),
                level="read", grantees="bob").status_code == 303
    assert post(client, page, page, workspace="team", resource_type="project", resource="vision/closed-child",
                level="read", grantees="bob").status_code == 303
    assert "closed-model" in client.get(f"/ui/projects/{vision}").text

    client.cookies.clear()
    assert sign_in(client, "carol", "Passw0rd!x").status_code == 303
    shown = client.get(f"/ui/projects/{vision}").text
    assert "open-model" in shown and "closed-model" not in shown
    assert "open-child" in shown and "closed-child" not in shown


def test_the_quotas_page_shows_only_the_quotas_one_may_read(client, admin_headers):
    make_user(client, admin_headers, "carol")
    client.put(f"{API}/clusters/local/users/carol", headers=admin_headers, json={"role": "user"})
    for name in ("open-q", "secret-q"):
        assert client.post(f"{API}/clusters/local/quotas", headers=admin_headers, json={"name": name}).status_code \
            == 201
    r = client.post(f"{API}/access-rules", headers=admin_headers, json={
        "resource_type": "quota", "resource": "secret-q", "level": "read", "grantees": [{"kind": "user",
                                                                                       "name": "admin"}]})
    assert r.status_code == 201, r.text
    assert sign_in(client, "carol", "Passw0rd!x").status_code == 303
    page = client.get("/ui/quotas").text
    assert "open-q" in page and "secret-q" not in page
