"""The Slurm engine: admitted jobs run as Slurm batch jobs; inventory and job states come from Slurm.

allotment keeps admission authority: it decides which job runs on which node with how many GPUs, and this engine
only submits what was admitted, pinned there (`--nodelist`, `--partition`, `--gres=gpu:TYPE:N`, CPUs, memory,
`--time`). A job over several nodes (a gang: Launch.nodes) is one Slurm job on exactly those nodes (`--nodes=N
--nodelist=A,B`, one task per node), with the GRES, CPUs and memory of one node's share on each. It talks to slurmrestd (JWT) through `slurm_client.SlurmRestClient`, or runs Slurm's commands
(`SlurmCommands`) where slurmrestd is not configured.

Mapping:
- Pools are partitions and GRES types. A launch goes to the partition its pool maps to (`SlurmConfig.partitions`,
  pool -> partition, when the launch names its pool), else to the partition its node is in (the one named like
  the node's GPU model when it is in several), else to `default_partition` or Slurm's default.
- Devices are the node's GRES, indexed 0..N-1 in the order Slurm lists them; a device's model is its GRES type
  (`gpu:a100:4` -> four `a100`). Slurm picks which of the node's GPUs a job gets (CUDA_VISIBLE_DEVICES as Slurm sets
  it): GRES can ask for a count of a type on a node, not for given indices. A fraction of a GPU cannot be expressed
  in GRES at all: such a launch is refused with a clear error.
- A drained (or draining) node is `draining`, a down, failing or unresponsive one `down`; the devices of either are
  `unhealthy`, so the scheduler places nothing on them.
- States: RUNNING -> started (a PENDING job is not started yet); COMPLETED -> succeeded; FAILED, TIMEOUT, NODE_FAIL,
  OUT_OF_MEMORY, PREEMPTED, CANCELLED (by anyone but this engine) and the like -> failed, with Slurm's state and
  reason and the exit code (negative: killed by that signal). A job this engine cancels gives no event, as on the
  other engines.

Accounts: a job runs as the token's user (REST) or the server's (commands), unless its owner is in
`SlurmConfig.accounts` (allotment user -> account; '*': everyone else): then it is submitted as that account, through slurmrestd's
X-SLURM-USER-NAME header (slurmctld lets a token of SlurmUser or root speak for another user, and refuses anyone
else's) or `sbatch --uid` (root only). The engine lists and cancels every job with its own token's rights, which
reach other users' jobs only with such a token, so a mapping needs one.

A job is untrusted code: it is submitted with an explicit environment (PATH, ALLOT_JOB_ID and the launch's own
`env`), never the server's. Its output goes to `<log_dir>/job-<id>.log` (appended, so a requeued job keeps its
earlier runs' output); on a real cluster log_dir must be on a filesystem the compute nodes share.

Finding jobs again after a restart of the server (the `Recovers` contract of base.py): every Slurm job is named
`<prefix>-<job id>` with the comment `<prefix>:<job id>:<admission>`, and the engine appends (job id, admission,
Slurm id) to `<state_dir>/runs.jsonl` as soon as Slurm accepted it. `reattach` looks the run up in Slurm (by its
comment) and adopts it when it still runs, or reports how it ended; a run the records know but Slurm forgot
(it ended longer than MinJobAge ago, and there is no slurmdbd to ask) is `lost`, never launched a second time.
`stop_orphans` cancels the live Slurm jobs with this engine's prefix that no holding job owns. Each allotment
installation sharing a Slurm cluster needs a prefix of its own. `close` leaves jobs running on purpose: they
outlive the server and are adopted when it comes back.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from allotment.backends.base import ENDED, LOST, RUNS, UNKNOWN, DeviceInfo, JobEvent, Launch, NodeInfo, Reattached
from allotment.backends.remote import ANSWER_S, OutageGuard, private_state_dir
from allotment.backends.sandbox import folder_variable
from allotment.backends.slurm_client import (
    NOT_MODIFIED,
    JobSpec,
    SlurmApi,
    SlurmCommands,
    SlurmError,
    SlurmRestClient,
    SlurmUnavailable,
)

log = logging.getLogger("allotment.backends.slurm")

__all__ = ["SlurmBackend", "SlurmConfig", "SlurmError", "SlurmLaunchError", "SlurmUnavailable"]

# Slurm job states (22.05's names). Anything not listed counts as not started yet (PENDING, REQUEUED, holds).
STARTED_STATES = frozenset({"RUNNING", "SUSPENDED", "COMPLETING", "CONFIGURING", "SIGNALING", "STAGE_OUT", "STOPPED",
                            "RESIZING"})
ENDED_STATES = frozenset({"COMPLETED", "CANCELLED", "FAILED", "TIMEOUT", "NODE_FAIL", "PREEMPTED", "BOOT_FAIL",
                          "DEADLINE", "OUT_OF_MEMORY", "SPECIAL_EXIT", "REVOKED"})
NODE_DOWN_STATES = frozenset({"down", "error", "future", "unknown"})
NODE_DOWN_FLAGS = frozenset({"NOT_RESPONDING", "FAIL", "POWERED_DOWN", "POWERING_DOWN", "INVALID_REG"})
NODE_DRAIN_FLAGS = frozenset({"DRAIN", "DRAINING", "DRAINED", "MAINT"})
JOB_PATH = "/usr/local/bin:/usr/bin:/bin"
# A listing asks slurmctld only for "anything changed since the last one" (304 when not); this margin covers its
# one-second timestamps and a small clock skew, and a full listing every FULL_LISTING_S covers a larger one.
SINCE_MARGIN_S = 2
FULL_LISTING_S = 30.0
_GRES_ITEM = re.compile(r"([^,(]+)(\([^)]*\))?")


class SlurmLaunchError(ValueError):
    """A launch this engine cannot express in Slurm (a fraction of a GPU, an unknown node)."""


@dataclass(frozen=True)
class SlurmConfig:
    """How to reach one Slurm cluster and where its jobs write. `rest_url` (with `rest_user` and `token`) selects
    slurmrestd; without it the engine runs Slurm's commands (with `slurm_conf` as SLURM_CONF when given)."""

    log_dir: Path
    rest_url: str | None = None
    rest_user: str | None = None
    token: str | None = field(default=None, repr=False)
    slurm_conf: str | None = None
    bin_dir: str = "/usr/bin"
    state_dir: Path | None = None  # the engine's run records; default <log_dir>/.allot-slurm (only the server's)
    work_dir: Path | None = None  # the jobs' working directory; default log_dir
    partitions: dict[str, str] = field(default_factory=dict)  # pool name -> partition
    default_partition: str | None = None
    name_prefix: str = "allot"
    job_path: str = JOB_PATH
    accounts: dict[str, str] = field(default_factory=dict)  # allotment user -> the account their jobs run as
    answer_s: float = ANSWER_S  # how long a call may take before Slurm counts as unreachable (remote.OutageGuard)

    def api(self) -> SlurmApi:
        if self.rest_url:
            if not self.rest_user or not self.token:
                raise ValueError("slurmrestd needs a user name and a token (scontrol token username=NAME)")
            return SlurmRestClient(self.rest_url, self.rest_user, self.token)
        return SlurmCommands(self.slurm_conf, self.bin_dir)


