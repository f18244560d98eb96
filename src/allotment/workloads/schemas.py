"""Request and response shapes of the jobs API. Quantities are text or numbers: "4", "0.5", "16Gi"."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema
from pydantic_core import PydanticCustomError

from allotment.api.fields import (
    Amount,
    Command,
    Duration,
    Int,
    Labels,
    Name,
    PlainCommandFirst,
    PlainLabelsFirst,
    Ref,
    Refs,
    SchemaRules,
    Text,
)
from allotment.core import jobenv, limits, names
from allotment.core.quantity import format_raw
from allotment.workloads.models import Job
from allotment.workloads.shape import MAX_GPU_MODELS, MAX_NODES


def _env_rules(value: Any) -> Any:
    """Checked here, whole, so that an error never quotes a name or value that cannot be printed (or a secret)."""
    if isinstance(value, dict):
        problems = jobenv.problems(value)
        if problems:
            raise PydanticCustomError("env", "; ".join(problems))
    return value


# The name rule and the reserved names, stated as propertyNames without lookaheads (a pattern plus `not`), so that
# clients and test generators see which names the server refuses. The total size (MAX_ENV_CHARS) cannot be stated.
_ENV_NAMES = {
    "pattern": f"^{jobenv.NAME.pattern}$", "minLength": 1, "maxLength": limits.MAX_ENV_NAME,
    "not": {"anyOf": [*({"pattern": f"^{prefix}"} for prefix in jobenv.RESERVED_PREFIXES),
                      {"enum": sorted(jobenv.RESERVED_NAMES)}]},
}
_ENV_VALUES = {"type": "string", "maxLength": limits.MAX_ENV_VALUE, "pattern": "^[^\\x00]*$"}



class _EnvSchema:
    """Adds the name and value rules to the map's JSON schema (a class: annotations must be hashable, dicts are not)."""

    def __get_pydantic_json_schema__(self, core_schema, handler):
        schema = handler(core_schema)
        schema.update(maxProperties=limits.MAX_ENV_VARS, propertyNames=_ENV_NAMES, additionalProperties=_ENV_VALUES)
        return schema


JobEnv = Annotated[dict[str, str], BeforeValidator(_env_rules), Field(max_length=limits.MAX_ENV_VARS), _EnvSchema()]


class JobIn(BaseModel):
    # command is required (so the schema says), but checked by the service so that a batch reports every problem of
    # every job at once. quota may be omitted (workloads/default_quota.py).
    model_config = ConfigDict(json_schema_extra={"required": ["command"]})

    quota: Annotated[Ref | None, WithJsonSchema({
        "type": "string", "minLength": 1, "maxLength": limits.MAX_SHORT_TEXT,
        "allOf": [{"pattern": names.TEXT_REGEX}, {"pattern": r"\S"}],
        "description": "the quota to submit to (its name or id); omitted: the only quota you may submit to, "
                       "or else the quota named 'default'"})] = None
    # PlainCommandFirst, PlainLabelsFirst: one call for a plain command or labels (api/fields.py), last and without
    # constraints of the field's own, which the fast path would skip.
    command: Annotated[Command, SchemaRules((
        ("minItems", 1), ("prefixItems", [{"type": "string", "pattern": r"\S"}]), ("pattern", r"\S"))),
        PlainCommandFirst] = Field(
        default_factory=list, description="argv list (the first not blank), or one string split on spaces")
    gpu: Amount | None = Field(None, description="GPUs: 4, or a share of one in steps of 0.01 (0.47), or of the "
                                                 "cluster's minimum share (its engine setting min_gpu_share)")
    cpu: Amount | None = Field(None, description="cores: 8, 0.5 or 500m (per node with nodes > 1)")
    memory: Amount | None = Field(None, description="bytes or with a unit: 16Gi (per node with nodes > 1)")
    nodes: Int(1, MAX_NODES) | None = Field(None, description="how many nodes the job spans (default 1: all of it on "
                                                              "one node); more than 1 places it on that many nodes "
                                                              "at once, gpus_per_node, cpu and memory on each")
    gpus_per_node: Amount | None = Field(None, description="whole GPUs on each node (instead of gpu)")
    gpu_models: Annotated[list[Text(limits.MAX_NAME)], Field(max_length=MAX_GPU_MODELS)] | Text(
        limits.MAX_SHORT_TEXT) | None = Field(
        None, description="GPU models the job accepts, as a list or comma-separated (A100,H100): the pools of "
                          "those models, best fit across them (not with pool or profile)")
    profile: Ref | None = Field(None, description="a profile of the quota's cluster instead of gpu/cpu/memory")
    pool: Ref | None = Field(None, description="pin the job to this pool")
    priority_class: Ref | None = None
    time_limit: Duration | None = Field(None, description="seconds or 90m, 2h, 1h30m, 1d")
    name: Name("job", limits.MAX_JOB_NAME) | None = None
    labels: Annotated[Labels, PlainLabelsFirst] | None = None
    env: JobEnv | None = Field(None, description="environment variables for the command (NAME: value); "
                               + jobenv.RULE)
    targets: Refs = Field(default_factory=list, description="storage targets whose variables (credentials "
                          "included) the job receives in its environment: at most one target of each kind")
    mounts: Annotated[list[Text(limits.MAX_SHORT_TEXT)], Field(max_length=32)] | None = Field(
        None, description="storage folders to mount, each NAME[:PATH][:ro]: at PATH relative to the job's working "
                          "directory (default folders/NAME), read-only with :ro or when your permission is ro")
    project: Ref | None = Field(None, description="the project the job belongs to: its id, or WORKSPACE/PATH in the "
                                                  "quota's cluster (the submitter must be a member of the workspace "
                                                  "from `member` up)")


