"""The authorisation matrix: every route of the app, called by six principals, is refused exactly when the permission
the route declares says it must be.

Routes are enumerated from the app itself, so a route added later is checked without touching this file. Each route's
declared permission is read from its `require(...)` dependency (`.permission`, and `.scope` for the path parameter
that names the cluster or user the permission is about). Path parameters get real names where the permission depends
on them (`local` for the cluster, the caller or a bystander for self-or-admin) and an unknown value otherwise, so an
authorised caller typically gets 404 or 422; that counts as allowed, and only 401/403 count as refused. No request
body is sent. Every transaction is rolled back (the app's session factory is swapped for one whose commit rolls back),
so allowed calls change nothing and the matrix can run in any order.

The access rules (issue 15) narrow what a route allows for one object: `test_access_rules_against_every_principal`
calls the project and access-rule routes on objects that rules cover, as each principal.

SQLite only: this tests the policy, not the database.
"""

from __future__ import annotations

import re

import pytest
from app_routes import ApiRoute, api_routes
from fastapi import APIRouter
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from allotment.access import service as access_rules
from allotment.api import deps
from allotment.api.app import create_app
from allotment.api.deps import cluster_scope, group_scope, self_scope
from allotment.core import permissions as perms
from allotment.db import transaction
from allotment.identity import cluster_roles, credentials, service_accounts
from allotment.identity.models import QUEUE_ADMINS_GROUP, Credential, GroupMember
from allotment.identity.service import builtin_group, create_user
from allotment.inventory.service import find_cluster
from allotment.projects import service as projects
from allotment.workspaces import service as workspaces

PASSWORD = "Matr1x-password!"
UNKNOWN = "999999"  # matches int and str path parameters alike, and names nothing
ANONYMOUS, USER, MANAGER, CLUSTER_ADMIN, PLATFORM_ADMIN, SERVICE_ACCOUNT, QUEUE_ADMIN = (
    "anonymous", "user", "manager", "cluster_admin", "platform_admin", "service_account", "queue_admin")
PRINCIPALS = [ANONYMOUS, USER, MANAGER, CLUSTER_ADMIN, PLATFORM_ADMIN, SERVICE_ACCOUNT, QUEUE_ADMIN]
SIGNED_IN = set(PRINCIPALS) - {ANONYMOUS}
# The user has role `user` on `local`, the manager `manager`, the cluster admin `admin`; the platform admin and the
# service account hold no cluster role; the queue admin neither, but is in the built-in `queue-admins` group. Written out rather than computed with core.permissions.allowed, so that the
# policy function is checked too.
ALLOWED = {
    "public": set(PRINCIPALS),
    "authenticated": SIGNED_IN,
    "platform_admin": {PLATFORM_ADMIN},
    "cluster_user": {USER, MANAGER, CLUSTER_ADMIN, PLATFORM_ADMIN},
    "cluster_manager": {MANAGER, CLUSTER_ADMIN, PLATFORM_ADMIN},
    "cluster_admin": {CLUSTER_ADMIN, PLATFORM_ADMIN},
    # Creating, changing and deleting quotas and profiles.
    "quota_admin": {CLUSTER_ADMIN, PLATFORM_ADMIN, QUEUE_ADMIN},
    # self_or_admin about someone else; about oneself every signed-in principal is allowed.
    "self_or_admin": {PLATFORM_ADMIN},
    # The matrix names an unknown group, which has no members: only platform admins get as far as the 404.
    # (Members reading their own group: tests/integration/test_group_privacy.py.)
    "group_member": {PLATFORM_ADMIN},
    # The SCIM endpoints take a provisioning client's token, which no principal's credential is: every principal is
    # refused with 401 (tests/integration/test_scim_provisioning.py signs in with such a token).
    "scim_client": set(),
}
PROBE_PREFIX = "/api/v1/_matrix_probe"
PATH_PARAM = re.compile(r"{(\w+)(?::\w+)?}")


def declared_requirement(route: ApiRoute):
    """The `require(...)` dependency the route declares (test_route_permissions checks there is exactly one)."""

    def walk(dependant):
        for dep in dependant.dependencies:
            if getattr(dep.call, "permission", None) is not None:
                return dep.call
            found = walk(dep)
            if found is not None:
                return found
        return None

    return walk(route.dependant)


