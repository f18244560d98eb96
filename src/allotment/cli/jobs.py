"""`allot jobs submit|list|show|cancel|logs`."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from allotment.cli.client import ApiError, Client, CliError
from allotment.cli.output import console, emit_json, err_console, show

COLUMNS = [("id", "ID"), ("name", "NAME"), ("owner", "OWNER"), ("quota", "QUOTA"), ("gpu", "GPU"),
           ("priority_class", "CLASS"), ("state", "STATE"), ("reason", "REASON")]


def _describe(job: dict) -> dict:
    """Flat view of one job for people."""
    placement = job.get("placement") or {}
    devices = ", ".join(f"{d.get('node')}:{d.get('index')}" + (f" ({d['milli'] / 1000:g})" if d.get("milli", 1000)
                                                               != 1000 else "")
                        for d in placement.get("devices") or [])
    return {
        "id": job["id"], "name": job.get("name") or "", "owner": job["owner"], "quota": job["quota"],
        "state": job["state"], "reason": f"{job.get('reason_code') or ''}: {job.get('reason') or ''}".strip(": "),
        "resources": f"gpu {job['gpu']}, cpu {job['cpu']}, memory {job['memory']}" + (
            f" on {job['nodes']} nodes ({job['gpus_per_node']} gpu each)" if job.get("nodes", 1) > 1 else ""),
        "gpu_models": ", ".join(job.get("gpu_models") or []),
        "profile": job.get("profile") or "", "pool": job.get("pool") or "",
        "priority": f"{job['priority_class']} ({job['priority']})",
        "command": " ".join(job["command"]), "time_limit_s": job.get("time_limit_s") or "",
        "submitted_at": job["submitted_at"], "started_at": job.get("started_at") or "",
        "finished_at": job.get("finished_at") or "", "placement": (placement.get("pool") or "") +
        (f" [{devices}]" if devices else "") + (f" nodes {', '.join(placement['nodes'])}"
                                                  if placement.get("nodes") else ""), "exit_code": "" if job.get("exit_code") is None else job["exit_code"],
    }


def _env_option(pairs: list[str]) -> dict[str, str]:
    """--env NAME=VALUE (repeatable; the value may hold '='; the last of a name wins). Values are never echoed:
    they may be secrets."""
    env = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:  # not quoted back: it may be a secret given in the wrong place
            raise typer.BadParameter("--env takes NAME=VALUE (one was without '=' or without a name)")
        env[name] = value
    return env


def register(app: typer.Typer) -> None:
    jobs = typer.Typer(no_args_is_help=True, help="Submit, list, show and cancel jobs, and read their output.")
    app.add_typer(jobs, name="jobs")

    @jobs.command("submit")
    def submit(
        command: Annotated[list[str], typer.Argument(help="the command, after --")],
        quota: str = typer.Option(None, "--quota", "-q", help="quota to submit to; omitted: the only quota you may "
                                                            "submit to, or else the quota named 'default'"),
        gpu: str = typer.Option(None, "--gpu", help="GPUs: 4, or a share of one in steps of 0.01 (0.47)"),
        nodes: int = typer.Option(None, "--nodes", help="spread the job over this many nodes, placed all at once "
                                                        "(with --gpus-per-node; --cpu and --memory per node)"),
        gpus_per_node: str = typer.Option(None, "--gpus-per-node", help="whole GPUs on each node"),
        gpu_model: str = typer.Option(None, "--gpu-model", help="GPU models the job accepts, comma-separated "
                                                                "(a100,h100): best fit across their pools"),
        profile: str = typer.Option(None, "--profile", help="a resource profile instead of --gpu"),
        cpu: str = typer.Option(None, "--cpu", help="cores: 8, 0.5 or 500m"),
        memory: str = typer.Option(None, "--memory", help="for example 16Gi"),
        pool: str = typer.Option(None, "--pool", help="pin the job to a pool"),
        priority_class: str = typer.Option(None, "--priority-class", help="inference, training or interactive"),
        time_limit: str = typer.Option(None, "--time-limit", help="for example 90m or 2h"),
        name: str = typer.Option(None, "--name"),
        env: Annotated[list[str] | None, typer.Option(
            "--env", "-e", help="NAME=VALUE for the command's environment (repeatable); the job sees nothing else "
                                "of this or the server's environment")] = None,
        target: Annotated[list[str] | None, typer.Option(
            "--target", help="a storage target whose variables (credentials included, values hidden where shown) "
                              "the job receives (repeatable, one of each kind)")] = None,
        project: str = typer.Option(None, "--project", help="the job's project: its id or WORKSPACE/PATH in the "
                                                            "quota's cluster (a workspace you are a member of)"),
        mount: Annotated[list[str] | None, typer.Option(
            "--mount", help="a storage folder to mount, NAME[:PATH][:ro] (repeatable): at PATH in the job's working "
                            "directory (default folders/NAME), read-only with :ro or when your permission is ro")] = None,
        json_: bool = typer.Option(False, "--json"),
    ) -> None:
        """Submit a job: allot jobs submit [--quota Q] [--gpu N | --profile P] [options] -- COMMAND...

        With no --gpu, --profile, --cpu or --memory the job asks for one CPU core."""
        if gpu is not None and profile is not None:
            raise typer.BadParameter("give --gpu or --profile, not both")
        if gpu is None and gpus_per_node is None and profile is None and cpu is None and memory is None:
            cpu = "1"
        body = {"quota": quota, "command": command, "gpu": gpu, "profile": profile, "cpu": cpu, "memory": memory,
                "pool": pool, "priority_class": priority_class, "time_limit": time_limit, "name": name,
                "env": _env_option(env) if env else None, "nodes": nodes, "gpus_per_node": gpus_per_node,
                "gpu_models": gpu_model, "project": project, "targets": target, "mounts": mount}
        job = Client().post("jobs", json={k: v for k, v in body.items() if v is not None})
        if json_:
            emit_json(job)
        else:
            console.print(f"job {job['id']} {job['state']} in quota {job['quota']}: {job['reason']}")

    @jobs.command("list")
    def list_jobs(
        state: str = typer.Option(None, "--state", help="one or more states, comma-separated"),
        quota: str = typer.Option(None, "--quota"),
        owner: str = typer.Option(None, "--owner"),
        cluster: str = typer.Option(None, "--cluster"),
        pool: str = typer.Option(None, "--pool", help="the pool a job was pinned to or placed in"),
        limit: int = typer.Option(50, "--limit"),
        json_: bool = typer.Option(False, "--json"),
    ) -> None:
        """Your jobs (cluster managers and admins: every job of their clusters), newest first."""
        params = {k: v for k, v in {"state": state, "quota": quota, "owner": owner, "cluster": cluster, "pool": pool,
                                    "limit": limit}.items() if v}
        body = Client().get("jobs", params=params)
        if json_:
            emit_json(body)
            return
        rows = [{**j, "reason": j.get("reason") if j["state"] == "queued" else (j.get("reason") or "")}
                for j in body["items"]]
        show(rows, False, COLUMNS, title=f"{body['total']} job(s)")

    @jobs.command("show")
    def show_job(job_id: int = typer.Argument(...), json_: bool = typer.Option(False, "--json")) -> None:
        """One job with the reason it waits (or how it ended)."""
        job = Client().get(f"jobs/{job_id}")
        show(job if json_ else _describe(job), json_)

    @jobs.command("cancel")
    def cancel(job_id: int = typer.Argument(...), json_: bool = typer.Option(False, "--json")) -> None:
        """Cancel a job: a queued one ends at once, a running one is stopped by the scheduler."""
        job = Client().post(f"jobs/{job_id}/cancel")
        if json_:
            emit_json(job)
        elif job["state"] == "cancelled":
            console.print(f"job {job['id']} cancelled")
        elif job.get("cancel_requested_at"):
            console.print(f"job {job['id']} is {job['state']}: cancellation requested, it is being stopped")
        else:  # pragma: no cover - the server answers one of the above
            raise CliError(f"job {job['id']} is {job['state']}")

    @jobs.command("logs")
    def logs(job_id: int = typer.Argument(...),
             follow: bool = typer.Option(False, "--follow", "-f", help="keep printing new output until the job ends"),
             offset: int = typer.Option(0, "--offset", min=0, help="start at this byte offset of the log")) -> None:
        """Print a job's output (its owner, its cluster's managers and admins, and platform admins may read it).
        With -f, follow it as it is written until the job ends; Ctrl-C stops following."""
        client = Client()
        try:
            if follow:
                _follow(client, job_id, offset)
            else:
                _print_log(client, job_id, offset)
        except KeyboardInterrupt:
            raise typer.Exit(130) from None  # the conventional code for an interrupt, without a traceback


LOG_PAGE = 1024 * 1024  # the server's largest chunk


def _write(text: str) -> None:
    """The job's output as it is, UTF-8 whatever the terminal's locale says (it is what the job wrote)."""
    out = getattr(sys.stdout, "buffer", None)
    if out is not None:
        out.write(text.encode("utf-8", errors="replace"))
    else:  # pragma: no cover - a text-only stdout (tests replacing it)
        sys.stdout.write(text)
    sys.stdout.flush()


def _note(message: str | None) -> None:
    if message:
        err_console.print(f"({message})", highlight=False, markup=False, soft_wrap=True)


def _print_log(client: Client, job_id: int, offset: int) -> None:
    """The log as it is now, page by page."""
    while True:
        page = client.get(f"jobs/{job_id}/logs", params={"offset": offset, "limit": LOG_PAGE})
        _write(page["text"])
        if page["next_offset"] <= offset or page["next_offset"] >= page["size"]:
            _note(page.get("note"))
            return
        offset = page["next_offset"]


def _follow(client: Client, job_id: int, offset: int) -> None:
    """Follow the server's stream; when the server ends one (event `resume`: it lasted its longest, or the server
    is stopping) or the connection closes early, follow again from where it stopped."""
    at = {"offset": offset}
    resumed = False
    while True:
        try:
            ended, heard = _follow_once(client, job_id, at)
        except ApiError:
            raise
        except CliError as exc:
            if not resumed:
                raise
            raise CliError(f"{exc}; the server may be restarting: follow again with "
                           f"`allot jobs logs {job_id} -f --offset {at['offset']}`") from None
        if ended:
            return
        if not heard:
            raise CliError(f"the server closed the log of job {job_id} without a word; try again")
        resumed = True


def _follow_once(client: Client, job_id: int, at: dict[str, int]) -> tuple[bool, bool]:
    """One follow request: prints what it streams, keeps the offset reached in `at`; (the job ended, any event)."""
    heard = False
    with client.stream("GET", f"jobs/{job_id}/logs", params={"follow": "true", "offset": at["offset"]}) as response:
        for line in response.iter_lines():
            if not line.strip():
                continue
            event = json.loads(line)
            heard = True
            at["offset"] = event.get("next_offset", at["offset"])
            kind = event.get("event")
            if kind == "start":
                _note(event.get("note"))
            elif kind == "output":
                _write(event.get("text", ""))
            elif kind == "end":
                err_console.print(f"job {job_id} {event.get('state')}", highlight=False, markup=False)
                return True, True
    return False, heard
