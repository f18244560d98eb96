"""`allot admin get-clusters`, `add-cluster`, `update-cluster`, `remove-cluster` (a cluster and its engine settings)
and who may use a cluster with which role (Neu.ro's cluster user commands)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import typer
from rich.markup import escape
from rich.table import Table

from allotment.cli.client import Client, segment
from allotment.cli.inputs import confirm, read_stdin_secret
from allotment.cli.output import console, emit_json, print_table, table, when, yes_no

ROLE_HELP = "user, manager or admin (DKube aliases: data-scientist = user, operator = admin)"
BACKEND_HELP = "local, slurm, ray or simulated"
SHOWN_APART = {"name", "status", "status_error", "status_since", "backend", "region", "zones", "pools", "id",
               "engine"}


def gpu_text(gpus: list[dict[str, Any]] | None) -> str:
    """A node's GPUs as Neu.ro writes them: '1 x nvidia-tesla-k80' (several models joined by ', ')."""
    return ", ".join(f"{g.get('count')} x {g.get('model')}" for g in gpus or []) or "-"


def bound(value: Any) -> str:
    return "-" if value is None else str(value)


def pool_rows(pool: dict[str, Any]) -> list[list[str]]:
    """A pool's rows of the node-pool table: one per machine shape. The first names the pool, its machine type,
    preemptible and node bounds; nodes of another shape follow on rows of their own."""
    machines = pool.get("machines") or [{"nodes": 0, "cpu": None, "memory": None, "gpus": []}]
    rows = []
    for i, machine in enumerate(machines):
        head = [str(pool.get("name") or ""), pool.get("machine_type") or "-",
                yes_no(pool.get("preemptible"))] if i == 0 else ["", "", ""]
        bounds = [bound(pool.get("min_nodes")), bound(pool.get("max_nodes"))] if i == 0 else ["", ""]
        rows.append([head[0], head[1], machine.get("cpu") or "-", machine.get("memory") or "-", head[2],
                     gpu_text(machine.get("gpus")), str(machine.get("nodes", 0)), *bounds])
    return rows


def pool_table(pools: list[dict[str, Any]]) -> Table:
    """Neu.ro's node-pool table: per pool its machine type, each node's CPU and memory, preemptible, each node's
    GPUs (count x model), how many nodes, and the min and max nodes the pool may span."""
    t = Table(show_edge=False, pad_edge=False)
    for header in ("Pool", "Machine", "CPU", "Memory", "Preemptible", "GPU", "Nodes", "Min", "Max"):
        t.add_column(header)
    for pool in pools:
        for row in pool_rows(pool):
            t.add_row(*(escape(c) for c in row))
    return t


def status_text(cluster: dict[str, Any]) -> str:
    """'unreachable since 2026-01-02 03:04: <the engine's error>'; a ready cluster just 'ready'."""
    text = str(cluster.get("status") or "")
    if cluster.get("status_since") and text != "ready":
        text += f" since {when(cluster['status_since'])}"
    if cluster.get("status_error"):
        text += f": {cluster['status_error']}"
    return text


def setting_text(value: Any) -> str:
    """An engine setting as shown: a secret as set / not set (its value never comes back), maps as k=v."""
    if isinstance(value, dict) and set(value) == {"set"}:
        return "set (write-only)" if value["set"] else "not set"
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return str(value)


def print_cluster(cluster: dict[str, Any]) -> None:
    """In the spirit of `neuro admin get-clusters`: the name, its facts, its engine settings, then its pools."""
    console.print(f"[bold]{escape(cluster.get('name', ''))}[/bold]")
    facts = [("Status", status_text(cluster)), ("Backend", cluster.get("backend"))]
    if cluster.get("region"):
        facts.append(("Region", cluster["region"]))
    if cluster.get("zones"):
        facts.append(("Zones", ", ".join(cluster["zones"])))
    facts += [(k.replace("_", " ").capitalize(), yes_no(v) if isinstance(v, bool) else v) for k, v in cluster.items()
              if k not in SHOWN_APART and v is not None and not isinstance(v, (dict, list))]
    engine = cluster.get("engine") or {}
    facts += [(f"  {k}", setting_text(v)) for k, v in engine.items()]
    if engine:
        facts.insert(len(facts) - len(engine), ("Engine", ""))
    width = max(len(k) for k, _ in facts)
    for key, value in facts:
        console.print(f"{key.ljust(width)}  {escape('' if value is None else str(value))}", highlight=False)
    pools = cluster.get("pools") or []
    if pools:
        console.print("Node pools")
        print_table(pool_table(pools))
    else:
        console.print("Node pools  none")


