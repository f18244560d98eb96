"""`allot policies list|show|create|set|delete|allowance|classes` (registered by cli/quotas.py)."""

from __future__ import annotations

import typer

from allotment.cli.client import Client
from allotment.cli.output import console, emit_json, show

CAPS = ["cpu", "memory", "gpu", "fgpu", "containers_per_job", "idle_timeout_s", "concurrent_jobs", "folders",
        "folder_capacity"]


def _caps(**values) -> dict:
    """Options given on the command line; "unlimited" is passed through."""
    out = {}
    for key, value in values.items():
        if value is None:
            continue
        if key == "allowed_storage_hosts":
            out[key] = None if value == "any" else [h.strip() for h in value.split(",") if h.strip()]
        else:
            out[key] = value
    return out


def _row(p: dict) -> dict:
    return {k: ("∞" if p.get(k) in (None, "unlimited") else p.get(k)) for k in ["name", *CAPS]}


def register(app: typer.Typer) -> None:
    policies = typer.Typer(no_args_is_help=True, help="Per-user resource policies (caps checked at submission).")
    app.add_typer(policies, name="policies")

    @policies.command("list")
    def list_policies(json_: bool = typer.Option(False, "--json")) -> None:
        body = Client().get("resource-policies")
        show(body if json_ else [_row(p) for p in body["items"]], json_, ["name", *CAPS], title="resource policies")

    @policies.command("show")
    def show_policy(name: str, json_: bool = typer.Option(False, "--json")) -> None:
        show(Client().get(f"resource-policies/{name}"), json_)

    @policies.command("create")
    def create(name: str, cpu: str = typer.Option(None, "--cpu"),
               memory: str = typer.Option(None, "--memory", help="GiB (e.g. 64), or with a unit: 512Mi, 1Ti"),
               gpu: str = typer.Option(None, "--gpu"), fgpu: str = typer.Option(None, "--fgpu"),
               containers: str = typer.Option(None, "--containers-per-job"),
               idle_timeout: str = typer.Option(None, "--idle-timeout", help="seconds"),
               concurrent: str = typer.Option(None, "--concurrent-jobs"),
               folders: str = typer.Option(None, "--folders"),
               folder_capacity: str = typer.Option(None, "--folder-capacity", help="GiB (e.g. 100), or 100Gi"),
               hosts: str = typer.Option(None, "--storage-hosts", help="comma-separated, or 'any'")) -> None:
        """Create a policy; caps not given are unlimited."""
        body = {"name": name, **_caps(cpu=cpu, memory=memory, gpu=gpu, fgpu=fgpu, containers_per_job=containers,
                                      idle_timeout_s=idle_timeout, concurrent_jobs=concurrent, folders=folders,
                                      folder_capacity=folder_capacity, allowed_storage_hosts=hosts)}
        p = Client().post("resource-policies", json=body)
        console.print(f"resource policy {p['name']} created")

    @policies.command("set")
    def set_policy(name: str, cpu: str = typer.Option(None, "--cpu"),
                   memory: str = typer.Option(None, "--memory", help="GiB (e.g. 64), or with a unit: 512Mi, 1Ti"),
                   gpu: str = typer.Option(None, "--gpu"), fgpu: str = typer.Option(None, "--fgpu"),
                   containers: str = typer.Option(None, "--containers-per-job"),
                   idle_timeout: str = typer.Option(None, "--idle-timeout"),
                   concurrent: str = typer.Option(None, "--concurrent-jobs"),
                   folders: str = typer.Option(None, "--folders"),
                   folder_capacity: str = typer.Option(None, "--folder-capacity"),
                   hosts: str = typer.Option(None, "--storage-hosts")) -> None:
        """Change caps ("unlimited" lifts one). The name cannot change."""
        body = _caps(cpu=cpu, memory=memory, gpu=gpu, fgpu=fgpu, containers_per_job=containers,
                     idle_timeout_s=idle_timeout, concurrent_jobs=concurrent, folders=folders,
                     folder_capacity=folder_capacity, allowed_storage_hosts=hosts)
        if not body:
            raise typer.BadParameter("nothing to change")
        show(_row(Client().patch(f"resource-policies/{name}", json=body)), False)

    @policies.command("delete")
    def delete(name: str) -> None:
        """Refused while any user (inactive ones included) follows the policy."""
        Client().delete(f"resource-policies/{name}")
        console.print(f"resource policy {name} deleted")

    @policies.command("allowance")
    def allowance(user: str = typer.Argument(None, help="default: yourself"),
                  json_: bool = typer.Option(False, "--json")) -> None:
        """What a user may still use under their policy."""
        client = Client()
        user = user or client.get("auth/whoami")["username"]
        body = client.get(f"users/{user}/allowance")
        if json_:
            emit_json(body)
            return
        rows = [{"cap": k, **v} for k, v in body["caps"].items()]
        show(rows, False, ["cap", "limit", "in_use", "remaining", "description"],
             title=f"{body['user']}: policy {body['policy']}")

    @policies.command("classes")
    def classes(json_: bool = typer.Option(False, "--json")) -> None:
        """Priority classes (higher value first)."""
        body = Client().get("priority-classes")
        show(body if json_ else body["items"], json_, ["name", "value", "is_default", "description"])