def probe_router() -> APIRouter:
    """One trivial route per kind of permission, so every branch of the matrix runs even before the app has a route
    of that kind (the matrix treats them like any other route)."""
    router = APIRouter()
    for name, permission, scope in [
        ("public", perms.PUBLIC, None), ("authenticated", perms.AUTHENTICATED, None),
        ("platform-admin", perms.PLATFORM_ADMIN, None),
        ("clusters/{cluster}/quota-admin", perms.QUOTA_ADMIN, cluster_scope()),
        *[(f"clusters/{{cluster}}/{role}", perms.cluster(role), cluster_scope()) for role in ("user", "manager", "admin")],
        ("users/{user}", perms.SELF_OR_ADMIN, self_scope()),
        ("groups/{group}", perms.GROUP_MEMBER, group_scope()),
    ]:
        router.add_api_route(f"/{name}", lambda: {"ok": True}, methods=["POST"],
                             dependencies=[deps.require(permission, scope=scope)])
    return router


def ruled_objects(session, local, accounts) -> dict[str, int]:
    """Workspace m-team, owned by the user, with the manager and the service account as members; project m-open
    that no rule covers, and m-closed (with m-closed/m-inner under it) under two rules: read for the manager, modify
    for the service account."""
    team = workspaces.create_workspace(session, local.id, "m-team", None, owner=accounts[USER])
    workspaces.add_member(session, team, user=accounts[MANAGER])
    workspaces.add_member(session, team, user=accounts[SERVICE_ACCOUNT])
    opened = projects.create_project(session, team, "m-open")
    closed = projects.create_project(session, team, "m-closed")
    inner = projects.create_project(session, team, "m-inner", closed)
    target = access_rules.Target("project", closed.id, team.id, "project m-closed")
    read = access_rules.create_rule(session, target, "read", [access_rules.Grantee("user", "m-manager")], None)
    access_rules.create_rule(session, target, "modify", [access_rules.Grantee("service_account", "m-robot")], None)
    return {"open": opened.id, "closed": closed.id, "inner": inner.id, "rule": read.id}


class _NeverCommits(Session):
    """A session whose commit rolls back: every unit of work of the matrix is thrown away, including explicit
    commits in handlers and writes made outside the request's session (last-use bookkeeping, for example)."""

    def commit(self) -> None:
        self.rollback()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from conftest import make_settings

    app = create_app(make_settings(tmp_path_factory.mktemp("matrix"), "sqlite"), start_background=False)
    app.include_router(probe_router(), prefix=PROBE_PREFIX)
    with TestClient(app, raise_server_exceptions=False) as client:
        state = app.state.allot
        names = {USER: "m-user", MANAGER: "m-manager", CLUSTER_ADMIN: "m-cadmin", PLATFORM_ADMIN: "m-padmin",
                 SERVICE_ACCOUNT: "m-robot", QUEUE_ADMIN: "m-qadmin"}
        headers: dict[str, dict[str, str]] = {ANONYMOUS: {}}
        with transaction(state.sessions) as session:
            local = find_cluster(session, "local")
            accounts = {}
            for who in (USER, MANAGER, CLUSTER_ADMIN, PLATFORM_ADMIN, QUEUE_ADMIN):
                accounts[who] = create_user(session, email=f"{names[who]}@example.com", username=names[who],
                                            password=PASSWORD, platform_admin=who == PLATFORM_ADMIN)
            create_user(session, email="m-bystander@example.com", username="m-bystander", password=PASSWORD)
            accounts[SERVICE_ACCOUNT] = service_accounts.create_service_account(session, names[SERVICE_ACCOUNT],
                                                                                None)
            for who, role in ((USER, "user"), (MANAGER, "manager"), (CLUSTER_ADMIN, "admin")):
                cluster_roles.set_user_role(session, local, accounts[who], role, None)
            session.add(GroupMember(group_id=builtin_group(session, QUEUE_ADMINS_GROUP).id,
                                    user_id=accounts[QUEUE_ADMIN].id))
            objects = ruled_objects(session, local, accounts)
            for who, account in accounts.items():
                credential, secret = credentials.create_credential(session, state.secret_key, account, None)
                headers[who] = {"Authorization": f"Bearer {credential.access_key}:{secret}"}
        committing = state.sessions
        state.sessions = sessionmaker(bind=state.engine, class_=_NeverCommits, expire_on_commit=False)
        yield client, headers, names, app, objects
        state.sessions = committing