@dataclass
class Run:
    """A Slurm job this engine watches: one run (job id, admission) of an allotment job."""

    job_id: int
    admission: str
    slurm_id: int
    started: bool = False


@dataclass(frozen=True)
class NodeMeta:
    partitions: tuple[str, ...]
    gpu_types: tuple[str | None, ...]  # by device index


# A gang's other nodes get the configuration file at the same path before the command runs: one task on each node
# after the first (--relative=1) reads it from its standard input (--input=all) and creates it where it is absent,
# refusing a file already there (noclobber: an exclusive create, which a symbolic link planted at the path cannot
# redirect). Where the nodes share their temporary directory the file is already there: one identical to it passes,
# any other stops the job. --overlap: the step shares the CPUs and GPUs the command's own steps will use. The node
# count is the engine's, not the environment's: Ray's entrypoints are written here too, on clusters that may
# themselves run inside a Slurm job.
NODE_COPY = ("if [ -e \"$ALLOT_CONFIG_FILE\" ]; then cmp -s - \"$ALLOT_CONFIG_FILE\"; "
             "else umask 077 && set -C && cat > \"$ALLOT_CONFIG_FILE\"; fi")


def _other_nodes(nodes: int) -> str:
    return f"srun --overlap --relative=1 --nodes={nodes - 1} --ntasks={nodes - 1} --ntasks-per-node=1"


