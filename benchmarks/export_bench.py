"""Benchmark: export 1,000,000 usage records as CSV through the real server (`allot server`, SQLite).

Run:  python benchmarks/export_bench.py                 (1,000,000 records; prints one JSON object)
      python benchmarks/export_bench.py --records 100000

It fills a fresh data directory with usage records (closed intervals of 1-8 GPU jobs of 50 users over 100 quotas,
spread over November 2026, every hundredth one still open), starts the server on it, signs in as the admin and
downloads GET /api/v1/exports/usage.csv for the whole month with a streaming client. Reported: the wall time of the
download, rows per second, the bytes received, and the server's memory: its resident set before the export and its
peak (VmHWM from /proc) after it. The target is a peak under 200 MiB: the export streams (records read in batches,
written a chunk at a time), so the peak does not grow with the number of records.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy import create_engine, insert, select

ADMIN_PASSWORD = "Bench-export-1!"
MONTH_START = datetime(2026, 11, 1, tzinfo=UTC).timestamp()
MONTH_END = datetime(2026, 12, 1, tzinfo=UTC).timestamp()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_env(data_dir: Path, port: int) -> dict[str, str]:
    env = {**os.environ, "ALLOT_DATA_DIR": str(data_dir), "ALLOT_BIND": f"127.0.0.1:{port}",
           "ALLOT_BOOTSTRAP_ADMIN_USERNAME": "admin", "ALLOT_BOOTSTRAP_ADMIN_EMAIL": "admin@example.com",
           "ALLOT_BOOTSTRAP_ADMIN_PASSWORD": ADMIN_PASSWORD, "ALLOT_LOG_LEVEL": "warning",
           "ALLOT_SCHEDULER_ENABLED": "false"}
    env.pop("ALLOT_DATABASE_URL", None)
    return env


def start_server(data_dir: Path, port: int) -> subprocess.Popen:
    allot = Path(sys.executable).with_name("allot")
    command = [str(allot), "server"] if allot.exists() else [sys.executable, "-m", "allotment.cli.main", "server"]
    return subprocess.Popen(command, env=server_env(data_dir, port), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def wait_ready(url: str, server: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited: {server.stderr.read() if server.stderr else ''}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit("the server did not become ready")


def memory_mib(pid: int) -> dict[str, float]:
    """VmRSS (now) and VmHWM (peak resident set) of a process, in MiB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = round(int(value.split()[0]) / 1024, 1)
    return out


def fill(data_dir: Path, records: int, seed: int = 7) -> None:
    """Migrate the database (one short server start does it) and insert the records in batches."""
    from allotment.accounting.models import UsageRecord
    from allotment.identity.models import User
    from allotment.inventory.models import Cluster

    engine = create_engine(f"sqlite:///{data_dir / 'allotment.db'}")
    with engine.begin() as conn:
        admin = conn.scalar(select(User.id).where(User.username == "admin"))
        cluster = conn.scalar(select(Cluster.id).order_by(Cluster.id))
    rng = random.Random(seed)
    table = UsageRecord.__table__
    batch: list[dict] = []
    span = MONTH_END - MONTH_START
    with engine.begin() as conn:
        for i in range(records):
            start = MONTH_START + rng.random() * (span - 7200)
            end = None if i % 100 == 0 else start + rng.uniform(60, 7200)
            batch.append({"job_id": i + 1, "cluster_id": cluster, "owner_id": admin, "quota_id": 1 + i % 100,
                          "pool_id": 1, "device_model": "H100", "gpu_milli": rng.choice((500, 1000, 2000, 8000)),
                          "cpu_milli": rng.choice((1000, 4000, 16000)), "memory_bytes": rng.choice((8, 32, 128)) << 30,
                          "start_s": start, "end_s": end, "outcome": None if end is None else "succeeded"})
            if len(batch) == 10000:
                conn.execute(insert(table), batch)
                batch.clear()
        if batch:
            conn.execute(insert(table), batch)
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="allot-export-bench-") as tmp:
        data_dir = Path(tmp) / "var"
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = start_server(data_dir, port)  # the first start migrates the database and creates the admin
        try:
            wait_ready(url, server)
        finally:
            server.terminate()
            server.wait(30)
        began = time.perf_counter()
        fill(data_dir, args.records)
        fill_s = time.perf_counter() - began
        server = start_server(data_dir, port)
        try:
            wait_ready(url, server)
            token = httpx.post(f"{url}/api/v1/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD},
                               timeout=30).json()["token"]
            before = memory_mib(server.pid)  # its peak so far too: start-up and sign-in
            lines = received = 0
            began = time.perf_counter()
            with httpx.stream("GET", f"{url}/api/v1/exports/usage.csv", timeout=600,
                              params={"from": "2026-11-01", "to": "2026-12-01"},
                              headers={"Authorization": f"Bearer {token}"}) as response:
                response.raise_for_status()
                for chunk in response.iter_bytes():
                    received += len(chunk)
                    lines += chunk.count(b"\n")
            seconds = time.perf_counter() - began
            after = memory_mib(server.pid)
        finally:
            server.terminate()
            server.wait(30)
    rows = lines - 1
    print(json.dumps({
        "records": args.records, "rows_exported": rows, "seconds": round(seconds, 2),
        "rows_per_s": round(rows / seconds), "mib_received": round(received / 2**20, 1),
        "server_rss_before_mib": before.get("VmRSS"), "server_peak_before_mib": before.get("VmHWM"),
        "server_peak_rss_mib": after.get("VmHWM"),
        "target_peak_mib": 200, "within_target": (after.get("VmHWM") or 0) < 200,
        "fill_seconds": round(fill_s, 1), "python": platform.python_version(), "machine": platform.machine(),
        "cpus": os.cpu_count(),
    }, indent=2))
    if rows != args.records:
        raise SystemExit(f"exported {rows} rows of {args.records}")


if __name__ == "__main__":
    main()
