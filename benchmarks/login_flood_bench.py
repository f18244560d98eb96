"""Login flood benchmark: latency of authenticated `GET /api/v1/jobs` without and with a flood of concurrent bad
password logins, both measured in the same run.

For each configuration a real `allot server` is started (SQLite in a temporary data directory, scheduler off, argon2
at argon2-cffi's production defaults). A probe sends authenticated `GET /api/v1/jobs` back to back on one keep-alive
connection for `--duration` seconds, first on a quiet server, then while another process keeps `--flooders`
concurrent anonymous clients posting wrong passwords for unknown and existing users to /api/v1/auth/login.

Configurations:
- `defaults`: the production settings. The flood comes from one address, so the per-source limit answers most of it
  with 429 before any hashing.
- `many sources`: the per-source limit lifted (what a flood from many addresses looks like to the server); only the
  bound on concurrent argon2 verifications (and its short wait, then 429) protects the API.
- `unbounded`: neither limit (per-source lifted, 64 verifications at a time, a minute's wait): how the server
  behaved before the bound, for comparison.

    .venv/bin/python benchmarks/login_flood_bench.py [--duration 8] [--flooders 32] [--only defaults,many-sources]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from auth_bench import ADMIN_PASSWORD, free_port, start_server, wait_ready

CONFIGURATIONS = {
    "defaults": {},
    "many-sources": {"ALLOT_LOGIN_FAILURES_BURST": "1000000"},
    "unbounded": {"ALLOT_LOGIN_FAILURES_BURST": "1000000", "ALLOT_PASSWORD_CHECKS_CONCURRENCY": "64",
                  "ALLOT_PASSWORD_CHECK_WAIT_S": "60"},
}


async def _flood(url: str, flooders: int, stop_at: float, counts: dict) -> None:
    limits = httpx.Limits(max_connections=flooders, max_keepalive_connections=flooders)
    async with httpx.AsyncClient(limits=limits, timeout=120) as client:
        async def flooder(i: int) -> None:
            n = 0
            while time.monotonic() < stop_at:
                # Half the guesses name the admin (an existing, soon locked, account), half unknown users.
                username = "admin" if n % 2 else f"nobody-{i}-{n}"
                try:
                    r = await client.post(f"{url}/api/v1/auth/login",
                                          json={"username": username, "password": f"Wr0ng-guess-{n}!"})
                    counts[r.status_code] = counts.get(r.status_code, 0) + 1
                except httpx.HTTPError:
                    counts["error"] = counts.get("error", 0) + 1
                n += 1

        await asyncio.gather(*(flooder(i) for i in range(flooders)))


def flood_process(url: str, flooders: int, stop_at: float, results) -> None:
    counts: dict = {}
    asyncio.run(_flood(url, flooders, stop_at, counts))
    results.put(counts)


def probe(url: str, headers: dict, duration: float) -> list[float]:
    """Latencies (ms) of authenticated GET /api/v1/jobs, back to back, for `duration` seconds."""
    latencies = []
    with httpx.Client(headers=headers, timeout=120) as client:
        deadline = time.monotonic() + duration
        while time.monotonic() < deadline:
            started = time.perf_counter()
            r = client.get(f"{url}/api/v1/jobs")
            latencies.append((time.perf_counter() - started) * 1000)
            if r.status_code != 200:
                raise SystemExit(f"GET /api/v1/jobs answered {r.status_code}: {r.text[:200]}")
    return latencies


def summary(latencies: list[float]) -> str:
    ordered = sorted(latencies)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return (f"n={len(ordered):5d}  median {statistics.median(ordered):8.1f} ms  p95 {p95:8.1f} ms  "
            f"max {ordered[-1]:8.1f} ms")


def run_configuration(name: str, env: dict[str, str], duration: float, flooders: int) -> dict:
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        with tempfile.TemporaryDirectory(prefix="allot-flood-") as tmp:
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            server = start_server(Path(tmp), port)
            try:
                wait_ready(url, server)
                r = httpx.post(f"{url}/api/v1/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD},
                               timeout=60)
                r.raise_for_status()
                headers = {"Authorization": f"Bearer {r.json()['token']}"}
                probe(url, headers, 1.0)  # warm up
                quiet = probe(url, headers, duration)
                results = multiprocessing.Queue()
                stop_at = time.monotonic() + duration + 2.0
                flood = multiprocessing.Process(target=flood_process, args=(url, flooders, stop_at, results))
                flood.start()
                time.sleep(1.0)  # let the flood build up
                flooded = probe(url, headers, duration)
                counts = results.get(timeout=300)
                flood.join(timeout=60)
            finally:
                server.terminate()
                server.wait(timeout=30)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    print(f"{name}:\n  quiet    {summary(quiet)}\n  flooded  {summary(flooded)}\n"
          f"  logins during the flood: {dict(collections.OrderedDict(sorted(counts.items(), key=str)))}", flush=True)
    return {"quiet": quiet, "flooded": flooded, "logins": counts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per measurement")
    parser.add_argument("--flooders", type=int, default=32, help="concurrent bad-login clients")
    parser.add_argument("--only", default=",".join(CONFIGURATIONS), help="comma-separated configurations")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; {args.flooders} flooders, "
          f"{args.duration:g} s per measurement", flush=True)
    for name in args.only.split(","):
        run_configuration(name, CONFIGURATIONS[name], args.duration, args.flooders)
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
