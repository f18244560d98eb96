"""Users' GPU/CPU-hour quotas (Neu.ro's set-user-quota, add-user-quota, show-quota) and GPU/CPU-hour budgets on the
quota tree, through the CLI (in-process against the real API), the API and the console's quota tree."""

from __future__ import annotations

import json

import pytest
from cli_inprocess import cli_runner
from sched_helpers import API, Harness
from user_helpers import login, make_user


@pytest.fixture
def h(client, admin_headers) -> Harness:
    h = Harness(client, admin_headers, cluster="default")
    h.node("gpu-01", gpus=4, model="H100")
    h.quota("org", [{"resource": "gpu", "guarantee": 4, "limit": 4}])
    h.quota("team", [{"resource": "gpu", "guarantee": 4, "limit": 4}], parent="org")
    make_user(client, admin_headers, "john")
    make_user(client, admin_headers, "mary")
    for who in ("john", "mary"):
        h.put(f"/clusters/default/users/{who}", {"role": "user"})
        h.put(f"/quotas/team/bindings/users/{who}", status=204)
    return h


@pytest.fixture
def allot(client, admin_headers, monkeypatch, tmp_path):
    """Run `allot ARGS...` with the given headers (the admin's by default); returns (exit code, output)."""

    as_ = cli_runner(client, monkeypatch, tmp_path)

    def run(*args: str, headers: dict | None = None) -> tuple[int, str]:
        return as_(headers or admin_headers)(*args)

    return run


def test_set_and_add_user_quotas_answer_in_neuros_words(h, allot):
    assert allot("admin", "set-user-quota", "-g", "50h", "default", "john") == (
        0, "New quotas for john on cluster default:\nGPU: 3000m\nCPU: infinity\n")
    assert allot("admin", "add-user-quota", "-g", "50h", "default", "john") == (
        0, "New quotas for john on cluster default:\nGPU: 6000m\nCPU: infinity\n")
    assert allot("admin", "set-user-quota", "-g", "30m", "default", "john")[1].endswith("GPU: 30m\nCPU: infinity\n")
    assert allot("admin", "set-user-quota", "-g", "3.5h", "-c", "100h", "default", "john")[1].endswith(
        "GPU: 210m\nCPU: 6000m\n")
    assert allot("admin", "set-user-quota", "default", "john")[1].endswith("GPU: infinity\nCPU: infinity\n")
    code, out = allot("admin", "set-user-quota", "-g", "50", "default", "john")
    assert code == 1 and "gpu" in out and "50h, 3.5h, 30m" in out
    code, out = allot("admin", "set-user-quota", "-g", "5h", "default", "nobody")
    assert code == 1 and "nobody" in out


def test_show_quota_counts_what_the_user_ran_against_the_default_of_100_gpu_hours(h, allot, client):
    john = login(client, "john", "Passw0rd!")
    job = h.submit("team", gpu=2, runtime_s=5400, headers=john)  # 2 GPUs for 1.5 h = 3 GPU-hours
    h.cycle()
    h.cycle(0.001)
    h.cycle(5400.0)
    assert h.job(job)["state"] == "succeeded"
    code, out = allot("config", "show-quota", "--cluster", "default", headers=john)
    assert code == 0, out
    assert out == "GPU: spent: 3h 00m (quota: 100h 00m, left: 97h 00m)\nCPU: spent: 0h 00m (quota: infinity)\n"
    allot("admin", "set-user-quota", "-g", "200h", "default", "john")
    code, out = allot("config", "show-quota", "john")  # the admin sees two clusters (local and default)
    assert code == 1 and "--cluster" in out
    assert allot("config", "show-quota", "john", "--cluster", "default")[1].startswith(
        "GPU: spent: 3h 00m (quota: 200h 00m, left: 197h 00m)")
    report = h.get("/clusters/default/user-quotas/john")
    assert report["gpu"]["left_hours"] == pytest.approx(197, abs=0.01) and report["source"] == "user"
    # A cluster default applies to users without their own quota.
    assert allot("admin", "set-default-user-quota", "-g", "10h", "default")[1].endswith("GPU: 600m\nCPU: infinity\n")
    assert h.get("/clusters/default/user-quotas/mary")["lines"][0] == \
        "GPU: spent: 0h 00m (quota: 10h 00m, left: 10h 00m)"


def test_users_see_their_own_quota_managers_anyones_in_their_cluster(h, client):
    john, mary = login(client, "john", "Passw0rd!"), login(client, "mary", "Passw0rd!")
    assert client.get(f"{API}/clusters/default/user-quotas/john", headers=john).status_code == 200
    r = client.get(f"{API}/clusters/default/user-quotas/john", headers=mary)
    assert r.status_code == 403
    h.put("/clusters/default/users/mary", {"role": "manager"})
    mary = login(client, "mary", "Passw0rd!")
    assert client.get(f"{API}/clusters/default/user-quotas/john", headers=mary).status_code == 200
    r = client.put(f"{API}/clusters/default/user-quotas/john", headers=mary, json={"gpu": "1000h"})
    assert r.status_code == 403  # setting quotas is for the cluster's admins


