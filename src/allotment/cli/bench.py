"""`allot bench scenario FILE`: run a scheduler benchmark through the real path and print its figures.

Without --url it starts a throwaway server (simulated engine, short scheduler tick) on a temporary SQLite database,
or with --database postgresql on a throwaway PostgreSQL server with production durability (bench/postgres.py), and
stops both afterwards; the report names the database. With --url it uses a running server with the saved login
(`allot login`) or ALLOT_TOKEN, and creates its cluster, quotas and priority classes under a unique prefix.
"""

from __future__ import annotations

import os
import time
from contextlib import ExitStack
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from allotment import compiled_core
from allotment.bench.postgres import PostgresError
from allotment.cli.client import CliError
from allotment.cli.output import console, emit_json, err_console, table


class Database(str, Enum):
    sqlite = "sqlite"
    postgresql = "postgresql"


class LoopMode(str, Enum):
    process = "process"
    thread = "thread"


def register(app: typer.Typer) -> None:
    bench = typer.Typer(help="Benchmarks of the scheduler.", no_args_is_help=True)
    app.add_typer(bench, name="bench")

    @bench.command("scenario")
    def scenario(
        file: Annotated[Path, typer.Argument(exists=True, dir_okay=False,
                                             help="scenario file (Kueue generator format)")],
        as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
        url: Annotated[str | None, typer.Option("--url",
                                                help="use this running server instead of a throwaway one")] = None,
        tick: Annotated[float, typer.Option("--tick", help="scheduler tick of the throwaway server, seconds")] = 0.05,
        timeout: Annotated[float, typer.Option("--timeout",
                                               help="give up when jobs are still active after this")] = 1800,
        keep: Annotated[bool, typer.Option("--keep",
                                           help="keep the throwaway server's directory (database, log)")] = False,
        database: Annotated[Database, typer.Option(
            "--database", help="the throwaway server's database: SQLite, or a throwaway PostgreSQL server started "
                               "for the run (production durability)")] = Database.sqlite,
        scheduler_mode: Annotated[LoopMode, typer.Option(
            "--scheduler-mode", help="where the throwaway server runs its scheduler loop: a process of its own "
                                     "(as `allot server` does) or a thread of the API's process")] = LoopMode.process,
    ) -> None:
        """Submit the scenario's jobs at their creation times, wait for all to finish, report wall time,
        utilisation, time to admission per job class (mean, p50, p99) and per quota, and the CPU each part of the
        run used (client, server, scheduler loop, database)."""
        from allotment.bench import report, runner
        from allotment.bench.scenario import ScenarioError, load

        try:
            plan = load(file)
        except ScenarioError as exc:
            raise CliError(str(exc)) from exc
        progress = None if as_json else (lambda msg: err_console.print(f"[dim]{msg}[/dim]"))
        try:
            if url:
                result = _run(runner, report, plan, _client_for(url), f"b{int(time.time())}-", timeout, progress,
                              {})
                result["server"] = url
            else:
                result = _throwaway(runner, report, plan, database, scheduler_mode, tick, keep, timeout, progress)
        except (runner.BenchError, PostgresError) as exc:
            raise CliError(str(exc)) from exc
        if as_json:
            emit_json(result)
        else:
            _print(result)


