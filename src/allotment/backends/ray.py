"""The Ray engine: admitted jobs run as Ray jobs through the Jobs API; inventory and states come from Ray.

allotment keeps admission authority; this engine only submits what was admitted, with its GPUs, CPUs and memory
as the entrypoint's resources (`entrypoint_num_gpus`, `entrypoint_num_cpus`, `entrypoint_memory`), the custom
resource of its pool, and pinned to its node. It talks to the head's Jobs API through `ray_client.RayJobsApi`
(Ray's own `JobSubmissionClient`); Ray itself is optional and imported on first use.

Mapping:
- GPUs by model are custom resources on Ray's nodes (`ray start --num-gpus 6 --resources '{"a100": 4, "h100": 2}'`):
  a node's devices are its GPU models' custom resources, indexed 0..N-1 in the order of their names (`a100` x4,
  then `h100` x2), and the rest of its `GPU` count (untyped: the node's `accelerator_type`, else `gpu`). Which
  custom resources name GPU models: the values of `RayConfig.resources` (pool -> resource) and `gpu_resources`;
  where neither is configured, every custom resource of a node that has GPUs.
- A launch asks for `entrypoint_num_gpus` = its GPUs (fractions included: Ray shares a GPU by fractions), the
  custom resource of its pool (`RayConfig.resources[pool]` when the launch names a pool, else the resources of
  the devices' models on its node) in the same amount, and a sliver of its node's `node:<ip>` resource so it runs
  there. Ray picks which of the node's GPUs (CUDA_VISIBLE_DEVICES as Ray sets it), as Slurm does.
- A job placed on several nodes (Launch.nodes) gets a placement group with one bundle per node, each pinned to its
  node with that node's share, created by a small driver in front of its command (ray_gang.py): the Jobs API itself
  places only the entrypoint.
- A job is never submitted for more than some live node has: Ray would keep it PENDING for ever, and `stop_job`
  does not end such a job (ray-project/ray#58353). The engine checks the cluster's nodes first and refuses
  (RayLaunchError) naming what is missing.
- States: RUNNING -> started (PENDING is not started yet); SUCCEEDED -> succeeded; FAILED -> failed with Ray's
  message and the entrypoint's exit code; STOPPED by anyone but this engine -> failed. A job this engine stops
  (cancel, preemption) gives no event, as on the other engines. Ray has no time limit: the engine stops a job
  past its limit and reports it failed ("time limit reached").
- Logs: Ray keeps each job's output; the engine copies it into `<log_dir>/job-<id>.log` when the job ends (also
  when this engine stopped it) and every `log_interval_s` while it runs. A job run again after preemption keeps
  its earlier runs' output above the new run's (each run overwrites its own part only, from `log_from`).

A job is untrusted code: it gets an explicit environment (`runtime_env.env_vars`: the launch's `env` and
ALLOT_JOB_ID), never the server's; Ray does not send the submitter's environment. It does start the entrypoint
with the raylet's environment (PATH included) underneath, so a Ray head must be started with a clean one (as
scripts/ray.sh does), never from the server's.

Finding jobs again after a restart of the server (base.Recovers): a run's submission id is
`<prefix>-<job id>-<admission>` with the same in its metadata, so submitting it twice is refused by Ray (and
adopted here), and the engine appends (job, admission, submission) to `<state_dir>/runs.jsonl` once Ray accepted
it. `reattach` asks Ray about the run: adopts it when it is pending or running, reports how it ended, and calls a
run the records know but Ray forgot (the head restarted without its state) `lost`, never launching it twice.
`stop_orphans` stops the live jobs with this engine's prefix that no holding job owns. Each allotment installation
sharing a Ray cluster needs a prefix of its own. `close` leaves jobs running: they are adopted on return.

Outages: while the head is down or hanging, every call fails at once with RayUnavailable for remote.OUTAGE_BACKOFF_S
after a failed try (`outage` says since when and why, for the cluster's status); nothing is marked failed; stops
that could not be delivered are sent again once the head answers.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import time
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path

from allotment.backends import ray_gang
from allotment.backends.base import ENDED, LOST, RUNS, UNKNOWN, DeviceInfo, JobEvent, Launch, NodeInfo, Reattached
from allotment.backends.ray_client import (
    RayError,
    RayJob,
    RayJobExists,
    RayJobsApi,
    RayNode,
    RayNotFound,
    RayUnavailable,
)
from allotment.backends.remote import ANSWER_S, OutageGuard, private_state_dir
from allotment.backends.slurm import batch_script

log = logging.getLogger("allotment.backends.ray")

__all__ = ["RayBackend", "RayConfig", "RayError", "RayLaunchError", "RayUnavailable"]

ENDED_STATES = frozenset({"SUCCEEDED", "FAILED", "STOPPED"})
# Ray's own resources and the prefixes of the ones it adds per node: never GPU models.
RAY_OWN = frozenset({"CPU", "GPU", "memory", "object_store_memory", "TPU", "NPU", "HPU", "neuron_cores"})
NODE_SLIVER = 0.001  # of a node's `node:<ip>` resource: pins a job to that node and takes nothing from others
# The nodes a launch is checked against are at most this old: a burst of launches asks Ray for them once, and a
# node's resources do not change while it lives (a node that died meanwhile leaves its jobs pending until it is back).
NODES_FRESH_S = 5.0
MIB = 1024 * 1024


class RayLaunchError(ValueError):
    """A launch this engine will not submit (a resource no live node has, a node Ray does not know)."""


@dataclass(frozen=True)
class RayConfig:
    """How to reach one Ray cluster's Jobs API (the dashboard's address, `http://head:8265`) and where logs go."""

    address: str = field(repr=False)  # may carry credentials
    log_dir: Path
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    resources: dict[str, str] = field(default_factory=dict)  # pool name -> custom resource of its GPUs
    gpu_resources: tuple[str, ...] = ()  # further custom resources that name GPU models
    state_dir: Path | None = None  # the engine's run records; default <log_dir>/.allot-ray (only the server's)
    name_prefix: str = "allot"
    job_path: str | None = None  # PATH for jobs; None: the raylet's (the head's own environment)
    timeout_s: float = 10.0
    log_interval_s: float = 10.0  # how often a running job's log file is refreshed
    answer_s: float = ANSWER_S  # how long a call may take before Ray counts as unreachable (remote.OutageGuard)

    def api(self) -> RayJobsApi:
        return RayJobsApi(self.address, self.headers, self.timeout_s)


@dataclass
class Run:
    """A Ray job this engine watches: one run (job id, admission) of an allotment job."""

    job_id: int
    admission: str
    submission_id: str
    log_from: int = 0  # where this run's output starts in the job's log file
    started: bool = False
    started_at: float | None = None
    time_limit_s: float | None = None
    logged_at: float = 0.0


@dataclass(frozen=True)
class NodeMeta:
    name: str
    alive: bool
    resources: dict[str, float]
    gpu_resources: tuple[str | None, ...]  # the custom resource of each device index (None: an untyped GPU)

    @property
    def pin(self) -> str | None:
        """The node's own `node:<ip>` resource (Ray adds one per node)."""
        return next((r for r in self.resources if r.startswith("node:") and not r.startswith("node:__")), None)