def test_budgets_on_the_quota_tree_count_the_whole_subtree(h, allot, client):
    code, out = allot("quotas", "set-budget", "org", "gpu", "10h", "--period", "monthly")
    assert code == 0 and out.startswith("org: GPU: spent 0h 00m / budget 10h 00m / left 10h 00m (monthly)"), out
    assert allot("quotas", "set-budget", "team", "cpu", "90m", "--period", "once")[0] == 0
    job = h.submit("team", gpu=2, cpu=1, runtime_s=3600)  # runs in team, a child of org
    h.cycle()
    h.cycle(0.001)
    h.cycle(3600.0)
    assert h.job(job)["state"] == "succeeded"
    org = h.get("/quotas/org/budgets")["items"]
    assert [(b["resource"], b["period"], b["budget_hours"]) for b in org] == [("gpu", "monthly", 10.0)]
    assert org[0]["spent_hours"] == pytest.approx(2.0, abs=0.01)  # 2 GPUs for an hour, in the child quota
    assert org[0]["left_hours"] == pytest.approx(8.0, abs=0.01)
    team = h.get("/quotas/team/budgets")["items"]
    assert [(b["resource"], b["spent_hours"]) for b in team] == [("cpu", pytest.approx(1.0, abs=0.01))]
    code, out = allot("quotas", "show", "team")
    assert code == 0 and "budget" in out and "CPU: spent" in out and "(once)" in out
    page = client.get("/ui/quotas", headers=h.headers)
    assert page.status_code == 200 and 'data-testid="budget-org-gpu"' in page.text
    code, out = allot("quotas", "set-budget", "org", "gpu", "lots")
    assert code == 1 and "50h, 3.5h, 30m" in out
    r = client.put(f"{API}/quotas/org/budgets/tpu", headers=h.headers, json={"period": "monthly", "amount": "1h"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "resource"
    r = client.put(f"{API}/quotas/org/budgets/gpu", headers=h.headers, json={"period": "daily", "amount": "1h"})
    assert r.status_code == 422
    assert allot("quotas", "delete-budget", "org", "gpu")[0] == 0
    assert h.get("/quotas/org/budgets")["items"] == []
    assert client.delete(f"{API}/quotas/org/budgets/gpu", headers=h.headers).status_code == 404


def test_usage_cli_reports_and_writes_csv(h, allot, tmp_path):
    h.submit("team", gpu=1, runtime_s=10)
    h.cycle()
    h.cycle(0.001)
    h.cycle(10.0)
    code, out = allot("usage", "--by", "quota", "--from", "2000-01-01", "--to", "2100-01-01", "--json")
    assert code == 0 and sorted(i["key"] for i in json.loads(out)["items"]) == ["org", "team"]
    target = tmp_path / "usage.csv"
    code, out = allot("usage", "--by", "user", "--from", "2000-01-01", "--to", "2100-01-01", "--csv", str(target))
    assert code == 0 and "wrote 1 row(s)" in out
    assert target.read_text().splitlines()[0] == "key,gpu_hours,cpu_hours,memory_gib_hours,intervals,running"
    records = tmp_path / "records.csv"
    code, out = allot("usage", "--from", "2000-01-01", "--to", "2100-01-01", "--export", str(records))
    assert code == 0 and "wrote 1 usage interval(s)" in out
    out = allot("admin", "recalculate-usage", "default")[1]
    assert "0 correction(s)" in out and "cluster default: its state is rebuilt" in out


def test_the_console_usage_page_charts_usage_shows_quotas_and_budgets_and_recalculates(h, client):
    h.put("/quotas/org/budgets/gpu", {"period": "weekly", "amount": "50h"})
    h.submit("team", gpu=2, runtime_s=10)
    h.cycle()
    page = client.get("/ui/usage", params={"by": "quota"}, headers=h.headers)
    assert page.status_code == 200
    assert 'id="usage-data"' in page.text and "/static/console/usage.js" in page.text
    if client.app.state.allot.extras.get("console_vendor"):  # npm ci has installed the console's assets
        assert "/static/vendor/chart.js/dist/chart.umd.min.js" in page.text
    assert "<td>team</td>" in page.text and "<td>org</td>" in page.text
    assert 'data-testid="my-quotas"' in page.text and "GPU: spent: 0h" in page.text
    assert 'data-testid="quota-budgets"' in page.text and "weekly" in page.text
    assert "/api/v1/exports/usage.csv?from=" in page.text and 'data-testid="recalculate-usage"' in page.text
    assert client.get("/ui/usage", params={"by": "colour"}, headers=h.headers).status_code == 422
    john = login(client, "john", "Passw0rd!")
    mine = client.get("/ui/usage", headers=john)
    assert mine.status_code == 200 and "recalculate-usage" not in mine.text and "<td>admin</td>" not in mine.text
    token = client.get("/ui/usage", headers=h.headers).text.split('name="csrf_token" value="')[1].split('"')[0]
    r = client.post("/ui/usage/recalculate", headers=h.headers, data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303 and "0%20correction" in r.headers.get("set-cookie", "")
    assert client.post("/ui/usage/recalculate", headers=john, data={"csrf_token": token},
                       follow_redirects=False).status_code in (302, 303, 403)
