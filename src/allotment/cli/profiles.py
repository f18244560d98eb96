"""`allot profiles list|show|create|set|pools|policies|order|delete` (registered by cli/quotas.py)."""

from __future__ import annotations

from typing import Annotated

import typer

from allotment.cli.client import Client
from allotment.cli.output import console, show


def _flat(p: dict) -> dict:
    return {"name": p["name"], "gpu": p["gpu"], "cpu": p["cpu"], "memory": p["memory"],
            "pools": (" | " if p.get("unordered") else " > ").join(
                f"{link['pool']} ({link['name']})" if link.get("name") else link["pool"] for link in p["pools"]),
            "order": "unordered (best fit)" if p.get("unordered") else "ordered",
            "policies": " > ".join(p["policies"]), "queued": p["queued_jobs"], "running": p["running_jobs"]}


UNORDERED_HELP = ("its pools are an unordered set (several GPU models): a job takes the best fit across them "
                  "(--ordered: tried in order)")


def register(app: typer.Typer) -> None:
    profiles = typer.Typer(no_args_is_help=True, help="Resource profiles: job shapes with pools to try in order.")
    app.add_typer(profiles, name="profiles")
    cluster_opt = typer.Option("local", "--cluster")

    @profiles.command("list")
    def list_profiles(cluster: str = cluster_opt, json_: bool = typer.Option(False, "--json")) -> None:
        body = Client().get(f"clusters/{cluster}/profiles")
        show(body if json_ else [_flat(p) for p in body["items"]], json_,
             ["name", "gpu", "cpu", "memory", "pools", "order", "policies", "queued", "running"], title="profiles")

    @profiles.command("show")
    def show_profile(name: str, cluster: str = cluster_opt, json_: bool = typer.Option(False, "--json")) -> None:
        p = Client().get(f"clusters/{cluster}/profiles/{name}")
        show(p if json_ else _flat(p), json_)

    @profiles.command("create")
    def create(name: str, cluster: str = cluster_opt, gpu: str = typer.Option(None, "--gpu"),
               cpu: str = typer.Option(None, "--cpu"), memory: str = typer.Option(None, "--memory"),
               pool: Annotated[list[str] | None, typer.Option("--pool", help="pool to try, in order (repeat); POOL=LINK names the connection")] = None,
               unordered: bool = typer.Option(False, "--unordered", help=UNORDERED_HELP)) -> None:
        """Create a profile, e.g. allot profiles create 4xGPU --gpu 4 --pool "Bare Metal" --pool H100."""
        links = [{"pool": p.partition("=")[0], "name": p.partition("=")[2] or None} for p in pool or []]
        p = Client().post(f"clusters/{cluster}/profiles",
                          json={"name": name, "gpu": gpu, "cpu": cpu, "memory": memory, "pools": links,
                                "unordered": unordered})
        console.print(f"profile {p['name']} created: gpu {p['gpu']}, pools {', '.join(x['pool'] for x in p['pools'])}")

    @profiles.command("set")
    def set_profile(name: str, cluster: str = cluster_opt, gpu: str = typer.Option(None, "--gpu"),
                    cpu: str = typer.Option(None, "--cpu"), memory: str = typer.Option(None, "--memory"),
                    new_name: str = typer.Option(None, "--rename"),
                    unordered: bool = typer.Option(None, "--unordered/--ordered", help=UNORDERED_HELP)) -> None:
        body = {k: v for k, v in {"gpu": gpu, "cpu": cpu, "memory": memory, "name": new_name}.items() if v}
        if unordered is not None:
            body["unordered"] = unordered
        p = Client().patch(f"clusters/{cluster}/profiles/{name}", json=body)
        show(_flat(p), False)

    @profiles.command("pools")
    def set_pools(name: str, pools: Annotated[list[str], typer.Argument(help="pools in the order to try; POOL=LINK")],
                  cluster: str = cluster_opt) -> None:
        """Replace the profile's pool links (their order is the order pools are tried)."""
        links = [{"pool": p.partition("=")[0], "name": p.partition("=")[2] or None} for p in pools]
        p = Client().put(f"clusters/{cluster}/profiles/{name}/pools", json=links)
        show(_flat(p), False)

    @profiles.command("policies")
    def set_policies(name: str, quotas: Annotated[list[str], typer.Argument(help="quotas, first served first")],
                     cluster: str = cluster_opt) -> None:
        """Queuing priority of the quotas (policies) using the profile."""
        p = Client().put(f"clusters/{cluster}/profiles/{name}/policies", json={"names": quotas})
        show(_flat(p), False)

    @profiles.command("order")
    def order(pool: str, profiles_: Annotated[list[str], typer.Argument(metavar="PROFILES", help="linked profiles, first served first")],
              cluster: str = cluster_opt) -> None:
        """A pool's execution priority over the profiles linked to it."""
        body = Client().put(f"clusters/{cluster}/pools/{pool}/profile-order", json={"names": profiles_})
        console.print(f"pool {pool} runs: {' > '.join(body['names'])}")

    @profiles.command("delete")
    def delete(name: str, cluster: str = cluster_opt) -> None:
        Client().delete(f"clusters/{cluster}/profiles/{name}")
        console.print(f"profile {name} deleted")
