"""`allot usage`, `allot config show-quota`, `allot admin set-user-quota|add-user-quota|recalculate-usage` and the
quota-tree budgets (`allot quotas set-budget|delete-budget`, shown by `allot quotas show`)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Annotated

import typer

from allotment.cli.client import Client, CliError, load_config, segment
from allotment.cli.groups import CONFIG_HELP, shared_group
from allotment.cli.output import console, emit_json, table

DIMENSIONS = "user, group, workspace, quota, pool, model, cluster, day or month"
ROW_COLUMNS = ["key", "gpu_hours", "cpu_hours", "memory_gib_hours", "intervals", "running"]


def _print_lines(lines: list[str]) -> None:
    for line in lines:
        console.print(line, highlight=False, markup=False)


def _write_csv(path: Path, rows: list[dict], columns: list[str]) -> None:
    try:
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(columns)
            for row in rows:
                writer.writerow([row.get(c, "") for c in columns])
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc.strerror or exc}") from None


def _download(client: Client, path: str, params: dict, target: Path) -> int:
    """Stream a CSV export to a file; the number of data lines written."""
    lines = 0
    try:
        with client.stream("GET", path, params=params) as response, target.open("wb") as f:
            for chunk in response.iter_bytes():
                lines += chunk.count(b"\n")
                f.write(chunk)
    except OSError as exc:
        raise CliError(f"cannot write {target}: {exc.strerror or exc}") from None
    return max(lines - 1, 0)


def budget_lines(client: Client, quota: str) -> list[str]:
    """`GPU: spent 12h 00m / budget 500h 00m / left 488h 00m (monthly)` for each budget of the quota."""
    return [b["text"] for b in client.get(f"quotas/{segment(quota)}/budgets")["items"]]


def _cluster(client: Client, cluster: str | None) -> str:
    if cluster:
        return cluster
    clusters = client.get("clusters")
    items = clusters.get("items", clusters) if isinstance(clusters, dict) else clusters
    if len(items) == 1:
        return items[0]["name"]
    raise CliError("name the cluster with --cluster (you can see more than one)")


def register(app: typer.Typer) -> None:
    @app.command("usage")
    def usage(
        by: Annotated[str, typer.Option("--by", help=DIMENSIONS)] = "user",
        start: Annotated[str | None, typer.Option("--from", help="ISO 8601 date or time (UTC); default: this month's "
                                                          "start")] = None,
        end: Annotated[str | None, typer.Option("--to", help="ISO 8601, exclusive; default: now")] = None,
        cluster: Annotated[str | None, typer.Option("--cluster", help="only this cluster")] = None,
        user: Annotated[str | None, typer.Option("--user", help="only this user's jobs")] = None,
        top: Annotated[int | None, typer.Option("--top", min=1, help="only the largest consumers")] = None,
        live: Annotated[bool, typer.Option("--live", help="jobs holding resources now")] = False,
        pools: Annotated[bool, typer.Option("--pools", help="each pool's allocated GPU-hours against its capacity, "
                                                            "per day")] = False,
        csv_file: Annotated[Path | None, typer.Option("--csv", help="write the rows to this CSV file", dir_okay=False)] = None,
        export: Annotated[Path | None, typer.Option("--export", help="stream every usage interval of the window to this "
                                                              "CSV file", dir_okay=False)] = None,
        json_: Annotated[bool, typer.Option("--json")] = False,
    ) -> None:
        """GPU-, CPU- and memory-hours by user, group, workspace, quota (with its ancestors), pool, device model,
        cluster, day or month; running jobs count up to now. E.g. allot usage --by user --from 2026-11-01
        --to 2026-12-01 --csv nov.csv"""
        client = Client()
        params = {k: v for k, v in (("from", start), ("to", end), ("cluster", cluster), ("user", user)) if v}
        if live:
            body = client.get("usage/live", params={k: v for k, v in params.items() if k in ("cluster", "user")})
            if json_:
                emit_json(body)
                return
            table(body["items"], ["job_id", "user", "cluster", "quota", "pool", "device_model", "gpu", "cpu",
                                  "since", "gpu_hours", "cpu_hours"], title=f"{body['total']} running job(s)",
                  empty="no job holds resources now")
            return
        if pools:
            body = client.get("usage/pools", params={k: v for k, v in params.items() if k != "user"})
            if json_:
                emit_json(body)
                return
            table(body["items"], ["pool", "day", "allocated_gpu_hours", "capacity_gpu_hours", "allocated_share"],
                  title="allocated against capacity", empty="no pool in this window")
            return
        if export is not None:
            count = _download(client, "exports/usage.csv", {**params, "filename": export.name[:255]}, export)
            console.print(f"wrote {count} usage interval(s) to {export}", highlight=False)
            return
        body = client.get("usage", params={**params, "by": by, **({"top": top} if top else {})})
        if csv_file is not None:
            _write_csv(csv_file, body["items"], ROW_COLUMNS)
            console.print(f"wrote {body['total']} row(s) to {csv_file}", highlight=False)
            return
        if json_:
            emit_json(body)
            return
        table(body["items"], [("key", by.upper()), *ROW_COLUMNS[1:]],
              title=f"usage by {by}, {body['from']} to {body['to']}", empty="no usage in this window")

    config = shared_group(app, "config", CONFIG_HELP)

    @config.command("show-quota")
    def show_quota(
        user: Annotated[str | None, typer.Argument(help="default: you; managers and admins may name any user of the "
                                                 "cluster")] = None,
        cluster: Annotated[str | None, typer.Option("--cluster", help="default: your only cluster")] = None,
        json_: Annotated[bool, typer.Option("--json")] = False,
    ) -> None:
        """What the user spent on the cluster against their GPU- and CPU-hour quota (Neu.ro's show-quota)."""
        client = Client()
        who = user or load_config().get("username") or client.get("auth/whoami")["username"]
        body = client.get(f"clusters/{segment(_cluster(client, cluster))}/user-quotas/{segment(who)}")
        if json_:
            emit_json(body)
        else:
            _print_lines(body["lines"])


def register_admin(admin: typer.Typer) -> None:
    @admin.command("set-user-quota")
    def set_user_quota(
        cluster: str, user: str,
        gpu: Annotated[str | None, typer.Option("-g", "--gpu", help="GPU hours: 50h, 3.5h, 30m; omitted = unlimited")] = None,
        cpu: Annotated[str | None, typer.Option("-c", "--cpu", help="CPU hours; omitted = unlimited")] = None,
    ) -> None:
        """Set a user's GPU- and CPU-hour quota on a cluster, e.g. allot admin set-user-quota -g 50h default john."""
        body = Client().put(f"clusters/{segment(cluster)}/user-quotas/{segment(user)}", json={"gpu": gpu, "cpu": cpu})
        _print_lines(body["lines"])

    @admin.command("add-user-quota")
    def add_user_quota(
        cluster: str, user: str,
        gpu: Annotated[str | None, typer.Option("-g", "--gpu", help="GPU hours to add: 50h, 30m")] = None,
        cpu: Annotated[str | None, typer.Option("-c", "--cpu", help="CPU hours to add")] = None,
    ) -> None:
        """Add hours to a user's quota, e.g. allot admin add-user-quota -g 50h default john."""
        if gpu is None and cpu is None:
            raise typer.BadParameter("give -g or -c with the hours to add")
        body = Client().post(f"clusters/{segment(cluster)}/user-quotas/{segment(user)}/add",
                             json={"gpu": gpu, "cpu": cpu})
        _print_lines(body["lines"])

    @admin.command("set-default-user-quota")
    def set_default_user_quota(
        cluster: str,
        gpu: Annotated[str | None, typer.Option("-g", "--gpu", help="GPU hours; omitted = unlimited")] = None,
        cpu: Annotated[str | None, typer.Option("-c", "--cpu", help="CPU hours; omitted = unlimited")] = None,
    ) -> None:
        """The quota of the cluster's users who have none of their own (built in: 100 GPU hours, unlimited CPU)."""
        body = Client().put(f"clusters/{segment(cluster)}/user-quota-default", json={"gpu": gpu, "cpu": cpu})
        _print_lines(body["lines"])

    @admin.command("recalculate-usage")
    def recalculate_usage(cluster: Annotated[str | None, typer.Argument(help="default: every cluster")] = None,
                          json_: Annotated[bool, typer.Option("--json")] = False) -> None:
        """Bring usage records in line with the jobs' recorded intervals and the engines' own records; list every
        correction (an engine's with the job interval before and after). Audited."""
        client = Client()
        body = client.post(f"clusters/{segment(cluster)}/usage/recalculate" if cluster else "usage/recalculate")
        if json_:
            emit_json(body)
            return
        _print_lines(body["corrections"])
        _print_lines([c["text"] for c in body.get("engine_corrections") or []])
        console.print(f"{body['total']} correction(s)", highlight=False)
        _print_lines(body.get("engines") or [])


def register_quotas(quotas: typer.Typer) -> None:
    @quotas.command("set-budget")
    def set_budget(
        quota: str,
        resource: Annotated[str, typer.Argument(help="gpu or cpu")],
        amount: Annotated[str, typer.Argument(help="hours or minutes: 500h, 3.5h, 90m")],
        period: Annotated[str, typer.Option("--period", help="monthly, weekly or once (a grant that never "
                                                             "replenishes)")] = "monthly",
    ) -> None:
        """A GPU- or CPU-hour budget on a quota; its whole subtree's usage counts against it."""
        body = Client().put(f"quotas/{segment(quota)}/budgets/{segment(resource)}",
                            json={"period": period, "amount": amount})
        console.print(f"{body['quota']}: {body['text']}", highlight=False, markup=False)

    @quotas.command("delete-budget")
    def delete_budget(quota: str, resource: Annotated[str, typer.Argument(help="gpu or cpu")]) -> None:
        Client().delete(f"quotas/{segment(quota)}/budgets/{segment(resource)}")
        console.print(f"{quota}: {resource} budget removed", highlight=False)