def _throwaway(runner, report, plan, database: Database, mode: LoopMode, tick: float, keep: bool, timeout: float,
               progress) -> dict:
    from allotment.bench.cpu import DATABASE, SERVER
    from allotment.bench.postgres import ThrowawayPostgres

    with ExitStack() as stack:
        env, name = {"ALLOT_SCHEDULER_MODE": mode.value}, "SQLite (WAL, synchronous=NORMAL)"
        parts: dict[str, int | None] = {}
        if database is Database.postgresql:
            pg = stack.enter_context(ThrowawayPostgres())
            if progress:
                progress(f"throwaway {pg.version} in {pg.dir}")
            _migrate(pg.url)
            env["ALLOT_DATABASE_URL"] = pg.url
            durability = ", ".join(f"{k}={v}" for k, v in pg.settings().items())
            name = f"{pg.version} ({durability})"
            parts[DATABASE] = pg.pid
        server = stack.enter_context(runner.ThrowawayServer(tick_s=tick, keep=keep, extra_env=env))
        parts[SERVER] = server.proc.pid if server.proc is not None else None
        if progress:
            progress(f"throwaway server on {server.url} ({server.dir})")
        api = runner.Api(server.url)
        api.login(runner.ADMIN, runner.ADMIN_PASSWORD)
        result = _run(runner, report, plan, api, "", timeout, progress, parts)
        result["server"] = f"throwaway ({name}, simulated engine, scheduler loop in a {mode.value})"
        result["database"] = database.value
        result["scheduler_mode"] = mode.value
        result["database_server"] = name
        result["scheduler_core"] = compiled_core.STATUS  # the server runs this install, with this environment
        return result


def _migrate(url: str) -> None:
    """The server refuses an unmigrated PostgreSQL schema: `allot db upgrade` first, as an operator would."""
    from allotment.migrate import upgrade

    upgrade(url)


def _client_for(url: str):
    from allotment.bench.runner import Api
    from allotment.cli.client import Client

    saved = Client(url=url)  # the saved login, or ALLOT_TOKEN
    return Api(url, saved.token)


def _run(runner, report, plan, api, prefix: str, timeout: float, progress, parts: dict[str, int | None]) -> dict:
    """`parts`: the throwaway server's processes whose CPU the report gives (bench/cpu.py), this client's always;
    from the first submission until every job was seen finished."""
    from allotment.bench.cpu import CLIENT, CpuWindow

    done = runner.setup(api, plan, prefix)
    if progress:
        progress(f"cluster {done.cluster}: {len(plan.quotas)} quotas, capacity {plan.capacity:g} {plan.resource}; "
                 f"submitting {len(plan.jobs)} jobs")
    cpu = CpuWindow({CLIENT: os.getpid(), **{name: pid for name, pid in parts.items() if pid is not None}})
    cpu.start()
    started_at, ids = runner.submit(api, plan, done, progress)
    runner.wait_finished(api, len(ids), timeout, progress)
    cpu.stop()
    jobs = runner.fetch_jobs(api, ids)
    result = report.compute(plan, jobs, started_at, plan.resource, plan.capacity, done.quota_names)
    result["cpu"] = cpu.report()
    return result


def _print(result: dict) -> None:
    console.print(f"[bold]{result['scenario']}[/bold]: {result['jobs']} jobs, {result['finished']} finished")
    console.print(f"server         {result['server']}")
    console.print(f"wall time      {result['wall_ms'] / 1000:.1f} s  (lower bound {result['lower_bound_ms'] / 1000:.1f} s)")
    console.print(f"utilisation    {result['utilisation'] * 100:.1f} % of {result['capacity']:g} {result['resource']}")
    console.print(f"preemptions    {result['preemptions']}")
    lag = result["submission_lag_ms"]
    console.print(f"submission lag mean {lag['mean']:.0f} ms, max {lag['max']:.0f} ms")
    cpu = result.get("cpu")
    if cpu:
        spent = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in cpu["seconds"].items())
        console.print(f"CPU            {spent} in {cpu['window_s']:.1f} s ({cpu['share'] * 100:.0f} % of "
                      f"{cpu['cores']} cores)")
    rows = [{"class": name, **stats} for name, stats in result["classes"].items()]
    table(rows, ["class", "count", "mean_admission_ms", "p50_admission_ms", "p99_admission_ms"],
          title="Time to admission per job class")
    rows = [{"quota": name, **q} for name, q in result["quotas"].items()]
    table(rows, ["quota", "jobs", "mean_admission_ms", "p99_admission_ms", "resource_seconds", "preemptions"],
          title="Per quota")
