"""Authentication benchmark: requests per second with and without an access-key credential, in one run.

Starts a real `allot server` process (SQLite in a temporary data directory), logs in as the bootstrap admin, creates a
credential, then loads the server with `wrk` (Debian's package; an asyncio httpx client with keep-alive is the
fallback) on:

- GET /healthz without credentials                      (the unauthenticated baseline)
- GET /healthz with `Authorization: Bearer AK...:SECRET` (the same endpoint, authenticated: the token is verified)
- GET /api/v1/auth/whoami with the credential           (a route that requires authentication)

Rounds alternate the targets so that noise from other processes hits them alike; the best round of each is reported,
with the ratio authenticated / unauthenticated. Every response must be 200, otherwise the figure is refused (a
rejected token would otherwise look fast).

    .venv/bin/python benchmarks/auth_bench.py [--duration 5] [--rounds 3] [--connections 32] [--client wrk|httpx]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ADMIN_PASSWORD = "Bench-admin-1!"
TARGET_RPS = 2000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(data_dir: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "ALLOT_DATA_DIR": str(data_dir), "ALLOT_BIND": f"127.0.0.1:{port}",
           "ALLOT_BOOTSTRAP_ADMIN_USERNAME": "admin", "ALLOT_BOOTSTRAP_ADMIN_EMAIL": "admin@example.com",
           "ALLOT_BOOTSTRAP_ADMIN_PASSWORD": ADMIN_PASSWORD, "ALLOT_LOG_LEVEL": "warning",
           "ALLOT_SCHEDULER_ENABLED": "false"}
    env.pop("ALLOT_DATABASE_URL", None)
    allot = Path(sys.executable).with_name("allot")
    command = [str(allot), "server"] if allot.exists() else [sys.executable, "-m", "allotment.cli.main", "server"]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


BARE_APP = """
from fastapi import FastAPI

app = FastAPI()


@app.get("/healthz")
async def healthz():
    return {"status": "ok"}