def test_the_principals_are_what_the_matrix_assumes(world):
    client, headers, *_ = world
    expected = {USER: ({"local": "user"}, False), MANAGER: ({"local": "manager"}, False),
                CLUSTER_ADMIN: ({"local": "admin"}, False), PLATFORM_ADMIN: ({}, True), SERVICE_ACCOUNT: ({}, False),
                QUEUE_ADMIN: ({}, False)}
    for who, (roles, platform_admin) in expected.items():
        r = client.get("/api/v1/auth/whoami", headers=headers[who])
        assert r.status_code == 200, (who, r.text)
        me = r.json()
        assert (me["cluster_roles"], me["is_platform_admin"]) == (roles, platform_admin), who
    assert client.get("/api/v1/auth/whoami").status_code == 401


def cases(app) -> list[tuple[str, str, str, set[str], dict[str, str]]]:
    """(method, path template, permission name, allowed principals, path values) for every route and method."""
    out = []
    for route in api_routes(app):
        requirement = declared_requirement(route)
        assert requirement is not None, f"{route.path} declares no permission"
        permission = requirement.permission
        assert permission.name in ALLOWED, (
            f"{route.path} declares permission {permission.name!r}, which this matrix does not know: add it to ALLOWED")
        resolver = getattr(requirement, "scope", None)
        scope_kind = getattr(resolver, "kind", None) or {"cluster": "cluster", "self_or_admin": "self"}.get(
            permission.kind)
        scope_param = getattr(resolver, "param", None) or {"cluster": "cluster", "self": "user"}.get(scope_kind)
        params = [m.group(1) for m in PATH_PARAM.finditer(route.path)]
        for method in sorted(route.methods):
            values = {p: UNKNOWN for p in params}
            if scope_kind == "cluster" and scope_param in values:
                values[scope_param] = "local"
            if scope_kind == "self" and scope_param in values:
                values[scope_param] = "m-bystander"
                out.append((method, route.path, permission.name, ALLOWED[permission.name], values))
                # deps.self_scope resolves service accounts too; a route's own resolver may cover people only
                # (the /users API), so there whether a service account is "itself" is left to the route.
                oneself = SIGNED_IN if getattr(resolver, "kind", None) == "self" else SIGNED_IN - {SERVICE_ACCOUNT}
                out.append((method, route.path, permission.name + " (self)", oneself, {**values, scope_param: None}))
                continue
            allowed = ALLOWED[permission.name]
            if permission.kind in ("cluster", "quota_admin") and values.get(scope_param) == UNKNOWN:
                # The cluster is found through an object that does not exist: without a cluster only platform
                # admins pass (and get the 404), and queue admins, whose group needs no cluster; everyone else is
                # refused, which reveals nothing.
                allowed = allowed & {PLATFORM_ADMIN, QUEUE_ADMIN}
            out.append((method, route.path, permission.name, allowed, values))
    return out


def _url(template: str, values: dict[str, str | None], own_name: str) -> str:
    return PATH_PARAM.sub(lambda m: values[m.group(1)] or own_name, template)


CSRF_REFUSAL = "did not come from this console"


def _refused(status: int, location: str, body: str = "") -> bool:
    """Refused by the permission check. The console's CSRF check (a form without its token) comes after it."""
    if status == 403 and CSRF_REFUSAL in body:
        return False
    return status in (401, 403) or (status in (302, 303, 307) and "login" in location)