def batch_script(launch: Launch, nodes: int = 1) -> str:
    """The batch script: the command, after writing the owner's effective configuration (configuration vaults) to a
    file of its own on each of the job's `nodes` (mktemp: created afresh, readable by the job's account only), named
    by ALLOT_CONFIG_FILE and removed from each when the command ends (a job Slurm kills leaves it). The JSON is a
    quoted here-document, so nothing in it is expanded; none of its lines can be the bare terminator (JSON puts every
    string in quotes)."""
    lines = ["#!/bin/sh"]
    if launch.config_file is not None:
        remove = 'rm -f "$ALLOT_CONFIG_FILE"'
        if nodes > 1:
            remove += f'; {_other_nodes(nodes)} rm -f "$ALLOT_CONFIG_FILE"'
        lines += ['ALLOT_CONFIG_FILE=$(umask 077 && mktemp "${TMPDIR:-/tmp}/allotment-config.XXXXXX") || exit 1',
                  "export ALLOT_CONFIG_FILE", f"trap '{remove}' EXIT",
                  "cat > \"$ALLOT_CONFIG_FILE\" <<'ALLOT_CONFIG_END'", launch.config_file, "ALLOT_CONFIG_END"]
        if nodes > 1:
            lines.append(f"{_other_nodes(nodes)} --input=all sh -c '{NODE_COPY}' < \"$ALLOT_CONFIG_FILE\" || "
                         "{ echo 'allotment: the configuration file could not be written on every node' >&2; exit 1; }")
    lines.append(launch.command)
    return "\n".join(lines) + "\n"


def folder_variables(mounts: tuple[dict, ...]) -> dict[str, str]:
    """Storage folders on Slurm: each is the folder's directory on the cluster's shared file system (its storage
    host's cluster path, storage/mounts.py), named to the job as ALLOT_FOLDER_<NAME> (upper case, other characters
    as _). Slurm has no bind mounts: a read-only mount is read-only only where the shared file system's
    permissions make it so."""
    return {folder_variable(m["folder"]): m["cluster_path"] for m in mounts if m.get("cluster_path")}


def exit_code_of(raw: object) -> int | None:
    """22.05 reports the wait status (3 << 8 for `exit 3`, 15 for SIGTERM); negative codes name a signal."""
    if isinstance(raw, dict):  # later API versions: {"status": ..., "return_code": ..., "signal": {...}}
        signal = (raw.get("signal") or {}).get("signal_id")
        return -int(signal) if signal else raw.get("return_code")
    if not isinstance(raw, int):
        return None
    return -(raw & 0x7F) if raw & 0x7F else raw >> 8


def state_of(job: dict) -> str:
    state = job.get("job_state")
    if isinstance(state, list):  # later API versions: a list of flags, the base state first
        state = state[0] if state else ""
    return str(state or "").upper()


def ending(job: dict) -> tuple[str, int | None, str | None]:
    """(event kind, exit code, message) of a job Slurm reports ended."""
    state, code = state_of(job), exit_code_of(job.get("exit_code"))
    if state == "COMPLETED" and not code:
        return "succeeded", 0, None
    reason = str(job.get("state_reason") or "")
    why = f" ({reason})" if reason and reason != "None" else ""
    parts = [f"Slurm: {state}{why}"]
    if state == "TIMEOUT":
        parts = [f"time limit reached (Slurm: TIMEOUT{why.replace(' (', ', ').rstrip(')')})"]
    elif state == "CANCELLED":
        parts = [f"cancelled in Slurm, not by allotment{why}"]
    if code is not None:
        parts.append(f"killed by signal {-code}" if code < 0 else f"exit code {code}")
    return "failed", code, ", ".join(parts)


