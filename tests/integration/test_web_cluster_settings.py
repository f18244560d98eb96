"""The console's cluster pages over HTTP: add, change and remove clusters with their engine settings; secrets
write-only; the engine's status on the clusters page."""

from __future__ import annotations

from datetime import UTC, datetime

from inventory_helpers import API, sessions
from sched_helpers import Harness
from sqlalchemy import text
from test_web_console import ADMIN_PASSWORD, csrf, make_user, sign_in

from allotment.db import transaction
from allotment.inventory.engine_settings import engine_config
from allotment.inventory.service import find_cluster, report_engine_status

TOKEN = "eyJhbGciOiJIUzI1NiJ9.Y29uc29sZS10b2tlbg.c2lnbmF0dXJlLWNvbnNvbGU"


def add_slurm(client, name: str = "hpc", **extra):
    token = csrf(client, "/ui/clusters/new?backend=slurm")
    form = {"csrf_token": token, "name": name, "backend": "slurm", "rest_url": "http://slurm-head:6820",
            "rest_user": "allot", "token": TOKEN, "log_dir": "/srv/slurm/jobs", "partitions": "a100=gpu-a100\n"}
    return client.post("/ui/clusters", data=form | extra, follow_redirects=False)


def stored_token(client, name: str) -> str | None:
    with sessions(client)() as s:
        return engine_config(s, find_cluster(s, name).id, client.app.state.allot.secret_key).get("token")


def test_admin_adds_a_slurm_cluster_and_its_token_is_never_shown(client):
    sign_in(client, "admin", ADMIN_PASSWORD)
    form = client.get("/ui/clusters/new?backend=slurm").text
    assert 'name="token" type="password" value=""' in form and "not set" in form
    r = add_slurm(client)
    assert r.status_code == 303 and r.headers["location"] == "/ui/clusters"
    page = client.get("/ui/clusters").text
    assert "hpc" in page and "/ui/clusters/hpc/settings" in page and TOKEN not in page
    settings = client.get("/ui/clusters/hpc/settings").text
    assert TOKEN not in settings and "set — leave empty to keep" in settings
    assert 'value="http://slurm-head:6820"' in settings and "a100=gpu-a100" in settings
    with sessions(client)() as s:
        raw = s.execute(text("SELECT engine_settings, engine_secrets FROM clusters WHERE name = 'hpc'")).one()
    assert TOKEN not in str(raw)
    assert stored_token(client, "hpc") == TOKEN


def test_saving_with_the_token_left_empty_keeps_it_and_the_box_clears_it(client):
    sign_in(client, "admin", ADMIN_PASSWORD)
    add_slurm(client)
    token = csrf(client, "/ui/clusters/hpc/settings")
    base = {"csrf_token": token, "backend": "slurm", "description": "rack 7", "rest_url": "http://slurm-head:6821",
            "rest_user": "allot", "token": "", "log_dir": "/srv/slurm/jobs", "partitions": ""}
    r = client.post("/ui/clusters/hpc/settings", data=base, follow_redirects=False)
    assert r.status_code == 303, r.text
    assert stored_token(client, "hpc") == TOKEN
    with sessions(client)() as s:
        cluster = find_cluster(s, "hpc")
        assert cluster.description == "rack 7" and "partitions" not in (cluster.engine_settings or {})
    # Clearing the token while keeping the URL is refused, with the message under the token's field.
    r = client.post("/ui/clusters/hpc/settings", data=base | {"clear_token": "1"})
    assert r.status_code == 422 and 'data-testid="errors-token"' in r.text and "required with rest_url" in r.text
    r = client.post("/ui/clusters/hpc/settings", data=base | {"clear_token": "1", "rest_url": "", "rest_user": ""},
                    follow_redirects=False)
    assert r.status_code == 303, r.text
    assert stored_token(client, "hpc") is None


def test_field_errors_are_shown_under_each_input_and_input_is_kept(client):
    sign_in(client, "admin", ADMIN_PASSWORD)
    r = add_slurm(client, log_dir="jobs", partitions="a100", rest_url="ftp://x")
    assert r.status_code == 422
    assert 'data-testid="errors-partitions"' in r.text and "POOL=NAME" in r.text
    r = add_slurm(client, log_dir="jobs", rest_url="ftp://x")
    assert r.status_code == 422
    assert 'data-testid="errors-log_dir"' in r.text and "absolute" in r.text
    assert 'data-testid="errors-rest_url"' in r.text and 'value="ftp://x"' in r.text
    assert TOKEN not in r.text  # a secret is never echoed back, even into its own field
    assert client.get(f"{API}/clusters/hpc").status_code == 404


def test_remove_is_refused_with_active_jobs_and_needs_the_cluster_admin_role(client, admin_headers):
    h = Harness(client, admin_headers, cluster="sim")
    h.quota("team", [{"resource": "gpu", "guarantee": 1, "limit": 1}])
    job = h.submit("team", gpu=1)
    sign_in(client, "admin", ADMIN_PASSWORD)
    token = csrf(client, "/ui/clusters/sim/settings")
    r = client.post("/ui/clusters/sim/remove", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 409 and "text/html" in r.headers["content-type"]
    assert "1 active job (1 queued)" in r.text and str(job) in r.text
    h.cancel(job)
    r = client.post("/ui/clusters/sim/remove", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303
    assert client.get(f"{API}/clusters/sim", headers=admin_headers).status_code == 404
    make_user(client, admin_headers, "carol")
    client.cookies.clear()
    sign_in(client, "carol", "Passw0rd!x")
    assert client.get("/ui/clusters/new").status_code == 403
    assert client.get("/ui/clusters/local/settings").status_code == 403
    assert "Add cluster" not in client.get("/ui/clusters").text
    token = csrf(client, "/ui/clusters")
    assert client.post("/ui/clusters/local/remove", data={"csrf_token": token}).status_code == 403


def test_the_clusters_page_shows_an_engines_error_and_since_when(client):
    sign_in(client, "admin", ADMIN_PASSWORD)
    add_slurm(client)
    with transaction(sessions(client)) as s:
        report_engine_status(s, find_cluster(s, "hpc").id, "unreachable", "slurmrestd: connection refused",
                             datetime(2031, 5, 6, 7, 8, tzinfo=UTC))
    page = client.get("/ui/clusters").text
    assert 'data-testid="status-hpc"' in page and "unreachable" in page
    assert "since 2031-05-06 07:08 UTC: slurmrestd: connection refused" in page
    assert "slurmrestd: connection refused" in client.get("/ui/clusters/hpc").text


def test_changing_the_backend_swaps_the_engine_fields(client):
    sign_in(client, "admin", ADMIN_PASSWORD)
    fragment = client.get("/ui/clusters/new/engine?backend=ray", headers={"HX-Request": "true"}).text
    assert 'name="address" type="password"' in fragment and 'name="resources"' in fragment
    assert "takes no settings" in client.get("/ui/clusters/new/engine?backend=local").text


def test_every_engine_setting_has_a_label_on_the_console_form():
    """A setting added to a backend without a label broke the whole form (a KeyError on /ui/clusters/new)."""
    from allotment.inventory import engine_settings
    from allotment.web.pages_cluster_settings import LABELS

    for backend, names in engine_settings.SETTINGS.items():
        assert set(names) <= set(LABELS), (backend, set(names) - set(LABELS))