def role_of(answer: Any, asked: str) -> str:
    """The role the server recorded (aliases resolved), falling back to what was asked for."""
    return answer.get("role", asked) if isinstance(answer, dict) else asked


def pairs(values: list[str] | None, option: str) -> dict[str, str] | None:
    """KEY=NAME options (POOL=PARTITION, USER=ACCOUNT) as a map (None when none were given)."""
    if not values:
        return None
    out = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise typer.BadParameter(f"{option} takes {'USER=ACCOUNT' if option == '--run-as' else 'POOL=NAME'}, "
                                     f"got {item!r}")
        out[key.strip()] = value.strip()
    return out


def engine_body(options: dict[str, Any], token_stdin: bool, address: str | None, address_stdin: bool,
                partitions: list[str] | None, resources: list[str] | None, clear: list[str] | None = None,
                accounts: list[str] | None = None) -> dict[str, Any]:
    """The `engine` object of a request from the options given; secrets come from stdin, never the command line."""
    body = {k: v for k, v in options.items() if v is not None}
    if token_stdin and address_stdin:
        raise typer.BadParameter("one secret on stdin at a time: --token-stdin (slurm) or --address-stdin (ray)")
    if token_stdin:
        body["token"] = read_stdin_secret("token")
    if address is not None:
        parts = urlsplit(address)
        if parts.username or parts.password:
            raise typer.BadParameter("an address with credentials goes through --address-stdin, so that it stays "
                                     "out of the shell's history and the process list")
        body["address"] = address
    if address_stdin:
        body["address"] = read_stdin_secret("address")
    for name, values, option in (("partitions", partitions, "--partition"), ("resources", resources, "--resource"),
                                 ("accounts", accounts, "--run-as")):
        mapped = pairs(values, option)
        if mapped is not None:
            body[name] = mapped
    for name in clear or ():
        if name in body:
            raise typer.BadParameter(f"--clear {name} and a value for {name} together")
        body[name] = None
    return body


def engine_options(rest_url, rest_user, log_dir, slurm_conf, bin_dir, state_dir, work_dir, default_partition,
                   name_prefix, nodes_file, min_gpu_share=None) -> dict[str, Any]:
    return {"rest_url": rest_url, "rest_user": rest_user, "log_dir": log_dir, "slurm_conf": slurm_conf,
            "bin_dir": bin_dir, "state_dir": state_dir, "work_dir": work_dir, "default_partition": default_partition,
            "name_prefix": name_prefix, "nodes_file": nodes_file, "min_gpu_share": min_gpu_share}


# Engine options shared by add-cluster and update-cluster (typer reads them from each command's signature).
REST_URL = typer.Option(None, "--rest-url", help="slurm: slurmrestd's URL; without it Slurm's commands are used")
REST_USER = typer.Option(None, "--rest-user", help="slurm: the user name the token was issued for")
TOKEN_STDIN = typer.Option(False, "--token-stdin", help="slurm: read slurmrestd's JWT from stdin")
LOG_DIR = typer.Option(None, "--log-dir", help="slurm: where jobs write their output (shared with the nodes)")
SLURM_CONF = typer.Option(None, "--slurm-conf", help="slurm without --rest-url: SLURM_CONF for the commands")
BIN_DIR = typer.Option(None, "--bin-dir", help="slurm without --rest-url: where sbatch is (default /usr/bin)")
STATE_DIR = typer.Option(None, "--state-dir", help="slurm: the engine's run records (default LOG_DIR/.allot-slurm)")
WORK_DIR = typer.Option(None, "--work-dir", help="slurm: the jobs' working directory (default LOG_DIR)")
PARTITION = typer.Option(None, "--partition", help="slurm: POOL=PARTITION, repeatable (replaces the whole map)")
DEFAULT_PARTITION = typer.Option(None, "--default-partition", help="slurm: the partition of unmapped pools")
NAME_PREFIX = typer.Option(None, "--name-prefix", help="slurm, ray: prefix of the engine's job names, one per "
                           "allotment sharing the cluster (default allot)")
RUN_AS = typer.Option(None, "--run-as", help="slurm: USER=ACCOUNT, repeatable (replaces the whole map): the OS "
                      "account a user's jobs run as; needs a token of SlurmUser or root (REST) or a root server")