def gres_gpus(gres: str) -> tuple[str | None, ...]:
    """GPU types by index from a node's gres ('gpu:a100:4(S:0-1),gpu:h100:2' -> a100 x4, h100 x2; 'gpu:2' -> None
    x2, untyped)."""
    types: list[str | None] = []
    for match in _GRES_ITEM.finditer(gres or ""):
        parts = match.group(1).strip().split(":")
        if not parts or parts[0] != "gpu" or len(parts) < 2:
            continue
        count = re.match(r"\d+", parts[-1])
        if count is None:
            continue
        kind = parts[1] if len(parts) >= 3 else None
        types.extend([kind] * int(count.group(0)))
    return tuple(types)


def node_status(node: dict) -> str:
    state = str(node.get("state") or "").lower()
    flags = {str(f).upper() for f in node.get("state_flags") or ()}
    if state in NODE_DOWN_STATES or flags & NODE_DOWN_FLAGS:
        return "down"
    if state in ("drained", "draining") or flags & NODE_DRAIN_FLAGS:
        return "draining"
    return "ready"


def _reattached(state: str, **values) -> Reattached:
    # `handle` is newer than the contract; leave it out where this tree's Reattached lacks it.
    if "handle" not in Reattached.__dataclass_fields__:
        values.pop("handle", None)
    return Reattached(state, **values)


