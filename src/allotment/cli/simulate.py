"""`allot simulate`: replay a job history or a trace against a configuration before provisioning it.

The server hands over the configuration(s) and, with --history, the cluster's jobs of the period
(POST /clusters/{c}/simulation-inputs); the replay itself runs here, through the same scheduler core, so a long trace
never has to be uploaded. A Philly trace with --capacities brings its own configuration (one GPU pool, a quota per
virtual cluster guaranteeing its capacity x --share) and needs no server.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
import yaml
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from allotment.cli.client import Client, CliError, segment
from allotment.cli.output import emit_json, err_console, sized
from allotment.simulation import report
from allotment.simulation.traces import (
    Columns,
    TraceError,
    TraceJob,
    parse_period,
    read_capacities,
    read_csv,
    read_philly,
)

if TYPE_CHECKING:
    from allotment.simulation.config import SimConfig

FORMATS = ("csv", "allot", "philly")
PROGRESS_FROM_JOBS = 20_000  # shorter replays end before a bar would be seen


def _open(path: Path):
    try:
        return path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from None


def _config_ref(value: str, option: str) -> str | dict:
    """current, draft, or a configuration document from a JSON or YAML file."""
    if value in ("current", "draft"):
        return value
    path = Path(value)
    if not path.is_file():
        raise CliError(f"{option} {value!r}: use current, draft or the path of a configuration file (JSON or YAML)")
    with _open(path) as f:
        try:
            doc = yaml.safe_load(f)
        except yaml.YAMLError as exc:
            raise CliError(f"{option} {value}: not JSON or YAML: {exc}") from None
    if not isinstance(doc, dict):
        raise CliError(f"{option} {value}: the file must hold one configuration document (quotas, profiles, ...)")
    return doc


def _read_trace(path: Path, fmt: str, columns: Columns, period: tuple[float, float] | None) -> list[TraceJob]:
    with _open(path) as f:
        try:
            if fmt == "philly":
                return read_philly(f, str(path), period)
            return read_csv(f, columns, str(path), period)
        except TraceError as exc:
            raise CliError(str(exc)) from None


def _jobs_of(rows: list[list[Any]]) -> list[TraceJob]:
    return [TraceJob(*row) for row in rows]


def _progress_replay(cfg: SimConfig, against: SimConfig | None, jobs: list[TraceJob], show: bool) -> dict:
    from allotment.simulation.replay import run_replays  # the scheduler core: loaded by this command only

    if not show:
        return run_replays(cfg, against, jobs)
    columns = (TextColumn("replaying {task.fields[jobs]} jobs"), BarColumn(), TaskProgressColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=err_console, transient=True) as bar:
        task = bar.add_task("replay", total=1.0, jobs=len(jobs))
        return run_replays(cfg, against, jobs, lambda f: bar.update(task, completed=f))


def _print(result: dict, title: str) -> None:
    one = result["config"]
    sized().print(f"{title}: " + report.summary_line(one), highlight=False, markup=False)
    t = Table(title="per quota")
    for header in ("quota", *(label for label, _ in report.QUOTA_COLUMNS), "refused"):
        t.add_column(header)
    for row in report.quota_rows(one):
        t.add_row(*(str(v) for v in row))
    sized().print(t)
    p = Table(title="per pool")
    for header in ("pool", "GPUs", "utilisation"):
        p.add_column(header)
    for row in report.pool_rows(one):
        p.add_row(*(str(v) for v in row))
    sized().print(p)
    budgets = [(name, b) for name, q in one["quotas"].items() for b in q.get("budgets", [])]
    if budgets:
        b_table = Table(title="budgets (jobs held at the gate while spent)")
        for header in ("quota", "resource", "period", "budget h", "spent h", "most in a period h", "periods run out",
                       "jobs held"):
            b_table.add_column(header)
        for name, b in budgets:
            b_table.add_row(name, b["resource"], b["period"], str(b["budget_hours"]), str(b["spent_hours"]),
                            str(b["most_spent_in_a_period_hours"]), str(b["periods_run_out"]), str(b["jobs_held"]))
        sized().print(b_table)
    if result.get("against") is not None:
        sized().print("against: " + report.summary_line(result["against"]), highlight=False, markup=False)
        d = Table(title="side by side (difference = against - config)")
        for header in ("quota", "measure", "config", "against", "difference"):
            d.add_column(header)
        for row in report.side_by_side(one, result["against"]):
            d.add_row(*(str(v) for v in row))
        sized().print(d)


def register(app: typer.Typer) -> None:
    @app.command("simulate")
    def simulate(
        cluster: Annotated[str | None, typer.Option("--cluster", help="the cluster whose configuration and history "
                                                      "to use")] = None,
        config: Annotated[str, typer.Option("--config", help="current, draft or a configuration FILE (JSON/YAML, "
                                                  "the draft's shape)")] = "current",
        against: Annotated[str | None, typer.Option("--against", help="a second configuration to compare with "
                                                    "(current, draft, FILE; isolated with a Philly trace)")] = None,
        trace: Annotated[Path | None, typer.Option("--trace", help="a trace file", dir_okay=False)] = None,
        history: Annotated[str | None, typer.Option("--history", help="the cluster's jobs submitted FROM..TO, "
                                                    "e.g. 2026-10-01..2026-11-30")] = None,
        fmt: Annotated[str, typer.Option("--format", help="trace format: csv (with the column options), allot "
                                         "(allotment's column names) or philly")] = "csv",
        period: Annotated[str | None, typer.Option("--period", help="only trace jobs submitted FROM..TO")] = None,
        capacities: Annotated[Path | None, typer.Option("--capacities", help="Philly: the virtual clusters' "
                                                        "capacity file (vc,node num): the guarantees",
                                                        dir_okay=False)] = None,
        share: Annotated[float, typer.Option("--share", min=0.0, max=1.0, help="Philly: guarantee = capacity x "
                                             "share, and the pool their sum")] = 0.25,
        submit_col: Annotated[str, typer.Option("--submit-column")] = "submit",
        duration_col: Annotated[str, typer.Option("--duration-column", help="runtime in seconds")] = "duration",
        end_col: Annotated[str | None, typer.Option("--end-column", help="end time, if no duration column")] = None,
        gpu_col: Annotated[str, typer.Option("--gpu-column")] = "gpu",
        cpu_col: Annotated[str, typer.Option("--cpu-column")] = "cpu",
        memory_col: Annotated[str, typer.Option("--memory-column")] = "memory",
        quota_col: Annotated[str, typer.Option("--quota-column", help="the quota or team")] = "quota",
        class_col: Annotated[str, typer.Option("--priority-class-column")] = "priority_class",
        pool_col: Annotated[str, typer.Option("--pool-column")] = "pool",
        json_: Annotated[bool, typer.Option("--json", help="one JSON object")] = False,
    ) -> None:
        """Replay a job history or a trace through the scheduler against a configuration (and another one with
        --against) before provisioning it: queueing per quota, JCT, preemptions, time below guarantee, utilisation.
        E.g. allot simulate --cluster gpu --config draft --against current --history 2026-10-01..2026-11-30"""
        from allotment.core.model import SchedulerConfig
        from allotment.simulation.config import from_json, philly

        if (trace is None) == (history is None):
            raise typer.BadParameter("give either --trace FILE or --history FROM..TO")
        if fmt not in FORMATS:
            raise typer.BadParameter(f"--format must be one of {', '.join(FORMATS)}")
        try:
            window = parse_period(period) if period else None
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
        columns = Columns(submit_col, duration_col, end_col,
                          gpu_col, cpu_col, memory_col, quota_col, class_col, pool_col)
        if fmt == "allot":
            columns = Columns()
        jobs: list[TraceJob] | None = _read_trace(trace, fmt, columns, window) if trace is not None else None
        other: SimConfig | None = None
        if capacities is not None:
            if fmt != "philly" or jobs is None:
                raise typer.BadParameter("--capacities goes with --format philly and --trace")
            with _open(capacities) as f:
                try:
                    caps = read_capacities(f, str(capacities))
                except TraceError as exc:
                    raise CliError(str(exc)) from None
            vcs = sorted({j.quota for j in jobs} | set(caps))
            scheduler = SchedulerConfig(starvation_age_s=3600.0, preemption_delay_s=1.0)
            cfg = philly(caps, vcs, share, False, scheduler)
            if against is not None:
                if against != "isolated":
                    raise typer.BadParameter("with --capacities, --against takes only 'isolated'")
                other = philly(caps, vcs, share, True, scheduler)
            title = f"Philly, guarantees = capacity x {share:g}"
        else:
            if cluster is None:
                raise typer.BadParameter("name the cluster with --cluster")
            body: dict[str, Any] = {"config": _config_ref(config, "--config")}
            if against is not None:
                body["against"] = _config_ref(against, "--against")
            if history is not None:
                try:
                    lo, hi = parse_period(history)
                except ValueError as exc:
                    raise typer.BadParameter(str(exc)) from None
                body["history"] = {"from": _iso(lo), "to": _iso(hi)}
            inputs = Client(timeout=300.0).post(f"clusters/{segment(cluster)}/simulation-inputs", json=body)
            cfg = from_json(inputs["config"])
            other = from_json(inputs["against"]) if inputs.get("against") else None
            if jobs is None:
                jobs = _jobs_of(inputs["jobs"] or [])
            title = f"cluster {cluster}, {config}"
        result = _progress_replay(cfg, other, jobs, show=not json_ and len(jobs) >= PROGRESS_FROM_JOBS)
        if json_:
            emit_json(result)
            return
        _print(result, title)


def _iso(epoch: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, UTC).isoformat()