"""


def start_bare_server(directory: Path, port: int) -> subprocess.Popen:
    """A FastAPI app with one trivial route and nothing else, served the same way: the framework's floor on this
    machine, so the other figures can be read against what the machine gives any FastAPI app right now."""
    (directory / "bare_fastapi.py").write_text(BARE_APP)
    command = [sys.executable, "-m", "uvicorn", "bare_fastapi:app", "--app-dir", str(directory), "--port", str(port),
               "--log-level", "warning", "--no-access-log"]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait_ready(url: str, server: subprocess.Popen, timeout: float = 60.0, path: str = "/readyz") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited with {server.returncode}: {server.stderr.read()[-2000:]}")
        try:
            if httpx.get(f"{url}{path}", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"the server did not become ready within {timeout:.0f}s")


def make_credential(url: str) -> str:
    r = httpx.post(f"{url}/api/v1/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}, timeout=30)
    r.raise_for_status()
    session = {"Authorization": f"Bearer {r.json()['token']}"}
    r = httpx.post(f"{url}/api/v1/credentials", json={"label": "benchmark"}, headers=session, timeout=30)
    r.raise_for_status()
    created = r.json()
    return f"{created['access_key']}:{created['secret_key']}"


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used (Linux /proc), so cost per request can be told apart from how
    much CPU the machine had to spare."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_wrk(url: str, token: str | None, duration: float, connections: int) -> float:
    command = ["wrk", "-t1", f"-c{connections}", f"-d{duration:g}s", "--timeout", "30s", url]
    if token:
        command[1:1] = ["-H", f"Authorization: Bearer {token}"]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    if "Non-2xx or 3xx responses" in out or "Socket errors" in out:
        raise SystemExit(f"wrk saw failed requests on {url}:\n{out}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


async def _httpx_load(url: str, token: str | None, duration: float, connections: int) -> float:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    done = 0
    async with httpx.AsyncClient(headers=headers, limits=limits, timeout=30) as client:
        deadline = time.perf_counter() + duration
        start = time.perf_counter()

        async def worker() -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                r = await client.get(url)
                if r.status_code != 200:
                    raise SystemExit(f"{url} answered {r.status_code}: {r.text[:200]}")
                done += 1

        await asyncio.gather(*(worker() for _ in range(connections)))
        return done / (time.perf_counter() - start)


def run_httpx(url: str, token: str | None, duration: float, connections: int) -> float:
    return asyncio.run(_httpx_load(url, token, duration, connections))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per measurement")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--client", choices=["wrk", "httpx"], default="wrk" if shutil.which("wrk") else "httpx")
    parser.add_argument("--no-floor", action="store_true", help="skip the bare FastAPI comparison")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = parser.parse_args()
    load = run_wrk if args.client == "wrk" else run_httpx
    load_before = os.getloadavg()[0]

    with tempfile.TemporaryDirectory(prefix="allot-bench-") as tmp:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = start_server(Path(tmp), port)
        servers = [server]
        try:
            wait_ready(url, server)
            token = make_credential(url)
            targets = {"unauthenticated /healthz": (f"{url}/healthz", None, server),
                       "authenticated /healthz": (f"{url}/healthz", token, server),
                       "authenticated /api/v1/auth/whoami": (f"{url}/api/v1/auth/whoami", token, server)}
            if not args.no_floor:
                bare_port = free_port()
                bare = start_bare_server(Path(tmp), bare_port)
                servers.append(bare)
                wait_ready(f"http://127.0.0.1:{bare_port}", bare, path="/healthz")
                targets["bare FastAPI, no app code"] = (f"http://127.0.0.1:{bare_port}/healthz", None, bare)
            for target, tok, _ in targets.values():  # warm up: imports, caches, connections
                load(target, tok, 1.0, args.connections)
            best = dict.fromkeys(targets, 0.0)
            cpu_ms = dict.fromkeys(targets, float("inf"))
            for round_no in range(1, args.rounds + 1):
                for name, (target, tok, process) in targets.items():
                    cpu_before = cpu_seconds(process.pid)
                    started = time.perf_counter()
                    rps = load(target, tok, args.duration, args.connections)
                    served = rps * (time.perf_counter() - started)
                    per_request = (cpu_seconds(process.pid) - cpu_before) * 1000 / max(served, 1)
                    best[name] = max(best[name], rps)
                    cpu_ms[name] = min(cpu_ms[name], per_request)
                    print(f"round {round_no}: {name:<36} {rps:9.0f} req/s  {per_request:6.3f} ms CPU/request",
                          flush=True)
        finally:
            for process in servers:
                process.terminate()
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()

    unauth = best["unauthenticated /healthz"]
    auth = best["authenticated /healthz"]
    whoami = best["authenticated /api/v1/auth/whoami"]
    print(f"\nload generator: {args.client}, {args.connections} connections, {args.duration:g}s x {args.rounds} rounds,"
          f" {os.cpu_count()} CPUs, load average before/after {load_before:.1f}/{os.getloadavg()[0]:.1f}")
    print(f"{'':<36} {'req/s':>9} {'ratio':>6}  {'server CPU/request':>18}  {'req/s per free core':>19}")
    for name, rps in best.items():
        print(f"{name:<36} {rps:9.0f} {rps / unauth:6.2f}  {cpu_ms[name]:15.3f} ms  {1000 / cpu_ms[name]:19.0f}")
    measured = min(auth, whoami)
    per_core = 1000 / max(cpu_ms["authenticated /healthz"], cpu_ms["authenticated /api/v1/auth/whoami"])
    print(f"target {TARGET_RPS} authenticated req/s: measured {measured:.0f} ({'meets' if measured >= TARGET_RPS else 'MISSES'}"
          f" on this machine now); one free core at the measured CPU cost: {per_core:.0f}")
    if args.json:
        print(json.dumps({"client": args.client, "rps": best, "cpu_ms_per_request": cpu_ms, "ratio": auth / unauth}))


if __name__ == "__main__":
    main()