class SlurmBackend:
    name = "slurm"
    reports_idleness = False  # without job accounting Slurm cannot say how busy a job is

    def __init__(self, config: SlurmConfig, api: SlurmApi | None = None):
        self.config = config
        self.api = api if api is not None else config.api()
        self.log_dir = Path(config.log_dir)
        self.state_dir = Path(config.state_dir) if config.state_dir else self.log_dir / ".allot-slurm"
        self._runs: dict[int, Run] = {}
        self._pending: list[JobEvent] = []
        self._nodes: dict[str, NodeMeta] = {}
        self._records: dict[tuple[int, str], int] = {}
        self._retry_cancel: set[int] = set()  # Slurm ids whose cancel failed while Slurm was unreachable
        self._listed_at: float | None = None
        self._full_at = 0.0
        self._snapshot: tuple[float, list[dict]] | None = None  # one listing per recovery round (same `now`)
        # (since when, Slurm's error) while the cluster is unreachable, for the cluster's status; None when it answers
        self._guard = OutageGuard("Slurm", SlurmUnavailable, log, answer_s=config.answer_s)
        self._prepare_dirs()
        self._load_records()

    @property
    def outage(self) -> tuple[float, str] | None:
        """(since when, Slurm's last error) while Slurm is unreachable; None when it answers."""
        return self._guard.outage

    def _slurm(self, call, *args):
        """Call Slurm, keeping track of outages (remote.OutageGuard)."""
        return self._guard.call(call, *args)

    # -- records ---------------------------------------------------------------------------------------------------
    def _prepare_dirs(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        private_state_dir(self.state_dir, "Slurm", SlurmError)

    @property
    def _records_path(self) -> Path:
        return self.state_dir / "runs.jsonl"

    def _load_records(self) -> None:
        try:
            lines = self._records_path.read_text().splitlines()
        except FileNotFoundError:
            return
        for line in lines:
            try:
                entry = json.loads(line)
                self._records[(int(entry["job"]), str(entry["admission"]))] = int(entry["slurm"])
            except (ValueError, KeyError, TypeError):
                continue  # a line torn by a crash mid-write

    def _record(self, job_id: int, admission: str, slurm_id: int) -> None:
        """Remember a run Slurm accepted (appended, not synced: it must survive a kill of the server, which the page
        cache does; a crash of the host between submit and here can at worst lose the record of a fresh job)."""
        self._records[(job_id, admission)] = slurm_id
        with open(self._records_path, "a") as f:
            f.write(json.dumps({"job": job_id, "admission": admission, "slurm": slurm_id, "at": time.time()}) + "\n")

    def _prune_records(self, holding: dict[int, str]) -> None:
        keep = {key: sid for key, sid in self._records.items() if key[0] in holding or key[0] in self._runs}
        if len(keep) == len(self._records):
            return
        tmp = self._records_path.with_name(f".runs.{os.getpid()}.tmp")
        tmp.write_text("".join(json.dumps({"job": j, "admission": a, "slurm": s}) + "\n" for (j, a), s in keep.items()))
        os.replace(tmp, self._records_path)
        self._records = keep

    # -- inventory -------------------------------------------------------------------------------------------------
    def inventory(self) -> list[NodeInfo]:
        nodes = []
        for node in self._slurm(self.api.nodes):
            name = str(node.get("name") or "")
            if not name:
                continue
            gpus = gres_gpus(str(node.get("gres") or ""))
            self._nodes[name] = NodeMeta(tuple(node.get("partitions") or ()), gpus)
            status = node_status(node)
            health = "healthy" if status == "ready" else "unhealthy"
            devices = tuple(DeviceInfo(index=i, model=kind or "gpu", health=health) for i, kind in enumerate(gpus))
            nodes.append(NodeInfo(name=name, cpu=float(node.get("cpus") or 0),
                                  memory_mib=int(node.get("real_memory") or 0), devices=devices, status=status))
        return nodes

    def _node(self, name: str) -> NodeMeta:
        if name not in self._nodes:
            self.inventory()
        meta = self._nodes.get(name)
        if meta is None:
            raise SlurmLaunchError(f"node {name!r} is not in this Slurm cluster")
        return meta

    # -- launching -------------------------------------------------------------------------------------------------
    def _handle(self, run: Run) -> str:
        return str(run.slurm_id)

    def launch(self, launch: Launch, now: float) -> str:
        run = self._runs.get(launch.job_id)
        if run is not None and run.admission == launch.admission:
            return self._handle(run)
        known = self._records.get((launch.job_id, launch.admission))
        if known is not None:  # Slurm already has this run (launched again after a restart): never submit twice
            run = self._runs[launch.job_id] = Run(launch.job_id, launch.admission, known)
            return self._handle(run)
        slurm_id = self._slurm(self.api.submit, self.job_spec(launch))
        self._record(launch.job_id, launch.admission, slurm_id)
        run = self._runs[launch.job_id] = Run(launch.job_id, launch.admission, slurm_id)
        return self._handle(run)

    def job_spec(self, launch: Launch) -> JobSpec:
        """The Slurm job of an admitted launch (refused when Slurm cannot express it)."""
        fractions = [(index, milli) for index, milli in launch.devices if milli != 1000]
        if fractions:
            index, milli = fractions[0]
            raise SlurmLaunchError(
                f"job {launch.job_id} asks for {milli / 1000:g} of GPU {index} on {launch.node}: Slurm's GRES "
                f"cannot express a fraction of a GPU, so a Slurm cluster runs whole-GPU jobs only")
        meta = self._node(launch.node) if launch.node else None
        gang = tuple(getattr(launch, "nodes", ()) or ())
        for name in gang:
            self._node(name)  # each node must be in Slurm's inventory
        gres = None
        if launch.devices:
            if meta is None:
                raise SlurmLaunchError(f"job {launch.job_id} has GPUs but no node to run on")
            kinds = set()
            for index, _ in launch.devices:
                if not 0 <= index < len(meta.gpu_types):
                    raise SlurmLaunchError(f"node {launch.node} has no GPU {index} in Slurm's inventory")
                kinds.add(meta.gpu_types[index])
            if len(kinds) > 1:
                raise SlurmLaunchError(f"job {launch.job_id} mixes GPU models on {launch.node}; Slurm's GRES asks "
                                       f"for one type per request here")
            kind = kinds.pop()
            gres = f"gpu:{kind}:{len(launch.devices)}" if kind else f"gpu:{len(launch.devices)}"
        time_limit = max(1, math.ceil(launch.time_limit_s / 60)) if launch.time_limit_s else None
        env = {"PATH": self.config.job_path, **{str(k): str(v) for k, v in launch.env.items()},
               **folder_variables(launch.mounts), "ALLOT_JOB_ID": str(launch.job_id)}
        prefix = self.config.name_prefix
        return JobSpec(
            name=f"{prefix}-{launch.job_id}", comment=f"{prefix}:{launch.job_id}:{launch.admission}",
            script=batch_script(launch, max(len(gang), 1)), environment=env,
            work_dir=str(self.config.work_dir or self.log_dir), output=str(self.log_path(launch.job_id)),
            partition=self._partition(launch, meta), nodelist=",".join(gang) if len(gang) > 1 else launch.node,
            gres=gres, cpus=max(1, math.ceil(launch.cpu)), memory_mib=launch.memory_mib or None,
            time_limit_min=time_limit, user=self.account_of(launch.owner), nodes=max(len(gang), 1))

    def account_of(self, owner: str | None) -> str | None:
        """The account the owner's jobs run as: theirs in the map, else that of '*' (everyone else), else None."""
        accounts = self.config.accounts
        return accounts.get(owner, accounts.get("*")) if owner else accounts.get("*")

    def log_path(self, job_id: int) -> Path:
        return self.log_dir / f"job-{int(job_id)}.log"

    def _partition(self, launch: Launch, meta: NodeMeta | None) -> str | None:
        pool = getattr(launch, "pool", None)  # a Launch that names its pool (the cluster's pool -> partition map)
        if pool and pool in self.config.partitions:
            return self.config.partitions[pool]
        if meta is None or not meta.partitions:
            return self.config.default_partition
        if len(meta.partitions) == 1:
            return meta.partitions[0]
        models = {kind for kind in meta.gpu_types if kind}
        for candidate in (*sorted(models), self.config.default_partition):
            if candidate in meta.partitions:
                return candidate
        return meta.partitions[0]

    # -- stopping --------------------------------------------------------------------------------------------------
    def cancel(self, job_id: int, now: float) -> None:
        run = self._runs.pop(job_id, None)
        if run is not None:
            slurm_ids = [run.slurm_id]
        else:  # not tracked (an engine new since a restart): every run the records know of this job
            slurm_ids = [sid for (jid, _), sid in self._records.items() if jid == job_id]
        for slurm_id in slurm_ids:
            self._cancel(slurm_id)

    def _cancel(self, slurm_id: int) -> None:
        try:
            self._slurm(self.api.cancel, slurm_id)
        except SlurmUnavailable:
            self._retry_cancel.add(slurm_id)  # poll tries again once Slurm answers
            raise
        self._retry_cancel.discard(slurm_id)

    # -- observing -------------------------------------------------------------------------------------------------
    def _list_jobs(self) -> list[dict] | None:
        """The jobs Slurm knows, or NOT_MODIFIED when none changed since the last listing."""
        at = time.time()
        full = self._listed_at is None or at - self._full_at >= FULL_LISTING_S
        since = None if full else int(self._listed_at) - SINCE_MARGIN_S
        jobs = self._slurm(self.api.jobs, since)
        self._listed_at = at
        if full:
            self._full_at = at
        return jobs

    def poll(self, now: float) -> list[JobEvent]:
        events, self._pending = self._pending, []
        for slurm_id in sorted(self._retry_cancel):
            self._cancel(slurm_id)
        if not self._runs:
            return events
        jobs = self._list_jobs()
        if jobs is NOT_MODIFIED:
            return events
        by_id = {int(j["job_id"]): j for j in jobs if "job_id" in j}
        for job_id, run in list(self._runs.items()):
            job = by_id.get(run.slurm_id)
            if job is None:
                del self._runs[job_id]
                events.append(JobEvent(job_id, "failed", now, None,
                                       f"Slurm no longer knows its job {run.slurm_id} (purged or lost by slurmctld)"))
                continue
            state = state_of(job)
            if state in ENDED_STATES:
                if not run.started:
                    events.append(JobEvent(job_id, "started", _time(job, "start_time") or now))
                kind, code, message = ending(job)
                events.append(JobEvent(job_id, kind, _time(job, "end_time") or now, code, message))
                del self._runs[job_id]
            elif state in STARTED_STATES and not run.started:
                run.started = True
                events.append(JobEvent(job_id, "started", _time(job, "start_time") or now))
        return events

    def next_event_at(self) -> float | None:
        return 0.0 if self._pending else None

    def tracked_jobs(self) -> set[int]:
        """The jobs whose runs this engine watches now (the scheduler asks about the other holding jobs, reconcile.py)."""
        return set(self._runs)

    # -- recovery (base.Recovers) ----------------------------------------------------------------------------------
    def _jobs_at(self, now: float) -> list[dict]:
        """A full listing, shared by every question of one recovery round (they all pass the same `now`)."""
        if self._snapshot is None or self._snapshot[0] != now:
            self._snapshot = (now, self._slurm(self.api.jobs, None) or [])
        return self._snapshot[1]

    def _ours(self, job: dict) -> tuple[int, str] | None:
        """(job id, admission) of a Slurm job this engine submitted, from its comment; None for anyone else's."""
        prefix, sep, rest = str(job.get("comment") or "").partition(":")
        if not sep or prefix != self.config.name_prefix or job.get("name") != f"{prefix}-{rest.split(':', 1)[0]}":
            return None
        job_id, _, admission = rest.partition(":")
        try:
            return int(job_id), admission
        except ValueError:
            return None

    def reattach(self, launch: Launch, now: float) -> Reattached:
        """After a restart: adopt the run when it still runs in Slurm, else say how it ended."""
        run = self._runs.get(launch.job_id)
        if run is not None and run.admission == launch.admission:
            return _reattached(RUNS, handle=self._handle(run))
        key = (launch.job_id, launch.admission)
        found = [j for j in self._jobs_at(now) if self._ours(j) == key]
        if not found and key in self._records:
            found = [j for j in self._jobs_at(now) if j.get("job_id") == self._records[key]]
        if not found:
            if key in self._records:
                return _reattached(LOST, ended_at=now,
                                   message=f"Slurm no longer knows its job {self._records[key]} (it ended longer "
                                           f"ago than Slurm keeps finished jobs), so its exit code is lost")
            return _reattached(UNKNOWN)
        job = max(found, key=lambda j: int(j.get("job_id") or 0))
        slurm_id = int(job["job_id"])
        if key not in self._records:
            self._record(launch.job_id, launch.admission, slurm_id)  # submitted just before the server stopped
        started_at = _time(job, "start_time")
        if state_of(job) in ENDED_STATES:
            kind, code, message = ending(job)
            return _reattached(ENDED, exit_code=code, started_at=started_at, ended_at=_time(job, "end_time") or now,
                               message=message if kind == "failed" else None, handle=str(slurm_id))
        # Adopted: tracked like a run it launched, without a second 'started' event (even while Slurm holds it
        # pending: the control plane already counts it as placed).
        self._runs[launch.job_id] = Run(launch.job_id, launch.admission, slurm_id, started=True)
        log.info("job %s: adopted Slurm job %s (%s)", launch.job_id, slurm_id, state_of(job))
        running = state_of(job) in STARTED_STATES
        return _reattached(RUNS, started_at=started_at if running else None, handle=str(slurm_id))

    def stop_orphans(self, holding: dict[int, str], now: float) -> list[str]:
        """Cancel the live Slurm jobs of this engine that no holding job owns (job id -> admission)."""
        stopped = []
        for job in self._jobs_at(now):
            owner = self._ours(job)
            if owner is None or state_of(job) in ENDED_STATES:
                continue
            job_id, admission = owner
            if holding.get(job_id) == admission:
                continue
            run = self._runs.get(job_id)
            if run is not None and run.slurm_id == int(job["job_id"]):
                continue  # launched since the holding set was taken
            try:
                self._cancel(int(job["job_id"]))
            except SlurmUnavailable:
                raise
            except SlurmError as exc:  # refused (another user's job): the others are still stopped
                log.warning("could not stop orphan Slurm job %s of job %s: %s", job["job_id"], job_id, exc)
                continue
            stopped.append(f"job {job_id} (admission {admission or '-'}, Slurm job {job['job_id']}, "
                           f"{state_of(job).lower()})")
        self._prune_records(holding)
        return stopped

    def close(self) -> None:
        """Release the connection. Jobs keep running in Slurm: they outlive the server and are adopted on return."""
        self._guard.close()
        self.api.close()


def _time(job: dict, key: str) -> float | None:
    value = job.get(key)
    if isinstance(value, dict):  # later API versions: {"set": true, "number": ...}
        value = value.get("number") if value.get("set", True) else None
    return float(value) if isinstance(value, (int, float)) and value > 0 else None