def ending(job: RayJob) -> tuple[str, int | None, str | None]:
    """(event kind, exit code, message) of a job Ray reports ended."""
    if job.status == "SUCCEEDED":
        return "succeeded", 0, None
    if job.status == "STOPPED":
        return "failed", job.exit_code, "stopped in Ray, not by allotment"
    # Ray's message for a failed entrypoint ends with its last logs: the job's output belongs in its log file.
    message = (job.message or "").split(", last available logs", 1)[0].strip().splitlines()
    parts = [f"Ray: {job.status}" + (f" ({job.error_type})" if job.error_type else "")]
    if message:
        parts.append(message[0][:500])
    if job.exit_code is not None and job.exit_code < 0:
        parts.append(f"killed by signal {-job.exit_code}")
    elif job.exit_code is not None and not any("exit code" in p for p in parts):
        parts.append(f"exit code {job.exit_code}")
    return "failed", job.exit_code, ", ".join(parts)


def _reattached(state: str, **values) -> Reattached:
    if "handle" not in Reattached.__dataclass_fields__:
        values.pop("handle", None)
    return Reattached(state, **values)


class RayBackend:
    name = "ray"
    reports_idleness = False  # the Jobs API says nothing of how busy a job is

    def __init__(self, config: RayConfig, api: RayJobsApi | None = None):
        self.config = config
        self.api = api if api is not None else config.api()
        self.log_dir = Path(config.log_dir)
        self.state_dir = Path(config.state_dir) if config.state_dir else self.log_dir / ".allot-ray"
        self._runs: dict[int, Run] = {}
        self._closing: dict[str, Run] = {}  # stopped by this engine: their final output still to copy
        self._pending: list[JobEvent] = []
        self._nodes: dict[str, NodeMeta] = {}
        self._nodes_at = float("-inf")  # time.monotonic() of the last listing
        self._records: dict[tuple[int, str], dict] = {}
        self._retry_stop: set[str] = set()  # submission ids whose stop failed while the head was unreachable
        self._snapshot: tuple[float, dict[str, RayJob]] | None = None  # one listing per recovery round
        # (since when, Ray's error) while the cluster is unreachable, for the cluster's status; None when it answers
        self._guard = OutageGuard("Ray", RayUnavailable, log, answer_s=config.answer_s)
        self._prepare_dirs()
        self._load_records()

    @property
    def outage(self) -> tuple[float, str] | None:
        """(since when, Ray's last error) while Ray is unreachable; None when it answers."""
        return self._guard.outage

    def _ray(self, call, *args):
        """Call Ray, keeping track of outages (remote.OutageGuard)."""
        return self._guard.call(call, *args)

    # -- records ---------------------------------------------------------------------------------------------------
    def _prepare_dirs(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        private_state_dir(self.state_dir, "Ray", RayError)

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
                self._records[(int(entry["job"]), str(entry["admission"]))] = {
                    "submission": str(entry["submission"]), "log_from": int(entry.get("log_from") or 0)}
            except (ValueError, KeyError, TypeError):
                continue  # a line torn by a crash mid-write

    def _record(self, run: Run) -> None:
        """Remember a run Ray accepted (appended, not synced: it must survive a kill of the server, which the page
        cache does)."""
        entry = {"submission": run.submission_id, "log_from": run.log_from}
        self._records[(run.job_id, run.admission)] = entry
        with open(self._records_path, "a") as f:
            f.write(json.dumps({"job": run.job_id, "admission": run.admission, **entry, "at": time.time()}) + "\n")

    def _prune_records(self, holding: dict[int, str]) -> None:
        keep = {key: e for key, e in self._records.items() if key[0] in holding or key[0] in self._runs}
        if len(keep) == len(self._records):
            return
        tmp = self._records_path.with_name(f".runs.{os.getpid()}.tmp")
        tmp.write_text("".join(json.dumps({"job": j, "admission": a, **e}) + "\n" for (j, a), e in keep.items()))
        os.replace(tmp, self._records_path)
        self._records = keep

    def submission_id(self, job_id: int, admission: str) -> str:
        return f"{self.config.name_prefix}-{int(job_id)}-{admission}"

    # -- inventory -------------------------------------------------------------------------------------------------
    def _model_resources(self, resources: dict[str, float]) -> list[str]:
        named = set(self.config.resources.values()) | set(self.config.gpu_resources)
        if not named:  # nothing configured: every custom resource of a node with GPUs names a model
            if not resources.get("GPU"):
                return []
            named = {r for r in resources if r not in RAY_OWN and ":" not in r}
        return sorted(r for r in named if resources.get(r, 0) >= 1)

    def _meta(self, node: RayNode, name: str) -> NodeMeta:
        gpus = int(node.resources.get("GPU", 0))
        kinds: list[str | None] = []
        for resource in self._model_resources(node.resources):
            kinds.extend([resource] * int(node.resources[resource]))
        kinds = kinds[:gpus] + [None] * (gpus - len(kinds))
        return NodeMeta(name, node.alive, dict(node.resources), tuple(kinds))

    def _untyped_model(self, meta: NodeMeta) -> str:
        accelerator = next((r.split(":", 1)[1] for r in meta.resources if r.startswith("accelerator_type:")), None)
        return accelerator.lower() if accelerator else "gpu"

    def inventory(self) -> list[NodeInfo]:
        found = self._ray(self.api.nodes)
        # A node Ray lists twice (a dead one and the live one that replaced it at the same address): the live one.
        found.sort(key=lambda n: (not n.alive, n.node_id))
        metas: dict[str, NodeMeta] = {}
        for node in found:
            name = node.name or node.node_id[:12]
            if name in metas:
                if not node.alive:
                    continue
                name = f"{name}-{node.node_id[:8]}"
            metas[name] = self._meta(node, name)
        self._nodes, self._nodes_at = metas, time.monotonic()
        nodes = []
        for name, meta in metas.items():
            health = "healthy" if meta.alive else "unhealthy"
            untyped = self._untyped_model(meta)
            devices = tuple(DeviceInfo(index=i, model=kind or untyped, health=health)
                            for i, kind in enumerate(meta.gpu_resources))
            nodes.append(NodeInfo(name=name, cpu=meta.resources.get("CPU", 0.0),
                                  memory_mib=int(meta.resources.get("memory", 0) // MIB), devices=devices,
                                  status="ready" if meta.alive else "down"))
        return nodes

    # -- launching -------------------------------------------------------------------------------------------------
    def launch(self, launch: Launch, now: float) -> str:
        run = self._runs.get(launch.job_id)
        if run is not None and run.admission == launch.admission:
            return run.submission_id
        known = self._records.get((launch.job_id, launch.admission))
        if known is not None:  # Ray already has this run (launched again after a restart): never submit twice
            run = self._track(launch, known["submission"], known["log_from"])
            return run.submission_id
        submission_id = self.submission_id(launch.job_id, launch.admission)
        command, request = launch.command, None
        gang = tuple(getattr(launch, "nodes", ()) or ())
        if len(gang) > 1:  # one bundle per node (each checked against its node); the driver sits on the first
            bundles = [self.request(replace(launch, node=name, nodes=())) for name in gang]
            command = ray_gang.entrypoint(launch.command, bundles, submission_id)
            pin = self._nodes[gang[0]].pin
            request = {pin: NODE_SLIVER} if pin else {}
        request = self.request(launch) if request is None else request
        if launch.config_file is not None:  # the owner's configuration file is written first, as on Slurm
            command = "sh -c " + shlex.quote(batch_script(replace(launch, command=command)))
        env = {str(k): str(v) for k, v in launch.env.items()}
        if self.config.job_path:
            env["PATH"] = self.config.job_path
        env["ALLOT_JOB_ID"] = str(launch.job_id)
        if len(gang) > 1:
            env["ALLOT_NODES"] = ",".join(gang)
        resources = {k: v for k, v in request.items() if k not in ("CPU", "GPU", "memory")}
        metadata = {"allotment": self.config.name_prefix, "allotment_job": str(launch.job_id),
                    "allotment_admission": launch.admission}
        try:
            self._ray(lambda: self.api.submit(
                submission_id, command, num_cpus=request.get("CPU"), num_gpus=request.get("GPU"),
                memory=int(request["memory"]) if "memory" in request else None, resources=resources,
                env_vars=env, metadata=metadata))
        except RayJobExists:
            log.info("job %s: Ray already has %s (submitted before a restart): adopted", launch.job_id,
                     submission_id)
        run = self._track(launch, submission_id, self._log_size(launch.job_id))
        self._record(run)
        return submission_id

    def _track(self, launch: Launch, submission_id: str, log_from: int, **state) -> Run:
        run = Run(launch.job_id, launch.admission, submission_id, log_from, time_limit_s=launch.time_limit_s, **state)
        self._runs[launch.job_id] = run
        return run

    def request(self, launch: Launch) -> dict[str, float]:
        """What the job asks Ray for (CPU, GPU, memory in bytes, custom resources), checked against the live nodes:
        refused when no node could ever run it."""
        if time.monotonic() - self._nodes_at > NODES_FRESH_S or (launch.node and launch.node not in self._nodes):
            self.inventory()
        meta = None
        if launch.node:
            meta = self._nodes.get(launch.node)
            if meta is None:
                raise RayLaunchError(f"node {launch.node!r} is not in this Ray cluster")
        request: dict[str, float] = defaultdict(float)
        gpus = sum(milli for _, milli in launch.devices) / 1000
        if gpus:
            request["GPU"] = gpus
        if launch.cpu:
            request["CPU"] = float(launch.cpu)
        if launch.memory_mib:
            request["memory"] = float(launch.memory_mib * MIB)
        pool = getattr(launch, "pool", None)  # a Launch that names its pool (the cluster's pool -> resource map)
        if pool and pool in self.config.resources:
            request[self.config.resources[pool]] += gpus or NODE_SLIVER
        elif launch.devices and meta is not None:
            for index, milli in launch.devices:
                if not 0 <= index < len(meta.gpu_resources):
                    raise RayLaunchError(f"node {launch.node} has no GPU {index} in Ray's inventory")
                if meta.gpu_resources[index]:
                    request[meta.gpu_resources[index]] += milli / 1000
        if meta is not None and meta.pin:
            request[meta.pin] = NODE_SLIVER
        self._check_feasible(launch, dict(request), meta)
        return dict(request)

    def _check_feasible(self, launch: Launch, request: dict[str, float], meta: NodeMeta | None) -> None:
        """Refuse what no live node has: Ray would leave it pending for ever, and stop_job does not end it."""
        candidates = [meta] if meta is not None else list(self._nodes.values())
        alive = [m for m in candidates if m.alive]
        if any(all(m.resources.get(k, 0.0) + 1e-9 >= v for k, v in request.items()) for m in alive):
            return
        where = f"node {launch.node}" if meta is not None else "any live node of this Ray cluster"
        if not alive:
            raise RayLaunchError(f"job {launch.job_id}: {where} is down; Ray would keep the job pending for ever, "
                                 f"so it is not submitted")
        unknown = sorted(k for k in request if all(k not in m.resources for m in alive))
        if unknown:
            raise RayLaunchError(f"job {launch.job_id} asks for the resource {', '.join(map(repr, unknown))}, which "
                                 f"{where} does not have; Ray would keep the job pending for ever, so it is not "
                                 f"submitted")
        asked = ", ".join(f"{k} {v:g}" for k, v in sorted(request.items()))
        raise RayLaunchError(f"job {launch.job_id} asks for {asked}, more than {where} has; Ray would keep the job "
                             f"pending for ever, so it is not submitted")

    # -- logs ------------------------------------------------------------------------------------------------------
    def log_path(self, job_id: int) -> Path:
        return self.log_dir / f"job-{int(job_id)}.log"

    def _log_size(self, job_id: int) -> int:
        try:
            return self.log_path(job_id).stat().st_size
        except FileNotFoundError:
            return 0

    def _copy_logs(self, run: Run, now: float) -> None:
        """Write the run's output (all of it: Ray keeps it whole) into its part of the job's log file."""
        run.logged_at = now
        try:
            text = self._ray(self.api.logs, run.submission_id)
        except RayNotFound:
            return
        except RayError as exc:  # the next poll tries again; a failure here must not stop the others' events
            log.debug("job %s: no logs from Ray: %s", run.job_id, exc)
            return
        path = self.log_path(run.job_id)
        path.touch(exist_ok=True)
        with open(path, "r+b") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(min(run.log_from, size))
            f.write(text.encode("utf-8", "replace"))
            f.truncate()

    # -- stopping --------------------------------------------------------------------------------------------------
    def cancel(self, job_id: int, now: float) -> None:
        run = self._runs.pop(job_id, None)
        runs = [run] if run is not None else [  # not tracked (an engine new since a restart): every recorded run
            Run(job_id, admission, e["submission"], e["log_from"])
            for (jid, admission), e in self._records.items() if jid == job_id]
        for one in runs:
            self._closing[one.submission_id] = one
            self._stop(one.submission_id)

    def _stop(self, submission_id: str) -> None:
        try:
            self._ray(self.api.stop, submission_id)
        except RayNotFound:
            pass
        except RayUnavailable:
            self._retry_stop.add(submission_id)  # poll tries again once Ray answers
            raise
        self._retry_stop.discard(submission_id)

    # -- observing -------------------------------------------------------------------------------------------------
    def poll(self, now: float) -> list[JobEvent]:
        events, self._pending = self._pending, []
        for submission_id in sorted(self._retry_stop):
            self._stop(submission_id)
        if not self._runs and not self._closing:
            return events
        jobs = {j.submission_id: j for j in self._ray(self.api.jobs)}
        for submission_id, run in list(self._closing.items()):
            job = jobs.get(submission_id)
            if job is None or job.status in ENDED_STATES:
                if job is not None:
                    self._copy_logs(run, now)
                del self._closing[submission_id]
        for job_id, run in list(self._runs.items()):
            job = jobs.get(run.submission_id)
            if job is None:
                del self._runs[job_id]
                events.append(JobEvent(job_id, "failed", now, None,
                                       f"Ray no longer knows its job {run.submission_id} (the head restarted "
                                       f"without its state)"))
                continue
            if job.status in ENDED_STATES:
                self._copy_logs(run, now)
                if not run.started:
                    events.append(JobEvent(job_id, "started", job.start_time or now))
                kind, code, message = ending(job)
                events.append(JobEvent(job_id, kind, job.end_time or now, code, message))
                del self._runs[job_id]
                continue
            if job.status == "RUNNING" and not run.started:
                run.started, run.started_at = True, now
                events.append(JobEvent(job_id, "started", now))
            if run.started and run.time_limit_s and now - (run.started_at or now) >= run.time_limit_s:
                del self._runs[job_id]
                self._closing[run.submission_id] = run
                try:
                    self._stop(run.submission_id)
                except RayUnavailable:
                    pass  # sent again by the next poll (_retry_stop); the other jobs' events must not be lost
                events.append(JobEvent(job_id, "failed", now, None, "time limit reached"))
            elif run.started and now - run.logged_at >= self.config.log_interval_s:
                self._copy_logs(run, now)
        return events

    def next_event_at(self) -> float | None:
        return 0.0 if self._pending else None

    def tracked_jobs(self) -> set[int]:
        """The jobs whose runs this engine watches now (the scheduler asks about the other holding jobs, reconcile.py)."""
        return set(self._runs)

    # -- recovery (base.Recovers) ----------------------------------------------------------------------------------
    def _jobs_at(self, now: float) -> dict[str, RayJob]:
        """A full listing, shared by every question of one recovery round (they all pass the same `now`)."""
        if self._snapshot is None or self._snapshot[0] != now:
            self._snapshot = (now, {j.submission_id: j for j in self._ray(self.api.jobs)})
        return self._snapshot[1]

    def _ours(self, job: RayJob) -> tuple[int, str] | None:
        """(job id, admission) of a Ray job this engine submitted, from its metadata; None for anyone else's."""
        meta = job.metadata
        if meta.get("allotment") != self.config.name_prefix or "allotment_job" not in meta:
            return None
        try:
            key = int(meta["allotment_job"]), meta.get("allotment_admission", "")
        except ValueError:
            return None
        return key if job.submission_id == self.submission_id(*key) else None

    def reattach(self, launch: Launch, now: float) -> Reattached:
        """After a restart: adopt the run when it is still pending or running in Ray, else say how it ended."""
        run = self._runs.get(launch.job_id)
        if run is not None and run.admission == launch.admission:
            return _reattached(RUNS, handle=run.submission_id)
        key = (launch.job_id, launch.admission)
        record = self._records.get(key)
        submission_id = record["submission"] if record else self.submission_id(*key)
        job = self._jobs_at(now).get(submission_id)
        if job is None:
            if record is not None:
                return _reattached(LOST, ended_at=now,
                                   message=f"Ray no longer knows its job {submission_id} (the head restarted without "
                                           f"its state), so how it ended is lost")
            return _reattached(UNKNOWN)
        log_from = record["log_from"] if record else self._log_size(launch.job_id)
        if job.status in ENDED_STATES:
            self._copy_logs(Run(launch.job_id, launch.admission, submission_id, log_from), now)
            kind, code, message = ending(job)
            return _reattached(ENDED, exit_code=code, started_at=job.start_time, ended_at=job.end_time or now,
                               message=message if kind == "failed" else None, handle=submission_id)
        # Adopted: tracked like a run it launched, without a second 'started' event (even while Ray holds it
        # pending: the control plane already counts it as placed).
        run = self._track(launch, submission_id, log_from, started=True, started_at=job.start_time or now)
        if record is None:
            self._record(run)  # submitted just before the server stopped
        log.info("job %s: adopted Ray job %s (%s)", launch.job_id, submission_id, job.status)
        return _reattached(RUNS, started_at=job.start_time if job.status == "RUNNING" else None,
                           handle=submission_id)

    def stop_orphans(self, holding: dict[int, str], now: float) -> list[str]:
        """Stop the live Ray jobs of this engine that no holding job owns (job id -> admission)."""
        stopped = []
        for job in self._jobs_at(now).values():
            owner = self._ours(job)
            if owner is None or job.status in ENDED_STATES:
                continue
            job_id, admission = owner
            if holding.get(job_id) == admission:
                continue
            run = self._runs.get(job_id)
            if run is not None and run.submission_id == job.submission_id:
                continue  # launched since the holding set was taken
            try:
                self._stop(job.submission_id)
            except RayUnavailable:
                raise
            except RayError as exc:  # refused: the others are still stopped
                log.warning("could not stop orphan Ray job %s of job %s: %s", job.submission_id, job_id, exc)
                continue
            stopped.append(f"job {job_id} (admission {admission or '-'}, Ray job {job.submission_id}, "
                           f"{job.status.lower()})")
        self._prune_records(holding)
        return stopped

    def close(self) -> None:
        """Release the client. Jobs keep running in Ray: they outlive the server and are adopted on its return."""
        self._guard.close()
        self.api.close()
