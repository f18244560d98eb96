"""Where the real path spends its time, in CPU seconds and SQL statements: ingestion and the scheduler loop.

`allot bench scenario` measures wall time, which on a shared machine swings with the other work on it. This script
runs the same path in one process and counts what does not swing: CPU time (time.process_time) and the statements
each phase sends, with their time, from SQLAlchemy's cursor events. It plays the scenario in virtual time: every
`--tick` seconds of scenario time it submits the jobs due (POST /jobs/batch through the real app, in-process, with
the HTTP stack, validation and the INSERT) and runs one scheduler cycle at that time (Scheduler.run_cycle with the
simulated engine: scans, decisions, the cycle's writes and metering), until every job has finished. Nothing sleeps, so
the figures are the path's cost with no waiting.

    python benchmarks/path_profile.py benchmarks/scenarios/kueue-large-scale.yaml --database sqlite
    python benchmarks/path_profile.py benchmarks/scenarios/kueue-large-scale.yaml --database postgresql
    python benchmarks/path_profile.py FILE --profile out.prof   # cProfile of both phases as well (slower), and of
                                                                # the app's threads in out.server.prof
    python benchmarks/path_profile.py FILE --jobs 10000          # the first 10,000 jobs only, every quota kept
    python benchmarks/path_profile.py FILE --split               # the loop's steps' CPU time, the core's apart
    python benchmarks/path_profile.py FILE --lock-probe work --switch-interval 0.001
                                    # the cycle's writes: wall, loop thread CPU, and what another thread got done

It prints one JSON object: per phase (ingest, loop) the CPU seconds, the CPU microseconds per job, the cyclic
collector's runs and their CPU seconds (counted in the phase they ran in), the statements grouped by kind and table
(how many, the rows they carried, their time as the driver took it), and with --profile the functions with the most
cumulative time.
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import gc
import importlib
import json
import os
import pstats
import re
import sys
import tempfile
import threading
import time
from collections import defaultdict
from contextlib import ExitStack
from pathlib import Path

from sqlalchemy import event, func, select

from allotment.api.app import create_app
from allotment.bench import runner
from allotment.bench.postgres import ThrowawayPostgres
from allotment.bench.scenario import load
from allotment.settings import Settings

PHASES = ("ingest", "loop")
# Ingestion runs in the app's worker thread, where cProfile does not look: these functions are timed (CPU time of the
# process, which is all the app's while the harness waits for its answer), each as module:function.
TIMED = ("allotment.workloads.routes:_request",
         "allotment.workloads.service:_validated", "allotment.workloads.service:submit_batch",
         "allotment.workloads.service:insert_rows", "allotment.workloads.references:hold", "allotment.workloads.lookups:Lookups.prefetch_quotas",
         "allotment.workloads.lookups:Lookups.refusal",
         "allotment.vaults.job_supplies:config_text", "allotment.audit.service:record",
         "allotment.accounting.budgets:refuse_if_spent")
# With --split, the loop's steps are timed the same way (module:Class.method; core's in the loop's thread too): CPU
# seconds of each, which tell the loop's own work (reads, gates, writes, metering) from the core's decisions.
LOOP_TIMED = ("allotment.scheduler.loop:Scheduler._clusters", "allotment.scheduler.scan:Scan._scan",
              "allotment.scheduler.reads:new_jobs", "allotment.scheduler.load:usernames",
              "allotment.scheduler.gates:Gates.refresh", "allotment.scheduler.runtime:ClusterRuntime.add_new",
              "allotment.scheduler.runtime:ClusterRuntime._gate_holds",
              "allotment.core.admission:SchedulerState.add_job", "allotment.scheduler.loop:Scheduler._events",
              "allotment.core.admission:SchedulerState.job_finished",
              "allotment.scheduler.runtime:ClusterRuntime.decide", "allotment.core.admission:SchedulerState.cycle",
              "allotment.scheduler.runtime:ClusterRuntime._admitted", "allotment.scheduler.persist:Writes.apply",
              "allotment.scheduler.metering:write_intervals", "allotment.scheduler.metering:Meter.admitted",
              "allotment.scheduler.metering:Meter.record_all", "allotment.scheduler.loop:Scheduler._dispatch")
WATCH = ("workloads/routes.py:.*\\(submit_batch\\)", "workloads/service.py:.*\\(_validated\\)",
         "workloads/service.py:.*\\(submit_batch\\)", "audit/service.py:.*\\(record\\)",
         "scheduler/scan.py:.*\\(_scan\\)", "scheduler/loop.py:.*\\(_events\\)",
         "scheduler/runtime.py:.*\\(decide\\)", "scheduler/persist.py:.*\\(apply\\)",
         "scheduler/metering.py:.*\\(write_intervals\\)", "scheduler/loop.py:.*\\(_dispatch\\)",
         "scheduler/metering.py:.*\\(admitted\\)", "core/admission.py:.*\\(cycle\\)")


class Statements:
    """Count and time every statement by phase, kind and table (executemany counts its rows too)."""

    def __init__(self, engine) -> None:
        self.phase = "setup"
        self.stats: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0, 0.0, 0])
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)
        event.listen(engine, "commit", self._commit)

    def _before(self, conn, cursor, statement, parameters, context, executemany) -> None:
        conn.info["bench_t"] = time.perf_counter()

    def _after(self, conn, cursor, statement, parameters, context, executemany) -> None:
        took = time.perf_counter() - conn.info.pop("bench_t", time.perf_counter())
        words = statement.split()
        kind = words[0].upper() if words else "?"
        table = re.search(r"\b(?:INTO|UPDATE|FROM)\s+(\w+)", statement, re.IGNORECASE)
        entry = self.stats[(self.phase, f"{kind} {table.group(1) if table else ''}".strip())]
        entry[0] += 1
        entry[1] += took
        entry[2] += len(parameters) if executemany else 1

    def _commit(self, conn) -> None:
        self.stats[(self.phase, "COMMIT")][0] += 1

    def report(self, phase: str) -> dict:
        rows = sorted(((k[1], v) for k, v in self.stats.items() if k[0] == phase), key=lambda kv: -kv[1][1])
        return {name: f"{int(v[0])} statements, {int(v[2])} rows, {v[1]:.3f} s" for name, v in rows}


class Timers:
    """CPU seconds spent inside each TIMED function (outermost calls only)."""

    def __init__(self, targets: tuple[str, ...] = TIMED) -> None:
        self.targets = targets
        self.cpu: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._depth: dict[str, int] = defaultdict(int)
        for target in targets:
            module_name, name = target.split(":")
            try:
                owner = importlib.import_module(module_name)
            except ImportError:  # an older tree, compared in the same run
                continue
            *path, name = name.split(".")
            for part in path:  # a method: patched on its class
                owner = getattr(owner, part, None)
            if owner is not None and hasattr(owner, name):
                setattr(owner, name, self._wrap(target, getattr(owner, name)))

    def _wrap(self, target: str, fn):
        @functools.wraps(fn)
        def timed(*args, **kwargs):
            self._depth[target] += 1
            began = time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                self._depth[target] -= 1
                if not self._depth[target]:
                    self.cpu[target] += time.process_time() - began
                    self.calls[target] += 1
        return timed

    def report(self) -> dict[str, str]:
        return {k: f"{self.cpu[k]:.3f} s in {self.calls[k]} calls" for k in self.targets if self.calls[k]}


class ThreadProfiles:
    """cProfile in every thread started from now on: the app's event loop (request bodies, FastAPI) and its worker
    threads (the route functions), where ingestion's server side runs and the main thread's profiler does not look.
    Each thread's clock is its own CPU time counted only while `active`, so the setup's requests weigh nothing."""

    def __init__(self) -> None:
        self.active = False
        self.profiles: list[cProfile.Profile] = []
        self._local = threading.local()
        # Thread._bootstrap_inner runs every thread's run(), subclasses' too (anyio's worker threads have their own).
        original, owner = threading.Thread._bootstrap_inner, self  # type: ignore[attr-defined]

        def bootstrap(thread: threading.Thread) -> None:
            profile = cProfile.Profile(owner._clock)
            owner.profiles.append(profile)
            profile.enable()
            try:
                original(thread)
            finally:
                profile.disable()

        threading.Thread._bootstrap_inner = bootstrap  # type: ignore[attr-defined]

    def _clock(self) -> float:
        local, now = self._local, time.thread_time()
        counted = getattr(local, "counted", 0.0)
        if self.active:
            counted += now - getattr(local, "last", now)
            local.counted = counted
        local.last = now
        return counted

    def stats(self) -> pstats.Stats | None:
        profiles = [p for p in self.profiles if p.getstats()]
        if not profiles:
            return None
        for p in profiles:
            p.create_stats()
        merged = pstats.Stats(profiles[0])
        for p in profiles[1:]:
            merged.add(p)
        return merged


class LockProbe:
    """How much of the cycle's writes (Writes.apply and the commit after it) the database takes with the interpreter
    lock released, and whether another thread could use it: the writes' wall time, the loop thread's CPU in them and,
    with `work`, a thread doing pure Python work (as deciding the next cycle would) only while they run, with what it
    got done in seconds of that work alone. Without a free core, or when each row takes the lock back (SQLite's
    executemany), the writes slow down by about what the other thread gains."""

    def __init__(self, work: bool) -> None:
        from sqlalchemy.orm import Session

        from allotment.scheduler import persist

        self.wall = self.thread_cpu = self.commit_wall = 0.0
        self.units = 0
        self.writes = 0
        self._go, self._count, self._in_cycle = threading.Event(), [0], False
        self.rate = self._calibrate() if work else 0.0
        if work:
            threading.Thread(target=self._spin, name="lock-probe", daemon=True).start()
        apply, commit, probe = persist.Writes.apply, Session.commit, self

        def probed_apply(writes, conn):
            probe._in_cycle = True
            return probe._during(lambda: apply(writes, conn), commit=False)

        def probed_commit(session):
            if not probe._in_cycle:
                return commit(session)
            probe._in_cycle = False
            return probe._during(lambda: commit(session), commit=True)

        persist.Writes.apply = probed_apply
        Session.commit = probed_commit

    def _during(self, fn, commit: bool):
        began, cpu, before = time.perf_counter(), time.thread_time(), self._count[0]
        if self.rate:
            self._go.set()
        try:
            return fn()
        finally:
            self._go.clear()
            if commit:
                self.commit_wall += time.perf_counter() - began
            else:
                self.wall += time.perf_counter() - began
                self.thread_cpu += time.thread_time() - cpu
                self.writes += 1
            self.units += self._count[0] - before

    def _spin(self) -> None:
        n = 0
        while True:
            self._go.wait()
            while self._go.is_set():
                for _ in range(100):
                    n += 1
                self._count[0] = n

    @staticmethod
    def _calibrate() -> float:
        began, n = time.perf_counter(), 0
        while time.perf_counter() - began < 0.5:
            for _ in range(100):
                n += 1
        return n / (time.perf_counter() - began)

    def report(self) -> dict:
        out = {"cycles_writing": self.writes, "writes_wall_s": round(self.wall, 3),
               "writes_loop_thread_cpu_s": round(self.thread_cpu, 3), "commit_wall_s": round(self.commit_wall, 3),
               "switch_interval_s": sys.getswitchinterval()}
        if self.rate:
            out["other_thread_work_s"] = round(self.units / self.rate, 3)
        return out


class Collections:
    """CPU seconds of the cyclic collector's runs by phase and generation: a phase that keeps the collector paused
    leaves its garbage to be walked in the next one, which a comparison of phases must see."""

    def __init__(self, counter: Statements) -> None:
        self.counter = counter
        self.cpu: dict[tuple[str, int], list[float]] = defaultdict(lambda: [0, 0.0])
        self._began = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, step: str, info: dict) -> None:
        if step == "start":
            self._began = time.process_time()
            return
        entry = self.cpu[(self.counter.phase, info["generation"])]
        entry[0] += 1
        entry[1] += time.process_time() - self._began

    def report(self, phase: str) -> dict[str, str]:
        return {f"generation {g}": f"{int(n)} runs, {cpu:.3f} s" for (p, g), (n, cpu) in sorted(self.cpu.items())
                if p == phase}


class DatabaseCpu:
    """CPU seconds of the PostgreSQL server (the postmaster and its processes: backends, WAL writer, checkpointer),
    from /proc: what the database spends runs in other processes, where process_time does not see it. A process that
    exited is counted in the postmaster's children's time, so the sum does not drop when a backend ends."""

    def __init__(self, data_dir: Path) -> None:
        self.postmaster = int((data_dir / "postmaster.pid").read_text().split()[0])
        self.tick = os.sysconf("SC_CLK_TCK")

    def seconds(self) -> float:
        total = 0
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/stat", "rb") as f:
                    fields = f.read().rsplit(b")", 1)[1].split()
            except OSError:  # ended meanwhile
                continue
            pid, ppid = int(entry.name), int(fields[1])
            if pid == self.postmaster:
                total += sum(int(v) for v in fields[11:15])  # its own time and its reaped children's
            elif ppid == self.postmaster:
                total += int(fields[11]) + int(fields[12])
        return total / self.tick


def top_functions(profile: cProfile.Profile | pstats.Stats) -> dict[str, float]:
    stats = profile if isinstance(profile, pstats.Stats) else pstats.Stats(profile)
    out = {}
    for (path, line, name), (_cc, _nc, _tt, cum, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        label = f"{'/'.join(Path(path).parts[-2:])}:{line}({name})"
        if any(re.search(p, label) for p in WATCH):
            out[label] = round(out.get(label, 0.0) + cum, 3)
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def run(path: str, database: str, tick: float, profile_to: str | None, jobs_cut: int | None = None,
        ingest_only: bool = False, split: bool = False, server_gc: bool = False,
        lock_probe: str | None = None) -> dict:
    plan = load(path)
    if jobs_cut:  # the first N jobs in submission order, with every quota of the scenario
        plan.jobs = plan.jobs[:jobs_cut]
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="allot-path-")))
        url = None
        database_cpu = None
        if database == "postgresql":
            server = stack.enter_context(ThrowawayPostgres())
            url = server.url
            database_cpu = DatabaseCpu(server.dir / "data")
            from allotment.migrate import upgrade

            upgrade(url)
        settings = Settings(data_dir=tmp / "var", database_url=url, secret_key="path-profile-secret",
                            bootstrap_admin_username=runner.ADMIN, bootstrap_admin_email="bench@example.com",
                            bootstrap_admin_password=runner.ADMIN_PASSWORD, bootstrap_default_quota=False,
                            scheduler_enabled=False)
        from fastapi.testclient import TestClient

        from allotment.scheduler.loop import Scheduler
        from allotment.workloads.models import Job
        from allotment.workloads.models import active as active_jobs

        timers = Timers()  # before the app is built: FastAPI keeps the route functions it is given
        threads = ThreadProfiles() if profile_to else None  # before the app's threads start
        loop_timers = Timers(LOOP_TIMED) if split else None
        probe = LockProbe(lock_probe == "work") if lock_probe else None
        app = create_app(settings)
        client = stack.enter_context(TestClient(app))
        state = app.state.allot
        api = runner.Api("http://testserver", http=client)
        api.login(runner.ADMIN, runner.ADMIN_PASSWORD)
        done = runner.setup(api, plan, "")
        if server_gc:  # the collector as `allot server` sets it (scheduler/gcpause.py), after the setup
            from allotment.scheduler.gcpause import tune_for_server

            tune_for_server()
        counter = Statements(state.engine)
        scheduler = Scheduler(state)
        cpu = dict.fromkeys(PHASES, 0.0)
        db_cpu = dict.fromkeys(PHASES, 0.0)
        collector = Collections(counter)
        profiles = {p: cProfile.Profile(time.process_time) for p in PHASES} if profile_to else {}
        jobs, i, t, cycles = plan.jobs, 0, 0.0, 0
        start = time.time()
        last = max(j.at_ms for j in jobs) / 1000.0

        client_cpu = 0.0  # the harness's own thread during ingestion: building and encoding the requests

        def phase(name, fn, *args):
            nonlocal client_cpu
            counter.phase = name
            began, began_client = time.process_time(), time.thread_time()
            began_db = database_cpu.seconds() if database_cpu is not None else 0.0
            if profiles:
                profiles[name].enable()
            if threads is not None and name == "ingest":
                threads.active = True
            try:
                return fn(*args)
            finally:
                if threads is not None:
                    threads.active = False
                if profiles:
                    profiles[name].disable()
                cpu[name] += time.process_time() - began
                if database_cpu is not None:
                    db_cpu[name] += database_cpu.seconds() - began_db
                if name == "ingest":
                    client_cpu += time.thread_time() - began_client

        # The client's encoding as `allot bench scenario` does it (older trees: the dictionaries, encoded per call).
        encode = runner.BatchText(plan, done) if hasattr(runner, "BatchText") else (
            lambda plans: {"jobs": runner.batch_body(plan, done, plans)})

        def submit_due(upto_ms: float) -> None:
            nonlocal i
            while i < len(jobs) and jobs[i].at_ms <= upto_ms:
                j = i
                while j < len(jobs) and j - i < runner.MAX_BATCH and jobs[j].at_ms <= upto_ms:
                    j += 1
                api.call("POST", "/jobs/batch", encode(jobs[i:j]))
                i = j

        while True:
            phase("ingest", submit_due, t * 1000.0)
            if ingest_only:
                if i >= len(jobs):
                    break
                t += tick
                continue
            phase("loop", scheduler.run_cycle, start + t)
            cycles += 1
            t += tick
            if i >= len(jobs) and t > last:
                with state.sessions() as session:
                    active = session.scalar(select(func.count()).select_from(Job)
                                            .where(active_jobs()))
                if not active:
                    break
            if t > last + 3600:
                raise SystemExit("jobs still active an hour of scenario time after the last submission")
        result = {"scenario": plan.name, "database": state.engine.dialect.name, "jobs": len(jobs), "cycles": cycles,
                  "scenario_s": round(t, 2), "python": sys.version.split()[0]}
        for name in PHASES:
            result[name] = {"cpu_s": round(cpu[name], 3), "cpu_us_per_job": round(cpu[name] / len(jobs) * 1e6, 1),
                            "gc": collector.report(name),
                            **({"database_cpu_s": round(db_cpu[name], 3),
                                "database_cpu_us_per_job": round(db_cpu[name] / len(jobs) * 1e6, 1)}
                               if database_cpu is not None else {}),
                            "sql": counter.report(name)}
            if profiles and profiles[name].getstats():
                result[name]["functions_cum_s"] = top_functions(profiles[name])
        result["ingest"]["functions_cpu"] = timers.report()
        if probe is not None:
            result["loop"]["lock_probe"] = probe.report()
        if loop_timers is not None:
            result["loop"]["functions_cpu"] = loop_timers.report()
        # What a server spends: the CPU of the app's threads (the client's is another process's in a real run).
        result["ingest"]["client_cpu_s"] = round(client_cpu, 3)
        result["ingest"]["server_cpu_us_per_job"] = round((cpu["ingest"] - client_cpu) / len(jobs) * 1e6, 1)
        if profile_to:
            parts = [p for p in (profiles["ingest"], profiles["loop"]) if p.getstats()]
            if parts:  # the main thread: the client's requests and the loop
                merged = pstats.Stats(parts[0])
                for part in parts[1:]:
                    merged.add(part)
                merged.dump_stats(profile_to)
            if profiles["loop"].getstats():
                pstats.Stats(profiles["loop"]).dump_stats(f"{profile_to}.loop")  # the loop alone
            server = threads.stats() if threads is not None else None
            if server is not None:  # the app's threads while ingesting, CPU time of each thread
                result["ingest"]["server_functions_cum_s"] = top_functions(server)
                server.dump_stats(str(Path(profile_to).with_suffix(".server.prof")))
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenario")
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--tick", type=float, default=0.05, help="scenario seconds between cycles (the server's tick)")
    parser.add_argument("--profile", help="also write a cProfile of both phases to this file (and of the loop "
                                          "alone to FILE.loop)")
    parser.add_argument("--jobs", type=int, help="only the first N jobs in submission order (every quota kept)")
    parser.add_argument("--ingest-only", action="store_true",
                        help="submit every job and run no scheduler cycle (the ingestion phase alone)")
    parser.add_argument("--split", action="store_true",
                        help="also the CPU seconds of the loop's steps (a timer around each: slightly slower)")
    parser.add_argument("--server-gc", action="store_true",
                        help="tune the collector as `allot server` does (gc.freeze after the setup, a higher first "
                             "threshold): without it, collections the server's allocations cause may run in the "
                             "client's thread and be counted as the client's")
    parser.add_argument("--lock-probe", choices=("measure", "work"),
                        help="the cycle's writes and commit: their wall time and the loop thread's CPU in them "
                             "(measure), and with `work` a thread of pure Python work running only while they do, "
                             "with what it got done (the overlap a next cycle could get); set the switch interval "
                             "with --switch-interval")
    parser.add_argument("--switch-interval", type=float,
                        help="sys.setswitchinterval for the run (the loop process uses 0.001)")
    args = parser.parse_args()
    if args.switch_interval:
        sys.setswitchinterval(args.switch_interval)
    print(json.dumps(run(args.scenario, args.database, args.tick, args.profile, args.jobs, args.ingest_only,
                         args.split, args.server_gc, args.lock_probe), indent=1))


if __name__ == "__main__":
    main()