def test_every_route_against_every_principal(world):
    client, headers, names, app, _ = world
    checked = cases(app)
    mine = {("GET", "/api/v1/credentials"), ("DELETE", "/api/v1/clusters/{cluster}/users/{user}"),
            ("POST", "/api/v1/service-accounts"), ("GET", "/api/v1/audit"), ("GET", "/api/v1/exports/audit.csv"),
            ("GET", "/healthz"), ("POST", f"{PROBE_PREFIX}/users/{{user}}"), ("PATCH", "/scim/v2/{path:path}"),
            ("POST", "/api/v1/scim/clients/{name}/tokens")}
    assert mine <= {(m, p) for m, p, *_ in checked}, "route enumeration missed known routes"

    wrong = []
    for method, template, permission, allowed, values in checked:
        for who in PRINCIPALS:
            if None in values.values() and (who == ANONYMOUS or who not in allowed):
                continue  # "oneself" means nothing for an anonymous caller, or for an account the route excludes
            url = _url(template, values, names.get(who, ""))
            r = client.request(method, url, headers=headers[who], follow_redirects=False)
            refused = _refused(r.status_code, r.headers.get("location", ""), r.text)
            if (method, template) == ("POST", "/logout") and r.status_code == 303 and who != ANONYMOUS:
                refused = False  # logging out sends everyone to the login page
            if (method, template, who) == ("POST", "/ui/account/password", SERVICE_ACCOUNT) and \
                    r.status_code == 403 and "password" in r.text:
                refused = False  # the service refuses it: a service account has no password to change
            if r.status_code >= 500:
                wrong.append(f"{method} {url} as {who}: server error {r.status_code}: {r.text[:200]}")
            elif who in allowed and refused:
                wrong.append(f"{method} {url} ({permission}) as {who}: refused with {r.status_code}, should be allowed")
            elif who not in allowed:
                want = 401 if who == ANONYMOUS or permission == "scim_client" else 403
                if not refused or (r.status_code in (401, 403) and r.status_code != want and not
                                   (template == "/logout" and who == ANONYMOUS)):
                    wrong.append(f"{method} {url} ({permission}) as {who}: got {r.status_code}, want {want}")
    assert wrong == [], "authorisation matrix violations:\n" + "\n".join(wrong)


def test_allowed_calls_changed_nothing(world):
    """The rollback-only unit of work really was in force (the matrix made credentials with POST /credentials)."""
    client, headers, names, app, _ = world
    r = client.post("/api/v1/credentials", headers=headers[USER])
    assert r.status_code == 201
    with app.state.allot.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Credential)) == len(names)


R, W = "read", "modify"
# What each principal may do under the rules of `ruled_objects`: the owner of the workspace is bound by them like any
# member; admins of the cluster and platform admins are not; the queue admin is no member of the workspace.
RULED = {
    ANONYMOUS: {"open": "", "closed": "", "inner": "", "rules": ""},
    USER: {"open": R + W, "closed": "", "inner": "", "rules": R + W},
    MANAGER: {"open": R + W, "closed": R, "inner": R, "rules": R},
    CLUSTER_ADMIN: {"open": R + W, "closed": R + W, "inner": R + W, "rules": R + W},
    PLATFORM_ADMIN: {"open": R + W, "closed": R + W, "inner": R + W, "rules": R + W},
    SERVICE_ACCOUNT: {"open": R + W, "closed": R + W, "inner": R + W, "rules": R},
    QUEUE_ADMIN: {"open": "", "closed": "", "inner": "", "rules": ""},
}


def test_access_rules_against_every_principal(world):
    """Project routes on objects that rules cover (inheritance included) and the access-rule routes themselves."""
    client, headers, _, _, objects = world
    api = "/api/v1"
    wrong = []
    for who in PRINCIPALS:
        calls = {}
        for name in ("open", "closed", "inner"):
            url = f"{api}/projects/{objects[name]}"
            calls[(name, R)] = client.get(url, headers=headers[who])
            calls[(name, W)] = client.patch(url, headers=headers[who], json={"description": "changed"})
        calls[("rules", R)] = client.get(f"{api}/access-rules/{objects['rule']}", headers=headers[who])
        calls[("rules", W)] = client.patch(f"{api}/access-rules/{objects['rule']}", headers=headers[who],
                                           json={"grantees": [{"kind": "user", "name": "m-manager"},
                                                              {"kind": "user", "name": "m-cadmin"}]})
        listed = client.get(f"{api}/projects", headers=headers[who])
        shown = {p["path"] for p in listed.json()["items"]} if listed.status_code == 200 else set()
        for (name, action), r in calls.items():
            expected = action in RULED[who][name]
            if r.status_code >= 500 or (r.status_code < 300) != expected:
                wrong.append(f"{action} {name} as {who}: {r.status_code} {r.text[:120]}")
            if not expected and r.status_code not in (401, 403, 404):
                wrong.append(f"{action} {name} as {who}: refused with {r.status_code}")
        paths = {"open": "m-open", "closed": "m-closed", "inner": "m-closed/m-inner"}
        want = {path for name, path in paths.items() if R in RULED[who][name]}
        if {p for p in shown if p.startswith("m-")} != want:
            wrong.append(f"list as {who}: {sorted(shown)}, want {sorted(want)}")
    assert wrong == [], "access rule violations:\n" + "\n".join(wrong)
