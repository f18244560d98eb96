"""`allot quotas list|show|create|set|scale|bind|delete|config ...`; also registers `allot pools`, `allot profiles`
and `allot policies` (cli/pools.py, cli/profiles.py, cli/policies.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from allotment.cli.client import ApiError, Client, CliError
from allotment.cli.output import console, emit_json, show

RESOURCE_OPTIONS = ("gpu", "cpu", "memory")
POOLS_HELP = ("the only pools its jobs (and its sub-quotas' jobs) may use, comma-separated (DKube: a group's pool); "
              "'all' = every pool")


def _flat(quota: dict) -> dict:
    resources = "; ".join(
        f"{r['resource']}@{r['pool']}: {r['guarantee']}" + (f"..{r['limit']}" if r["limit"] != r["guarantee"] else "")
        + f" (in use {r['in_use']})" for r in quota["resources"])
    return {"name": quota["name"], "cluster": quota["cluster"], "parent": quota.get("parent") or "",
            "children": ", ".join(quota.get("children") or []), "resources": resources or "-",
            "weight": quota["weight"], "child_preemption": quota["child_preemption"], "reclaim": quota["reclaim"],
            "within_quota_preemption": quota["within_quota_preemption"], "min_runtime_s": quota["min_runtime_s"],
            "priority_classes": ", ".join(quota["allowed_priority_classes"] or ["all"]),
            "pools": ", ".join(quota.get("pools") or ["all"]),
            "bindings": ", ".join(f"{b['kind']}:{b['name']}" for b in quota.get("bindings") or [])}


def _resources(pool: str | None, amounts: dict[str, tuple[str | None, str | None]]) -> list[dict]:
    """Resource entries from --gpu/--gpu-limit style options (only those given)."""
    out = []
    for resource, (guarantee, limit) in amounts.items():
        if guarantee is None and limit is None:
            continue
        out.append({"resource": resource, "pool": pool, "guarantee": guarantee or 0, "limit": limit})
    return out


def _changes(pool: str | None, amounts: dict[str, tuple[str | None, str | None]]) -> list[dict]:
    """Partial entry changes from --gpu/--gpu-limit style options: only what was given is sent, so the server keeps
    the rest of the entry (without --pool: the quota's only entry for that resource)."""
    out = []
    for resource, (guarantee, limit) in amounts.items():
        change = {k: v for k, v in (("guarantee", guarantee), ("limit", limit)) if v is not None}
        if change:
            out.append({"resource": resource, **({"pool": pool} if pool else {}), **change})
    return out


def _pool_hint(exc: ApiError) -> CliError:
    """The API names the field `pool`; on the command line it is --pool."""
    errors = exc.body.get("errors") if isinstance(exc.body, dict) else None
    if exc.status == 422 and errors and any(str(e.get("field", "")).endswith(".pool") for e in errors):
        return CliError(f"{exc} (use --pool POOL, '*' for the all-pools entry)")
    return exc


def register(app: typer.Typer) -> None:
    from allotment.cli import policies, pools, profiles, usage

    quotas = typer.Typer(no_args_is_help=True, help="Quota trees: guarantees, limits, preemption, bindings.")
    app.add_typer(quotas, name="quotas")
    pools.register(app)
    profiles.register(app)
    policies.register(app)
    usage.register_quotas(quotas)

    @quotas.command("list")
    def list_quotas(cluster: str = typer.Option(None, "--cluster"), json_: bool = typer.Option(False, "--json"),
                    mine: bool = typer.Option(False, "--mine", help="only quotas I may submit to")) -> None:
        """Quotas with their guarantees, limits and current use."""
        params = {"cluster": cluster} if cluster else {}
        if mine:
            params["submittable"] = "true"
        body = Client().get("quotas", params=params)
        if json_:
            emit_json(body)
            return
        show([_flat(q) for q in body["items"]], False, ["name", "parent", "resources", "weight", "reclaim"],
             title=f"{body['total']} quota(s)")

    @quotas.command("show")
    def show_quota(name: str, json_: bool = typer.Option(False, "--json")) -> None:
        client = Client()
        quota = client.get(f"quotas/{name}")
        show(quota if json_ else _flat(quota), json_)
        if not json_:
            from allotment.cli.usage import budget_lines

            for line in budget_lines(client, name):
                console.print(f"[bold]budget[/bold]  {line}", highlight=False)

    def quota_options(body: dict, parent, weight, child_preemption, reclaim, within, min_runtime, classes,
                      pools=None) -> dict:
        if pools is not None:  # "" or "all": every pool again
            names = [p.strip() for p in pools.split(",") if p.strip()]
            body["pools"] = [] if names == ["all"] else names
        for key, value in (("parent", parent), ("weight", weight), ("child_preemption", child_preemption),
                           ("reclaim", reclaim), ("within_quota_preemption", within), ("min_runtime_s", min_runtime)):
            if value is not None:
                body[key] = value
        if classes is not None:
            body["allowed_priority_classes"] = [c.strip() for c in classes.split(",") if c.strip()]
        return body

    @quotas.command("create")
    def create(
        name: str,
        cluster: str = typer.Option("local", "--cluster"),
        parent: str = typer.Option(None, "--parent"),
        pool: str = typer.Option(None, "--pool", help="pool the amounts apply to (default: all pools)"),
        gpu: str = typer.Option(None, "--gpu", help="guaranteed GPUs"),
        gpu_limit: str = typer.Option(None, "--gpu-limit", help="GPU limit (default unlimited)"),
        cpu: str = typer.Option(None, "--cpu"),
        cpu_limit: str = typer.Option(None, "--cpu-limit"),
        memory: str = typer.Option(None, "--memory"),
        memory_limit: str = typer.Option(None, "--memory-limit"),
        weight: float = typer.Option(None, "--weight"),
        child_preemption: bool = typer.Option(None, "--child-preemption/--no-child-preemption"),
        reclaim: str = typer.Option(None, "--reclaim", help="never, lower_priority or any"),
        within: str = typer.Option(None, "--within-quota-preemption", help="never or lower_priority"),
        min_runtime: int = typer.Option(None, "--min-runtime", help="seconds before a job may be preempted"),
        classes: str = typer.Option(None, "--priority-classes", help="allowed classes, comma-separated"),
        pools: str = typer.Option(None, "--pools", help=POOLS_HELP),
        json_: bool = typer.Option(False, "--json"),
    ) -> None:
        """Create a quota, e.g. allot quotas create Quota1.1 --parent Quota1 --pool a100 --gpu 48 --gpu-limit 48."""
        body = quota_options({"name": name}, parent, weight, child_preemption, reclaim, within, min_runtime, classes,
                             pools)
        body["resources"] = _resources(pool, {"gpu": (gpu, gpu_limit), "cpu": (cpu, cpu_limit),
                                              "memory": (memory, memory_limit)})
        quota = Client().post(f"clusters/{cluster}/quotas", json=body)
        show(quota if json_ else _flat(quota), json_)

    @quotas.command("set")
    def set_quota(
        name: str,
        pool: str = typer.Option(None, "--pool"),
        gpu: str = typer.Option(None, "--gpu"),
        gpu_limit: str = typer.Option(None, "--gpu-limit"),
        cpu: str = typer.Option(None, "--cpu"),
        cpu_limit: str = typer.Option(None, "--cpu-limit"),
        memory: str = typer.Option(None, "--memory"),
        memory_limit: str = typer.Option(None, "--memory-limit"),
        parent: str = typer.Option(None, "--parent"),
        weight: float = typer.Option(None, "--weight"),
        child_preemption: bool = typer.Option(None, "--child-preemption/--no-child-preemption"),
        reclaim: str = typer.Option(None, "--reclaim"),
        within: str = typer.Option(None, "--within-quota-preemption"),
        min_runtime: int = typer.Option(None, "--min-runtime"),
        classes: str = typer.Option(None, "--priority-classes"),
        pools: str = typer.Option(None, "--pools", help=POOLS_HELP),
        json_: bool = typer.Option(False, "--json"),
    ) -> None:
        """Change only what is given: --gpu-limit 14 keeps the guarantee, --gpu 6 keeps the limit ('unlimited'
        lifts it). Without --pool the amounts apply to the quota's only entry for that resource."""
        body = quota_options({}, parent, weight, child_preemption, reclaim, within, min_runtime, classes, pools)
        changes = _changes(pool, {"gpu": (gpu, gpu_limit), "cpu": (cpu, cpu_limit), "memory": (memory, memory_limit)})
        if changes:
            body["resources"] = changes
        if not body:
            raise typer.BadParameter("nothing to change")
        try:
            quota = Client().patch(f"quotas/{name}", json=body)
        except ApiError as exc:
            raise _pool_hint(exc) from exc
        show(quota if json_ else _flat(quota), json_)

    @quotas.command("scale")
    def scale(
        sizes: Annotated[list[str], typer.Argument(help="QUOTA=AMOUNT pairs, e.g. Quota1.1=56 Quota1.2=72")],
        cluster: str = typer.Option("local", "--cluster"),
        pool: str = typer.Option(None, "--pool", help="default: each quota's only entry for the resource"),
        resource: str = typer.Option("gpu", "--resource"),
        json_: bool = typer.Option(False, "--json"),
    ) -> None:
        """Resize several quotas at once, validated as a whole (PAI scale). Without --pool each quota's only entry
        for the resource is scaled; a quota with several (or none) is refused, naming its pools."""
        changes = []
        for item in sizes:
            quota, sep, amount = item.partition("=")
            if not sep or not quota or not amount:
                raise typer.BadParameter(f"{item!r}: use QUOTA=AMOUNT")
            changes.append({"quota": quota, "guarantee": amount, "resource": resource, **({"pool": pool} if pool
                                                                                           else {})})
        try:
            body = Client().post(f"clusters/{cluster}/quotas/scale", json={"changes": changes})
        except ApiError as exc:
            raise _pool_hint(exc) from exc
        if json_:
            emit_json(body)
        else:
            show([_flat(q) for q in body["items"]], False, ["name", "resources"], title="scaled")

    @quotas.command("bind")
    def bind(
        name: str,
        user: str = typer.Option(None, "--user"),
        group: str = typer.Option(None, "--group"),
        workspace: str = typer.Option(None, "--workspace", help="a workspace of the quota's cluster: its members"),
        remove: bool = typer.Option(False, "--remove", help="remove the binding instead"),
    ) -> None:
        """Let a user, a group or a workspace's members submit to a quota (or stop them with --remove)."""
        given = [(k, v) for k, v in (("users", user), ("groups", group), ("workspaces", workspace)) if v is not None]
        if len(given) != 1:
            raise typer.BadParameter("give exactly one of --user, --group or --workspace")
        kind, ref = given[0]
        client = Client()
        if remove:
            client.delete(f"quotas/{name}/bindings/{kind}/{ref}")
            console.print(f"{kind[:-1]} {ref} unbound from quota {name}")
        else:
            client.put(f"quotas/{name}/bindings/{kind}/{ref}")
            console.print(f"{kind[:-1]} {ref} may submit to quota {name}")

    @quotas.command("delete")
    def delete(name: str) -> None:
        Client().delete(f"quotas/{name}")
        console.print(f"quota {name} deleted")

    config = typer.Typer(no_args_is_help=True, help="Draft and provisioned resource configuration (ClearML).")
    quotas.add_typer(config, name="config")

    @config.command("show")
    def config_show(cluster: str = typer.Option("local", "--cluster")) -> None:
        """Provisioned configuration, draft and switch (JSON)."""
        emit_json(Client().get(f"clusters/{cluster}/resource-config"))

    @config.command("draft")
    def config_draft(cluster: str = typer.Option("local", "--cluster"),
                     file: Annotated[Path | None, typer.Option("--file", help="save this JSON document as the draft")] = None) -> None:
        """Print the draft (or the provisioned configuration to start from), or save one with --file."""
        client = Client()
        if file is None:
            emit_json(client.get(f"clusters/{cluster}/resource-config/draft"))
            return
        try:
            document = json.loads(file.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise CliError(f"cannot read {file}: {exc}") from exc
        client.put(f"clusters/{cluster}/resource-config/draft", json=document)
        console.print("draft saved; run `allot quotas config provision` to apply it")

    @config.command("provision")
    def config_provision(cluster: str = typer.Option("local", "--cluster")) -> None:
        """Validate the draft as a whole and apply it. A draft saved before the live configuration last changed is
        refused (it would undo that change): reset it, or re-save it to apply it as it is."""
        try:
            body = Client().post(f"clusters/{cluster}/resource-config/provision")
        except ApiError as exc:
            if isinstance(exc.body, dict) and exc.body.get("code") == "draft_stale":
                raise CliError(f"{exc} (with the CLI: `allot quotas config reset --cluster {cluster}`, or "
                               f"`allot quotas config draft --cluster {cluster} --file FILE` to re-save)") from exc
            raise
        console.print(f"provisioned (configuration version {body['version']})")

    @config.command("reset")
    def config_reset(cluster: str = typer.Option("local", "--cluster")) -> None:
        """Drop the draft."""
        Client().post(f"clusters/{cluster}/resource-config/reset")
        console.print("draft dropped")

    @config.command("enable")
    def config_enable(cluster: str = typer.Option("local", "--cluster")) -> None:
        Client().put(f"clusters/{cluster}/resource-config/enabled", json={"enabled": True})
        console.print("resource management enabled")

    @config.command("disable")
    def config_disable(cluster: str = typer.Option("local", "--cluster")) -> None:
        """Stop admitting: queued jobs stay queued, running ones keep running."""
        Client().put(f"clusters/{cluster}/resource-config/enabled", json={"enabled": False})
        console.print("resource management disabled")