class JobBatchIn(BaseModel):
    jobs: list[JobIn] = Field(min_length=1, max_length=limits.MAX_BATCH_JOBS)


class JobBatchOut(BaseModel):
    ids: list[int]
    total: int


class Placement(BaseModel):
    pool: str | None
    devices: list[dict[str, Any]]
    nodes: list[str] = Field(default_factory=list, description="the node(s) the job was placed on")


class JobOut(BaseModel):
    id: int
    name: str | None
    owner: str | None
    cluster: str | None
    quota: str | None
    gpu: str
    cpu: str
    memory: str
    profile: str | None
    pool: str | None = Field(description="the pool the job was pinned to, if any")
    nodes: int = Field(1, description="how many nodes the job spans (gpu, cpu and memory are its totals)")
    gpus_per_node: str = Field("0", description="the GPUs of each node (gpu / nodes)")
    gpu_models: list[str] | None = Field(None, description="the GPU models it accepts (best fit across their pools)")
    priority_class: str
    priority: int
    command: list[str]
    time_limit_s: int | None
    labels: dict[str, Any] | None
    env: list[str] = Field(default_factory=list, description="the names of the job's environment variables")
    environment: dict[str, str] | None = Field(None, description="the job's variables with their values, those "
                                               "on its owner's hide-list as ******** (a single job's details only)")
    state: str
    reason_code: str | None
    reason: str | None
    seq: int | None
    submitted_at: datetime
    admitted_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    cancel_requested_at: datetime | None
    placement: Placement | None
    backend_handle: str | None
    exit_code: int | None
    preemptions: int = Field(0, description="how often the job was preempted and requeued")
    project_id: int | None = Field(None, description="the project the job belongs to, if any")
    mounts: list[dict[str, Any]] = Field(default_factory=list, description="storage folders it mounts: folder, host, "
                                         "target (relative to its working directory), read_only")

    @classmethod
    def of(cls, job: Job, names: dict[str, dict[int, str]]) -> JobOut:
        placement = None
        if job.placed_pool_id is not None or job.devices:
            placement = Placement(pool=names["pools"].get(job.placed_pool_id), devices=job.devices or [],
                                  nodes=list(job.placed_nodes or []))
        nodes = job.nodes or 1
        return cls(
            id=job.id, name=job.name, owner=names["users"].get(job.owner_id),
            cluster=names["clusters"].get(job.cluster_id), quota=names["quotas"].get(job.quota_id),
            gpu=format_raw(job.gpu_milli, "gpu"), cpu=format_raw(job.cpu_milli, "cpu"),
            memory=format_raw(job.memory_bytes, "memory"), profile=names["profiles"].get(job.profile_id),
            pool=names["pools"].get(job.pool_id), nodes=nodes, gpus_per_node=format_raw(job.gpu_milli // nodes, "gpu"),
            gpu_models=job.gpu_models, priority_class=job.priority_class, priority=job.priority,
            command=job.command, time_limit_s=job.time_limit_s, labels=job.labels, env=sorted(job.env or {}),
            state=job.state,
            reason_code=job.reason_code, reason=job.reason, seq=job.seq, submitted_at=job.submitted_at,
            admitted_at=job.admitted_at, started_at=job.started_at, finished_at=job.finished_at,
            cancel_requested_at=job.cancel_requested_at, placement=placement, backend_handle=job.backend_handle,
            exit_code=job.exit_code, preemptions=job.preemptions or 0, project_id=job.project_id,
            mounts=[{k: m.get(k) for k in ("folder", "host", "target", "read_only")} for m in job.mounts or ()],
        )


class JobList(BaseModel):
    items: list[JobOut]
    total: int


class JobLogOut(BaseModel):
    """A chunk of a job's output (GET /jobs/{id}/logs): ask again from `next_offset` for what follows."""

    job_id: int
    state: str = Field(description="the job's state when read")
    offset: int = Field(description="the byte offset `text` starts at: the one asked for, or just past it when that "
                                    "fell inside a UTF-8 character")
    next_offset: int = Field(description="the byte offset to ask for next")
    size: int = Field(description="the log's size in bytes when read (0: there is no log file)")
    text: str = Field(description="UTF-8 text on character boundaries; bytes that are not UTF-8 read as U+FFFD")
    complete: bool = Field(description="the job has ended and there is nothing past next_offset")
    note: str | None = Field(None, description="why the log is empty: the engine keeps no output (simulated), "
                                               "the job has not started, or its log was deleted by retention")


class JobLogEvent(BaseModel):
    """One line of the follow stream (GET /jobs/{id}/logs?follow=true, application/x-ndjson)."""

    event: str = Field(description="start (first line, with the state and any note), output (text), keepalive "
                                   "(nothing new for a while), end (the job ended and its log is drained; last "
                                   "line) or resume (the follow lasted its longest, or the server is stopping: "
                                   "follow again from next_offset; last line)")
    next_offset: int
    offset: int | None = Field(None, description="output: the byte offset its text starts at")
    text: str | None = Field(None, description="output: the new text")
    state: str | None = Field(None, description="start, end and resume: the job's state")
    note: str | None = Field(None, description="start: why the log is empty, as in JobLogOut")
