"""`allot simulate` against the app in-process: the cluster's history, a CSV trace with column mapping compared with
a configuration file, a Philly trace with its capacity file, and bad rows reported by line."""

from __future__ import annotations

import json
import time

import yaml
from sched_helpers import Harness
from test_cli_quotas_jobs import allot  # noqa: F401 - a fixture


def sim_cluster(client, admin_headers) -> Harness:
    h = Harness(client, admin_headers)
    h.node("n1", gpus=2)
    h.pool("gpus", ["n1"])
    h.quota("vision", [{"resource": "gpu", "pool": "gpus", "guarantee": 1}])
    h.quota("speech", [{"resource": "gpu", "pool": "gpus", "guarantee": 1}])
    return h


def test_history_of_the_cluster(allot, client, admin_headers):  # noqa: F811
    h = sim_cluster(client, admin_headers)
    ids = [h.submit("vision", runtime_s=60, gpu=1) for _ in range(3)]
    for _ in range(5):
        h.settle(2, advance=40)
    assert h.states(ids) == ["succeeded"] * 3
    today = time.strftime("%Y-%m-%d", time.gmtime())
    code, out = allot("simulate", "--cluster", "sim", "--history", f"{today}..{today}", "--json")
    assert code == 0, out
    result = json.loads(out)
    assert result["config"]["quotas"]["vision"]["jobs_run"] == 3
    # two GPUs, three 1-GPU jobs submitted together: the third waits for one of the first two
    assert result["config"]["quotas"]["vision"]["queueing_s"]["p99"] > 0

    code, out = allot("simulate", "--cluster", "sim", "--history", f"{today}..{today}")
    assert code == 0, out
    assert "3 jobs, 3 run" in out and "vision" in out and "per pool" in out

    h.put("/quotas/vision/budgets/gpu", {"period": "once", "amount": "1m"})  # 60 GPU-seconds: one job's worth
    code, out = allot("simulate", "--cluster", "sim", "--history", f"{today}..{today}")
    assert code == 0, out
    assert "budgets (jobs held at the gate while spent)" in out
    assert "3 jobs, 2 run" in out  # two start together and spend the minute in 30 s: the third is held


def test_csv_trace_with_column_mapping_against_a_configuration_file(allot, client, admin_headers, tmp_path):  # noqa: F811
    h = sim_cluster(client, admin_headers)
    trace = tmp_path / "trace.csv"
    trace.write_text("t,runtime,gpus,team\n0,100,1,speech\n0,100,1,speech\n10,100,1,vision\n")
    draft = h.get("/clusters/sim/resource-config/draft")
    for q in draft["quotas"]:
        if q["name"] == "vision":
            q["reclaim"] = "any"  # vision may take its guarantee back from speech
    config = tmp_path / "draft.yaml"
    config.write_text(yaml.safe_dump({k: draft[k] for k in ("quotas", "profiles", "pool_profile_order")}))
    code, out = allot("simulate", "--cluster", "sim", "--trace", str(trace), "--submit-column", "t",
                      "--duration-column", "runtime", "--gpu-column", "gpus", "--quota-column", "team",
                      "--config", "current", "--against", str(config), "--json")
    assert code == 0, out
    result = json.loads(out)
    assert result["config"]["quotas"]["vision"]["queueing_s"]["mean"] == 90.0  # waits for speech to end
    assert result["against"]["quotas"]["speech"]["preemptions"] == 1  # the file's reclaim takes it back
    assert result["differences"]["quotas"]["vision"]["queue mean s"] < 0

    code, out = allot("simulate", "--cluster", "sim", "--trace", str(trace), "--submit-column", "t",
                      "--duration-column", "runtime", "--gpu-column", "gpus", "--quota-column", "team",
                      "--against", str(config))
    assert code == 0, out
    assert "side by side" in out and "preemptions" in out


def test_bad_rows_are_named_by_line(allot, tmp_path):  # noqa: F811
    trace = tmp_path / "bad.csv"
    trace.write_text("submit,duration,gpu,quota\n0,10,1,a\n0,10,two,a\n")
    code, out = allot("simulate", "--cluster", "local", "--trace", str(trace))
    assert code == 1
    assert "line 3: gpu 'two'" in out


def test_philly_trace_with_its_capacity_file_shared_against_isolated(allot, tmp_path):  # noqa: F811
    jobs = tmp_path / "philly.csv"
    jobs.write_text("timestamp,duration,num_gpus,gpu_time,cluster\n"
                    "2017-10-01 00:00:00,3600,8,28800,vc1\n"
                    "2017-10-01 00:00:00,3600,8,28800,vc1\n"
                    "2017-10-01 00:10:00,600,1,600,vc2\n")
    caps = tmp_path / "caps.csv"
    caps.write_text("vc,node num\nvc1,4\nvc2,4\n")
    code, out = allot("simulate", "--trace", str(jobs), "--format", "philly", "--capacities", str(caps),
                      "--against", "isolated", "--json")
    assert code == 0, out
    result = json.loads(out)
    # x 0.25: 8 GPUs each. Shared, vc1 borrows vc2's 8 GPUs for its second job until vc2 takes them back (1 s
    # preemption delay) for its 600 s job; isolated, the second job waits for the first, an hour.
    assert result["config"]["quotas"]["vc1"]["queueing_s"]["p99"] == 600
    assert result["against"]["quotas"]["vc1"]["queueing_s"]["p99"] == 3600
    assert result["config"]["quotas"]["vc2"]["preemptions"] == 0
    assert result["config"]["quotas"]["vc1"]["preemptions"] == 1  # vc2 reclaims its guarantee


def test_usage_errors(allot, tmp_path):  # noqa: F811
    code, out = allot("simulate", "--cluster", "local")
    assert code == 2 and "--trace FILE or --history" in out
    code, out = allot("simulate", "--cluster", "local", "--history", "2026-01-01")
    assert code == 2 and "FROM..TO" in out
