"""Every console form, posted without htmx (a browser without JavaScript, or before console.js loaded) with a bad
value, answers its own page again with the error under the field (4xx), never the full-page error.

The forms are found, not listed: every console page the router declares is opened as an admin, and every POST form
on it with a field a person types or picks in is posted once, each such field given a value no field accepts. A
form whose route does not answer with the form and its field errors is reported.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from integration.inventory_helpers import quota, register_node
from integration.test_web_console import ADMIN_PASSWORD, make_user, sign_in

BAD_TEXT = "bad value !?*"  # spaces and punctuation: no name, quantity, date or address accepts it
BAD_NUMBER = "-7.5e99"
# Routes that answer htmx requests with a fragment of another page, redirects and identity-provider endpoints.
SKIP_PAGES = {"/", "/ui", "/login", "/ui/jobs/{job_id}/log", "/ui/clusters/new/engine"}
SKIP_PREFIXES = ("/login/",)
# Forms that have no field to get wrong, whatever inputs they carry (a confirmation's hidden values, a search box
# that filters a GET), are not posted: only method=post forms with a visible field are.
ERROR_PAGE = 'data-testid="error-page"'


class Forms(HTMLParser):
    """The POST forms of a page: action, hidden values, and the fields a person fills in (name -> kind)."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict] = []
        self._form: dict | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            method = (a.get("method") or "get").lower()
            action = a.get("action") or a.get("hx-post")
            if (method == "post" or a.get("hx-post")) and action:
                self._form = {"action": action, "hidden": {}, "fields": {}}
            return
        if self._form is None or not a.get("name") or "disabled" in a:
            return
        if tag == "input":
            kind = (a.get("type") or "text").lower()
            if kind == "hidden":
                self._form["hidden"][a["name"]] = a.get("value") or ""
            elif kind == "file":
                self._form.setdefault("files", []).append(a["name"])
            elif kind in ("submit", "button", "reset", "image"):
                return
            else:
                self._form["fields"][a["name"]] = kind
        elif tag in ("select", "textarea"):
            self._form["fields"][a["name"]] = tag

    def handle_endtag(self, tag):
        if tag == "form" and self._form is not None:
            self.forms.append(self._form)
            self._form = None


def console_get_paths() -> list[str]:
    from allotment.web.routes import router

    def walk(rt):
        for route in rt.routes:
            if hasattr(route, "original_router"):
                yield from walk(route.original_router)
            elif "GET" in (getattr(route, "methods", None) or ()):
                yield route.path

    return list(dict.fromkeys(walk(router)))


def bad_values(fields: dict[str, str]) -> dict[str, str]:
    out = {}
    for name, kind in fields.items():
        if kind in ("checkbox", "radio"):
            continue  # unticked: a box cannot hold a bad value
        out[name] = BAD_NUMBER if kind in ("number", "range") else BAD_TEXT
    return out


@pytest.fixture
def seeded(client, admin_headers) -> dict:
    register_node(client, admin_headers, "walk-node", "H100", 2)
    quota(client, admin_headers, "walkq", gpu="2")
    make_user(client, admin_headers, "walker")
    r = client.post("/api/v1/groups", headers=admin_headers, json={"name": "walkers"})
    assert r.status_code == 201, r.text
    r = client.post("/api/v1/jobs", headers=admin_headers,
                    json={"quota": "walkq", "gpu": 1, "command": "sleep 600", "name": "walk"})
    assert r.status_code == 201, r.text
    job_id = str(r.json()["id"])
    r = client.post("/api/v1/clusters/local/workspaces", headers=admin_headers, json={"name": "walkspace"})
    assert r.status_code == 201, r.text
    policies = client.get("/api/v1/resource-policies", headers=admin_headers).json()["items"]
    r = client.post("/api/v1/service-accounts", headers=admin_headers, json={"name": "walkbot"})
    assert r.status_code == 201, r.text
    return {"job_id": job_id, "quota": "walkq", "cluster": "local",
            "user": "walker", "group": "walkers", "node": "walk-node", "workspace": "walkspace",
            "name": policies[0]["name"], "/ui/service-accounts/{name}": {"name": "walkbot"}}


def test_every_console_form_shows_a_bad_field_under_it_without_htmx(client, seeded):
    assert sign_in(client, "admin", ADMIN_PASSWORD).status_code == 303
    posted, problems, accepted = set(), [], []
    for template in console_get_paths():
        if template in SKIP_PAGES or template.startswith(SKIP_PREFIXES):
            continue
        values = {**seeded, **seeded.get(template, {})}
        if any(n not in values for n in re.findall(r"{(\w+)}", template)):
            continue
        page = client.get(template.format(**values))
        if page.status_code != 200 or "text/html" not in page.headers.get("content-type", ""):
            continue
        parser = Forms()
        parser.feed(page.text)
        for form in parser.forms:
            data = bad_values(form["fields"])
            if not data or form["action"] in posted:
                continue
            posted.add(form["action"])
            # As a browser sends it: from the page it is on (its Referer), a file field with no file chosen.
            files = {name: ("", b"", "application/octet-stream") for name in form.get("files", [])} or None
            r = client.post(form["action"], data={**form["hidden"], **data}, files=files, follow_redirects=False,
                            headers={"Referer": str(client.base_url) + template.format(**values)})
            where = f"{form['action']} (form on {template})"
            if r.status_code in (302, 303):
                accepted.append(where)  # nothing in it was bad for this form; not a finding
            elif r.status_code >= 500:
                problems.append(f"{where}: {r.status_code}")
            elif ERROR_PAGE in r.text:
                problems.append(f"{where}: a full-page error ({r.status_code}) instead of the form")
            elif not 400 <= r.status_code < 500 or "<form" not in r.text:
                problems.append(f"{where}: {r.status_code} without the form")
    print(f"\nposted {len(posted)} forms; accepted the bad values: {accepted}")
    assert len(posted) >= 15, posted
    assert not problems, "\n".join(problems)


def test_a_value_the_route_cannot_read_is_shown_under_its_field_with_what_was_typed(client, seeded):
    """A number field given text (a browser without JavaScript sends it as typed): the route's parameters cannot
    even read it; the console's fallback renders the page the form came from again, the message under the field."""
    assert sign_in(client, "admin", ADMIN_PASSWORD).status_code == 303
    page = client.get("/ui/vaults")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    r = client.post("/ui/vaults", data={"csrf_token": token, "name": "typed-name", "format": "hocon", "content": "",
                                        "owner": "me", "position": "first"},
                    headers={"Referer": f"{client.base_url}/ui/vaults"}, follow_redirects=False)
    assert r.status_code == 422 and ERROR_PAGE not in r.text
    assert 'data-testid="errors-position"' in r.text and "valid integer" in r.text
    assert re.search(r'name="position"[^>]*aria-invalid="true"', r.text)
    assert re.search(r'name="name"[^>]*value="typed-name"', r.text)
    r = client.post("/ui/vaults", data={"csrf_token": token, "name": "x", "position": "first"},
                    headers={"Referer": f"{client.base_url}/ui/vaults", "HX-Request": "true"})
    assert r.status_code == 422 and "allot:field-errors" in r.headers["HX-Trigger"]  # htmx: console.js places it
    r = client.post("/ui/vaults", data={"csrf_token": token, "name": "x", "position": "first"},
                    follow_redirects=False)  # no page to go back to: the error page, as before
    assert r.status_code == 400 and ERROR_PAGE in r.text