ADDRESS = typer.Option(None, "--address", help="ray: the Ray Jobs API's address, without credentials")
ADDRESS_STDIN = typer.Option(False, "--address-stdin", help="ray: read the address (with credentials) from stdin")
RESOURCE = typer.Option(None, "--resource", help="ray: POOL=RESOURCE, repeatable (replaces the whole map)")
NODES_FILE = typer.Option(None, "--nodes-file", help="simulated: a YAML or JSON file of virtual nodes")
MIN_GPU_SHARE = typer.Option(None, "--min-gpu-share", help="simulated, slurm, ray: the smallest share of a GPU a job "
                                                           "may ask for, 0.01 (default) to 1 (whole GPUs only)")
REGION = typer.Option(None, "--region", help="where the cluster runs, as shown by get-clusters; '' removes it")
ZONE = typer.Option(None, "--zone", help="a zone, repeatable (replaces the list); --zone '' removes them")
CLEAR = typer.Option(None, "--clear", help="reset an engine setting (a secret: clear it), e.g. --clear token")


def register(admin: typer.Typer) -> None:
    @admin.command("add-cluster")
    def add_cluster(name: str = typer.Argument(...),
                    backend: str = typer.Option("local", "--backend", help=BACKEND_HELP),
                    description: str = typer.Option(None, "--description"),
                    rest_url: str = REST_URL, rest_user: str = REST_USER, token_stdin: bool = TOKEN_STDIN,
                    log_dir: str = LOG_DIR, slurm_conf: str = SLURM_CONF, bin_dir: str = BIN_DIR,
                    state_dir: str = STATE_DIR, work_dir: str = WORK_DIR, partition: list[str] = PARTITION,
                    default_partition: str = DEFAULT_PARTITION, name_prefix: str = NAME_PREFIX,
                    address: str = ADDRESS, address_stdin: bool = ADDRESS_STDIN, resource: list[str] = RESOURCE,
                    nodes_file: str = NODES_FILE, run_as: list[str] = RUN_AS,
                    min_gpu_share: str = MIN_GPU_SHARE, json_: bool = typer.Option(False, "--json")) -> None:
        """Register a cluster and its engine; you become its cluster admin. Secrets come from stdin."""
        engine = engine_body(engine_options(rest_url, rest_user, log_dir, slurm_conf, bin_dir, state_dir, work_dir,
                                            default_partition, name_prefix, nodes_file, min_gpu_share),
                             token_stdin, address, address_stdin, partition, resource, accounts=run_as)
        body: dict[str, Any] = {"name": name, "backend": backend, "engine": engine}
        if description is not None:
            body["description"] = description
        created = Client().post("clusters", json=body)
        if json_:
            emit_json(created)
            return
        console.print(f"Added cluster {created['name']} ({created['backend']}); you are its admin", highlight=False)
        print_cluster(created)

    @admin.command("update-cluster")
    def update_cluster(name: str = typer.Argument(...),
                       backend: str = typer.Option(None, "--backend",
                                                   help=f"{BACKEND_HELP}; starts from empty engine settings"),
                       description: str = typer.Option(None, "--description", help="'' removes it"),
                       region: str = REGION, zone: list[str] = ZONE,
                       rest_url: str = REST_URL, rest_user: str = REST_USER, token_stdin: bool = TOKEN_STDIN,
                       log_dir: str = LOG_DIR, slurm_conf: str = SLURM_CONF, bin_dir: str = BIN_DIR,
                       state_dir: str = STATE_DIR, work_dir: str = WORK_DIR, partition: list[str] = PARTITION,
                       default_partition: str = DEFAULT_PARTITION, name_prefix: str = NAME_PREFIX,
                       address: str = ADDRESS, address_stdin: bool = ADDRESS_STDIN, resource: list[str] = RESOURCE,
                       nodes_file: str = NODES_FILE, clear: list[str] = CLEAR, run_as: list[str] = RUN_AS,
                       min_gpu_share: str = MIN_GPU_SHARE, json_: bool = typer.Option(False, "--json")) -> None:
        """Change a cluster's backend, description, region and zones or engine settings; what is not given is kept."""
        engine = engine_body(engine_options(rest_url, rest_user, log_dir, slurm_conf, bin_dir, state_dir, work_dir,
                                            default_partition, name_prefix, nodes_file, min_gpu_share),
                             token_stdin, address, address_stdin, partition, resource, clear, accounts=run_as)
        body: dict[str, Any] = {}
        if backend is not None:
            body["backend"] = backend
        if description is not None:
            body["description"] = description or None
        if region is not None:
            body["region"] = region or None
        if zone:
            body["zones"] = [z for z in zone if z] or None
        if engine:
            body["engine"] = engine
        if not body:
            raise typer.BadParameter("nothing to change: give --backend, --description, --region, --zone, engine "
                                     "options or --clear")
        updated = Client().patch(f"clusters/{segment(name)}", json=body)
        if json_:
            emit_json(updated)
            return
        changed = [*(k for k in body if k != "engine"), *sorted(engine)]
        console.print(f"Updated cluster {updated['name']}: {', '.join(changed)}", highlight=False)
        print_cluster(updated)

    @admin.command("remove-cluster")
    def remove_cluster(name: str = typer.Argument(...),
                       yes: bool = typer.Option(False, "--yes", "-y", help="do not ask for confirmation")) -> None:
        """Remove a cluster with its pools, nodes and roles; refused while it has active jobs."""
        confirm(f"Remove cluster {name} with its pools, nodes, quotas and roles?", yes, f"cluster {name} was kept")
        Client().delete(f"clusters/{segment(name)}")
        console.print(f"Removed cluster {name}", highlight=False)

    @admin.command("get-clusters")
    def get_clusters(json_: bool = typer.Option(False, "--json")) -> None:
        """Clusters with status, backend, region and zones, and Neu.ro's node-pool table: per pool the machine type,
        each node's CPU and memory, preemptible, each node's GPUs (count x model), nodes, min and max nodes."""
        body = Client().get("clusters")
        clusters = body.get("items", []) if isinstance(body, dict) else body
        if json_:
            emit_json(clusters)
            return
        for i, cluster in enumerate(clusters):
            if i:
                console.print()
            print_cluster(cluster)

    @admin.command("get-cluster-users")
    def get_cluster_users(cluster: str = typer.Argument(...), json_: bool = typer.Option(False, "--json")) -> None:
        """Who may use CLUSTER, with which role and whether directly or through a group."""
        body = Client().get(f"clusters/{segment(cluster)}/users")
        users = body.get("items", []) if isinstance(body, dict) else body
        if json_:
            emit_json(users)
        else:
            table(users, [("username", "USER"), ("role", "ROLE"), ("via", "VIA")], empty=f"nobody has access to {cluster}")

    @admin.command("add-cluster-user")
    def add_cluster_user(cluster: str = typer.Argument(...), user: str = typer.Argument(...),
                         role: str = typer.Argument("user", help=ROLE_HELP)) -> None:
        """Give USER access to CLUSTER with ROLE (default: user)."""
        answer = Client().put(f"clusters/{segment(cluster)}/users/{segment(user)}", json={"role": role})
        console.print(f"Added {user} to cluster {cluster} as {role_of(answer, role)}", highlight=False)

    @admin.command("set-cluster-role")
    def set_cluster_role(cluster: str = typer.Argument(...), user: str = typer.Argument(...),
                         role: str = typer.Argument(..., help=ROLE_HELP)) -> None:
        """Change USER's role on CLUSTER in one step."""
        answer = Client().put(f"clusters/{segment(cluster)}/users/{segment(user)}", json={"role": role})
        console.print(f"{user} is now {role_of(answer, role)} on cluster {cluster}", highlight=False)

    @admin.command("remove-cluster-user")
    def remove_cluster_user(cluster: str = typer.Argument(...), user: str = typer.Argument(...)) -> None:
        """Revoke USER's access to CLUSTER. Their jobs, storage and usage are kept; adding them back restores access."""
        Client().delete(f"clusters/{segment(cluster)}/users/{segment(user)}")
        console.print(f"Removed {user} from cluster {cluster}", highlight=False)

    @admin.command("add-cluster-group")
    def add_cluster_group(cluster: str = typer.Argument(...), group: str = typer.Argument(...),
                          role: str = typer.Argument("user", help=ROLE_HELP)) -> None:
        """Give every member of GROUP access to CLUSTER with ROLE (or change the group's role)."""
        answer = Client().put(f"clusters/{segment(cluster)}/groups/{segment(group)}", json={"role": role})
        console.print(f"Group {group} has role {role_of(answer, role)} on cluster {cluster}", highlight=False)

    @admin.command("remove-cluster-group")
    def remove_cluster_group(cluster: str = typer.Argument(...), group: str = typer.Argument(...)) -> None:
        """Revoke what GROUP granted on CLUSTER (direct grants of its members stay)."""
        Client().delete(f"clusters/{segment(cluster)}/groups/{segment(group)}")
        console.print(f"Removed group {group} from cluster {cluster}", highlight=False)
