"""`allot bench scenario`: the real CLI runs a small scenario through HTTP, the database, the scheduler loop and the
simulated engine, on its own throwaway server (SQLite, or a throwaway PostgreSQL with production durability) and on
a running one."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from allotment.bench.postgres import find_bindir
from e2e.clitools import ADMIN_PASSWORD, ADMIN_USERNAME, allot, login_config, ok, start_server, stop_server

SMOKE = Path(__file__).resolve().parents[2] / "benchmarks" / "scenarios" / "smoke.yaml"
CLASSES = {"small": 32, "medium": 12, "large": 4}

pytestmark = pytest.mark.e2e


def check(result: dict) -> None:
    assert result["scenario"] == "smoke"
    assert result["jobs"] == 48 and result["finished"] == 48  # every job ran to completion
    assert 0 < result["utilisation"] <= 1
    assert result["wall_ms"] >= result["lower_bound_ms"] > 0
    assert {name: c["count"] for name, c in result["classes"].items()} == CLASSES
    for stats in result["classes"].values():
        assert set(stats) == {"mean_admission_ms", "p50_admission_ms", "p99_admission_ms", "count"}
        assert 0 <= stats["p50_admission_ms"] <= stats["p99_admission_ms"]
    assert len(result["quotas"]) == 4 and sum(q["jobs"] for q in result["quotas"].values()) == 48
    cpu = result["cpu"]  # what each part spent from the first submission until every job was seen finished
    assert cpu["window_s"] * 1000 >= result["wall_ms"] * 0.9 and cpu["cores"] >= 1
    assert all(seconds >= 0 for seconds in cpu["seconds"].values())
    assert cpu["share"] > 0


def parts(result: dict) -> set[str]:
    return set(result["cpu"]["seconds"])


def test_bench_scenario_on_a_throwaway_server(tmp_path):
    result = ok(allot("bench", "scenario", str(SMOKE), "--json", config_dir=tmp_path, timeout=600))
    check(json.loads(result.stdout))


def test_bench_scenario_on_a_running_server(tmp_path):
    # A server of its own: the benchmark's cluster and quotas would show in other tests' listings.
    (tmp_path / "server").mkdir()
    proc, server = start_server(tmp_path / "server")
    try:
        config = login_config(server, tmp_path / "cli", ADMIN_USERNAME, ADMIN_PASSWORD)
        result = ok(allot("bench", "scenario", str(SMOKE), "--json", "--url", server.url, config_dir=config,
                          timeout=600))
    finally:
        stop_server(proc)
    data = json.loads(result.stdout)
    check(data)
    assert data["server"] == server.url
    assert parts(data) == {"client"}  # a server it did not start is not its to measure


def test_bench_scenario_on_a_throwaway_postgresql(tmp_path):
    if find_bindir() is None:
        if os.environ.get("ALLOT_TEST_REQUIRE_POSTGRES"):
            pytest.fail("no PostgreSQL server binaries under /usr/lib/postgresql")
        pytest.skip("no PostgreSQL server binaries under /usr/lib/postgresql")
    result = ok(allot("bench", "scenario", str(SMOKE), "--json", "--database", "postgresql", config_dir=tmp_path,
                      timeout=600))
    data = json.loads(result.stdout)
    check(data)
    assert data["database"] == "postgresql"
    assert data["database_server"].startswith("PostgreSQL ")
    assert "fsync=on, synchronous_commit=on, full_page_writes=on" in data["database_server"]
    assert parts(data) == {"client", "server", "scheduler", "database"}
    assert data["cpu"]["seconds"]["scheduler"] > 0 and data["cpu"]["seconds"]["database"] > 0


def throwaway_run(config_dir, *options: str) -> dict:
    """`allot bench scenario` of the smoke scenario on a throwaway server, its report checked."""
    result = ok(allot("bench", "scenario", str(SMOKE), "--json", *options, config_dir=config_dir, timeout=600))
    data = json.loads(result.stdout)
    check(data)
    return data


def test_bench_scenario_names_its_sqlite_database(tmp_path):
    data = throwaway_run(tmp_path, "--database", "sqlite")
    assert data["database"] == "sqlite" and "WAL" in data["database_server"]
    assert data["scheduler_mode"] == "process" and "scheduler loop in a process" in data["server"]
    assert parts(data) == {"client", "server", "scheduler"} and data["cpu"]["seconds"]["scheduler"] > 0


def test_bench_scenario_with_the_loop_in_the_servers_thread(tmp_path):
    data = throwaway_run(tmp_path, "--scheduler-mode", "thread")
    assert data["scheduler_mode"] == "thread" and "scheduler loop in a thread" in data["server"]
    assert parts(data) == {"client", "server"}  # the loop's CPU is the server's
