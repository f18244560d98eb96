"""Jobs: submission (single and batch, all or nothing), listing, showing and cancelling.

Submission checks, each refusal naming the field and the numbers: quantities ("4", "0.47", "16Gi"; fractional GPUs
in steps of 0.01, or of the cluster's minimum share), the job's shape (nodes, GPUs per node, GPU models: shape.py),
the quota exists and the principal may submit to it (core.permissions.submit_refusal: access to the quota's cluster,
and a binding to the user, their groups or workspaces, or an admin), the priority class exists and the quota allows
it, the profile and pool belong to the quota's cluster (a pinned pool must be one of the profile's pools, and the
pinned pool or one of the profile's pools must be among the pools the quota may use: quotas/quota_pools.py), and the
owner's resource policy (per-job caps, concurrency).
A new job is `queued` with reason "pending"; the caller wakes the scheduler.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from operator import attrgetter
from typing import Any

from sqlalchemy import BigInteger, bindparam, cast, func, select, update
from sqlalchemy.dialects.postgresql import ARRAY, REGCLASS
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from allotment.core import jobenv
from allotment.core.permissions import ROLE_ORDER, Principal
from allotment.db import utcnow
from allotment.errors import Conflict, DomainError, FieldError, Forbidden, NotFound, ValidationFailed
from allotment.identity.models import User
from allotment.inventory.models import Cluster, Pool
from allotment.policies import service as policies
from allotment.policies.models import ResourcePolicy
from allotment.quotas.models import Profile, Quota
from allotment.workloads import references
from allotment.workloads.batch_insert import insert_rows
from allotment.workloads.default_quota import NoQuotaToSubmitTo, default_quota
from allotment.workloads.lookups import Lookups, QuotaFacts
from allotment.workloads.models import (
    ACTIVE_STATES,
    CANCELLED,
    FINAL_STATES,
    PENDING_MESSAGE,
    PENDING_REASON,
    PREEMPTED,
    QUEUED,
    STATES,
    Job,
    active,
)
from allotment.workloads.requests import parse_duration
from allotment.workloads.shape import read_shape

MAX_BATCH = 10_000
MAX_COMMAND_ARGS = 4096


@dataclass
class JobRequest:
    quota: str | None = None
    command: list[str] = field(default_factory=list)
    gpu: str | int | float | None = None
    cpu: str | int | float | None = None
    memory: str | int | None = None
    profile: str | None = None
    pool: str | None = None
    priority_class: str | None = None
    time_limit: str | int | None = None
    name: str | None = None
    labels: dict[str, Any] | None = None
    nodes: int | None = None
    gpus_per_node: str | int | float | None = None
    gpu_models: list[str] | str | None = None
    project: str | int | None = None  # its id or WORKSPACE/PATH in the quota's cluster (projects/access.py)
    mounts: list[Any] | None = None  # storage folders, NAME[:PATH][:ro] or objects (storage/mounts.py)
    # Last, so that the API's request fields come first in order (routes.py builds a request from them by position).
    env: dict[str, str] | None = None
    sealed_env: str | None = None  # the storage targets' secret variables, sealed (vaults/job_supplies.py)


def _rows(look: Lookups, owner: User, policy: ResourcePolicy, requests: Sequence[JobRequest], batch: bool,
          errors: list[FieldError], forbidden: list[FieldError], missing: list[FieldError]) -> list[dict | None]:
    """Each request's column values (None where it has problems, which go to the lists as _build says). A job whose
    shape matches one that passed every check in a place like its quota's takes that job's values (_like): the jobs
    of a batch ask for a handful of shapes, in hundreds of quotas."""
    rows: list[dict | None] = []
    quotas, built = look.quotas, look.built
    for i, req in enumerate(requests):
        quota = quotas.get(req.quota) if type(req.quota) is str else None  # the batch's quotas are read ahead
        place = look.place(quota) if quota is not None else None
        key = _shape_key(place, req) if place is not None else None
        if key is not None:
            try:
                template = built.get(key)
            except TypeError:  # a value no JSON body holds (the service is called with other requests too)
                template = key = None
            if template is not None:
                rows.append(_like(template, quota, req))
                continue
        row = _build(look, owner, policy, req, f"jobs.{i}." if batch else "", errors, forbidden, missing)
        if key is not None and row is not None:
            built[key] = row
        rows.append(row)
    return rows


def _build(look: Lookups, owner: User, policy: ResourcePolicy, req: JobRequest, prefix: str,
           errors: list[FieldError], forbidden: list[FieldError], missing: list[FieldError]) -> dict[str, Any] | None:
    """One job's column values, or None, appending every problem found to `errors`, `forbidden` (quotas the caller
    may not use) or `missing` (quotas that do not exist)."""
    start = len(errors)

    def err(name: str, message: str) -> None:
        errors.append(FieldError(prefix + name, message))

    quota = look.quota(req.quota.strip()) if req.quota and req.quota.strip() else None
    if not req.quota or not req.quota.strip():
        err("quota", "is required")
    elif quota is None:
        missing.append(FieldError(prefix + "quota", f"no quota '{req.quota}'"))
    elif look.refusal(quota) is not None:
        forbidden.append(FieldError(f"{prefix}quota", look.refusal(quota)))
    if not req.command or not all(isinstance(a, str) for a in req.command):
        err("command", "give the command to run, e.g. ['python', 'train.py']")
    elif len(req.command) > MAX_COMMAND_ARGS or not req.command[0].strip():
        err("command", f"must be 1 to {MAX_COMMAND_ARGS} arguments, the first not empty")
    if req.name is not None and len(req.name) > 128:
        err("name", "must be at most 128 characters long")
    if req.env is not None:
        for problem in jobenv.problems(req.env) if isinstance(req.env, dict) else ["must be an object NAME: value"]:
            err("env", problem)

    amounts = {}
    for resource in ("gpu", "cpu", "memory"):
        raw, problem = look.amount(resource, getattr(req, resource))
        if problem:
            err(resource, problem)
        amounts[resource] = raw
    profile = None
    if req.profile:
        for resource in ("gpu", "cpu", "memory"):
            if getattr(req, resource) not in (None, "", 0):
                err(resource, "give either a profile or resources, not both: the profile sets the job's allotment")
        if quota is not None:
            profile = look.profile(quota.cluster_id, req.profile)
            if profile is None:
                err("profile", f"no profile '{req.profile}' in the cluster of quota {quota.name}")
            else:
                amounts = {"gpu": profile.gpu_milli, "cpu": profile.cpu_milli, "memory": profile.memory_bytes}
    elif not any(amounts.values()) and not req.gpus_per_node and len(errors) == start:
        err("gpu", "request some gpu, cpu or memory, or give a profile")

    pool = None
    if req.pool and quota is not None:
        pool = look.pool(quota.cluster_id, req.pool)
        if pool is None:
            err("pool", f"no pool '{req.pool}' in the cluster of quota {quota.name}")
        elif profile is not None and pool.id not in look.linked_pools(profile.id):
            err("pool", f"profile {profile.name} is not linked to pool {pool.name}")
    usable = look.usable_pools(quota) if quota is not None else None
    if usable is not None:
        allowed = f"quota {quota.name} may use only pools {', '.join(sorted(usable)) or '(none)'}"
        if pool is not None and pool.name not in usable:
            err("pool", f"{allowed}, not pool {pool.name}")
        elif pool is None and profile is not None and not req.pool:
            linked = look.linked_pool_names(profile.id)
            if not set(linked) & usable:
                err("profile", f"{allowed}, and profile {profile.name} runs only in {', '.join(linked) or 'no pool'}")
        elif not usable and not req.pool:
            err("quota", f"{allowed}: its pools and its parents' have none in common")
    nodes, gpu_models = read_shape(look.clusters, quota.cluster_id if quota is not None else None, req, amounts,
                                   profile is not None or bool(req.profile), pool is not None or bool(req.pool),
                                   usable, err)

    class_name = req.priority_class or look.default_class
    priority = look.classes.get(class_name) if class_name else None
    if priority is None:
        err("priority_class", f"no priority class '{class_name}' (known: {', '.join(sorted(look.classes))})")
    elif quota is not None and quota.allowed_priority_classes is not None \
            and priority.name not in quota.allowed_priority_classes:
        err("priority_class", f"quota {quota.name} allows only {', '.join(quota.allowed_priority_classes)}")

    project_id = None
    if req.project not in (None, "") and quota is not None:
        project_id, kind, message = look.project(quota.cluster_id, req.project)
        if kind is not None:
            found_in = {"missing": missing, "forbidden": forbidden}.get(kind, errors)
            found_in.append(FieldError(prefix + "project", message))
    time_limit, problem = parse_duration(req.time_limit)
    if problem:
        err("time_limit", problem)
    mounts = _mounts(look, quota, req, err)
    if len(errors) == start:  # caps only make sense for a well-formed request
        errors.extend(look.cap_problems(policy, amounts, prefix))
    if len(errors) > start or quota is None or priority is None or missing:
        return None
    return {
        "name": req.name, "owner_id": owner.id, "submitted_by_id": look.principal.actor_id,
        "cluster_id": quota.cluster_id, "quota_id": quota.id, "profile_id": profile.id if profile else None,
        "gpu_milli": amounts["gpu"], "cpu_milli": amounts["cpu"], "memory_bytes": amounts["memory"],
        "pool_id": pool.id if pool else None, "priority_class": priority.name, "priority": priority.value,
        "command": look.command(list(req.command)), "time_limit_s": time_limit, "labels": req.labels, "env": req.env or None,
        "sealed_env": req.sealed_env,
        "state": QUEUED, "reason_code": PENDING_REASON, "reason": PENDING_MESSAGE, "nodes": nodes,
        "gpu_models": gpu_models, "project_id": project_id, "mounts": mounts,
    }


# The fields of a request that _build checks by value (with the command and the GPU models, which are lists); in a
# key each goes with its type, since True == 1 == 1.0 in a dict but they are not the same request.
_shape_values = attrgetter("gpu", "cpu", "memory", "profile", "pool", "priority_class", "time_limit", "nodes",
                           "gpus_per_node")


def _shape_key(place: tuple, req: JobRequest) -> tuple | None:
    """Everything the checks of _build read but the quota's id and name (`place`: Lookups.place) and the fields
    copied as they are (name, labels, sealed_env): two requests with the same key pass or fail the same checks and
    get the same column values. None for a request with parts that are checked job by job (environment, project,
    mounts) or a name too long, which take the whole path."""
    if req.env is not None or req.mounts or req.project not in (None, "") or type(req.command) is not list \
            or (req.name is not None and len(req.name) > 128):
        return None
    models = req.gpu_models
    values = _shape_values(req)
    return (place, tuple(req.command), values, tuple(map(type, values)),
            (list, tuple(models)) if type(models) is list else (type(models), models))


def _like(template: dict[str, Any], quota: QuotaFacts, req: JobRequest) -> dict[str, Any]:
    """The row of a job whose shape key matched `template`'s: the template's values, with the job's own quota and the
    fields copied as they are."""
    row = {**template, "name": req.name, "quota_id": quota.id, "labels": req.labels, "sealed_env": req.sealed_env}
    if row["gpu_models"] is not None:  # each job its own list, as a job built alone has
        row["gpu_models"] = list(row["gpu_models"])
    return row


def _mounts(look: Lookups, quota: QuotaFacts | None, req: JobRequest, err) -> list[dict[str, Any]] | None:
    """The storage folders the job mounts, resolved as its owner sees them (storage/mounts.py)."""
    if not req.mounts or quota is None:
        return None
    from allotment.storage import mounts

    return mounts.for_job(look.session, look.principal, quota.cluster_id, req.mounts, err)


def _validated(session: Session, principal: Principal, requests: Sequence[JobRequest],
               batch: bool) -> list[dict[str, Any]]:
    """Every request checked (all problems reported at once); the column values of the jobs to create."""
    if batch and not requests:
        raise ValidationFailed("jobs: give at least one job", [FieldError("jobs", "give at least one job")])
    if len(requests) > MAX_BATCH:
        raise ValidationFailed(f"jobs: at most {MAX_BATCH} jobs per batch",
                               [FieldError("jobs", f"at most {MAX_BATCH} jobs per batch")])
    no_quota = None  # why a job that names no quota has none (default_quota.py), reported with its other problems
    no_access = None  # the caller may submit to no quota at all: the quota-less jobs are forbidden (403)
    if any(not (r.quota or "").strip() for r in requests):
        try:
            fallback = default_quota(session, principal)
            requests = [r if (r.quota or "").strip() else replace(r, quota=fallback) for r in requests]
        except NoQuotaToSubmitTo as exc:
            no_access = exc.errors[0].message
        except ValidationFailed as exc:
            no_quota = exc.errors[0].message
    owner = session.get(User, principal.id)
    policy = policies.policy_of(session, owner)
    look = Lookups(session, principal)
    look.prefetch_quotas({r.quota.strip() for r in requests if r.quota})
    errors: list[FieldError] = []
    forbidden: list[FieldError] = []
    missing: list[FieldError] = []
    rows = _rows(look, owner, policy, requests, batch, errors, forbidden, missing)
    if no_access is not None:  # alone it is a refusal (403); beside malformed fields, one more field problem (422)
        quota_less = [e for e in errors if e.field.endswith("quota") and e.message == "is required"]
        if len(quota_less) == len(errors):
            forbidden += [FieldError(e.field, no_access) for e in quota_less]
            errors = []
        else:
            errors = [FieldError(e.field, no_access) if e in quota_less else e for e in errors]
    if forbidden:
        raise DomainError("; ".join(f"{e.field}: {e.message}" for e in forbidden[:20]), forbidden, 403, "Forbidden",
                          "forbidden")
    # A quota that does not exist is an unknown reference (404, as for every object a request names), not a
    # malformed request; in a batch, every item that names one is listed, each with its field.
    if missing:
        raise DomainError("; ".join(f"{e.field}: {e.message}" for e in missing[:20]), missing, 404, "Not found",
                          "not_found")
    if no_quota is not None:
        errors = [FieldError(e.field, no_quota) if e.field.endswith("quota") and e.message == "is required" else e
                  for e in errors]
    if errors:
        raise ValidationFailed("; ".join(f"{e.field}: {e.message}" for e in errors[:20]), errors)
    policies.check_concurrency(session, policy, owner, len(rows))
    valid = [r for r in rows if r is not None]
    references.hold(session, valid, look.held_quotas)  # what the rows name stays until they are written
    return valid


def _number(session: Session, ids: list[int]) -> None:
    """Submission order is the id sequence (unique, increasing): one statement for the whole batch."""
    session.execute(update(Job).where(Job.id.between(min(ids), max(ids)), Job.seq.is_(None))
                    .values(seq=Job.id).execution_options(synchronize_session=False))


def submit_many(session: Session, principal: Principal, requests: Sequence[JobRequest], batch: bool) -> list[Job]:
    """Validate every request, then create all jobs or none (as ORM objects, for callers that show them)."""
    jobs = [Job(**row) for row in _validated(session, principal, requests, batch)]
    session.add_all(jobs)
    session.flush()
    _number(session, [job.id for job in jobs])
    for job in jobs:  # the objects learn the value without being marked changed
        set_committed_value(job, "seq", job.id)
    return jobs


# submit_batch's statements, built once.
_TAKE_WRITE_LOCK = update(Job).where(Job.id == 0).values(seq=Job.seq).execution_options(synchronize_session=False)
_LARGEST_ID = select(func.max(Job.id))
# The sequence is named once per statement (an InitPlan): as the argument of nextval, pg_get_serial_sequence ran for
# every id drawn, reading the catalog each time (2.6 ms of the server's time for 500 ids, against 0.5 ms). The ids
# come back as one array.
_JOBS_SEQUENCE = select(cast(func.pg_get_serial_sequence(Job.__tablename__, "id"), REGCLASS)).scalar_subquery()
_DRAW_IDS = select(func.array_agg(func.nextval(_JOBS_SEQUENCE), type_=ARRAY(BigInteger))).select_from(
    func.generate_series(1, bindparam("count")))


def submit_batch(session: Session, principal: Principal, requests: Sequence[JobRequest],
                 config_file: str | None = None) -> list[int]:
    """Like submit_many for scripts: all or nothing, but the rows written in one go instead of ORM objects, and only the
    new ids (in request order) come back. Ten thousand jobs cost a few hundred milliseconds, not seconds.
    `config_file`: the owner's configuration handed to every job (vaults/job_supplies.py), written with the rows."""
    rows = _validated(session, principal, requests, batch=True)
    now = utcnow()
    table = Job.__table__
    if session.get_bind().dialect.name == "sqlite":
        # SQLite has one writer at a time: once this transaction holds the write lock (a write that changes
        # nothing takes it), the ids after the largest are this batch's, as SQLite would have given them. The rows
        # go in with their ids and their submission order, so no numbering UPDATE and no read of the new ids.
        session.execute(_TAKE_WRITE_LOCK)
        first = (session.scalar(_LARGEST_ID) or 0) + 1
        ids = list(range(first, first + len(rows)))
    else:
        # The ids are drawn from the table's sequence first, so the rows go in with their ids and their submission
        # order (COPY, batch_insert.py), instead of one INSERT ... RETURNING of every row sorted by a sentinel and a
        # numbering UPDATE.
        ids = sorted(session.scalar(_DRAW_IDS, {"count": len(rows)}))
    for row, job_id in zip(rows, ids, strict=True):
        row.update(id=job_id, seq=job_id)
    insert_rows(session, table, rows, {"submitted_at": now, "updated_at": now, "preemptions": 0,
                                       "config_file": config_file})  # SQLite: one executemany; PostgreSQL: COPY (batch_insert.py)
    return ids


def submit(session: Session, principal: Principal, request: JobRequest) -> Job:
    return submit_many(session, principal, [request], batch=False)[0]


def manager_clusters(principal: Principal) -> set[int]:
    return {c for c, role in principal.cluster_roles.items() if ROLE_ORDER.get(role, 0) >= ROLE_ORDER["manager"]}


def _visible(principal: Principal):
    """SQL condition: the jobs a principal may see (own; all of clusters it manages; everything for admins)."""
    if principal.is_platform_admin:
        return None
    managed = manager_clusters(principal)
    condition = Job.owner_id == principal.id
    if managed:
        condition = condition | Job.cluster_id.in_(managed)
    return condition


def list_jobs(session: Session, principal: Principal, state: str | None = None, quota: str | None = None,
              owner: str | None = None, limit: int = 50, offset: int = 0, cluster: str | None = None,
              pool: str | None = None) -> tuple[list[Job], int]:
    """`pool` matches the pool a job was pinned to or placed in (within `cluster` when both are given)."""
    errors = []
    query = select(Job)
    condition = _visible(principal)
    if condition is not None:
        query = query.where(condition)
    if state:
        wanted = [s.strip() for s in state.split(",") if s.strip()]
        bad = [s for s in wanted if s not in STATES]
        if bad:
            errors.append(FieldError("state", f"unknown state(s) {', '.join(bad)}; known: {', '.join(STATES)}"))
        # Active states are found as active() finds them (finished_at IS NULL): the page's total then reads the
        # index of active jobs instead of scanning the whole history.
        query = query.where(active(*wanted) if wanted and set(wanted) <= set(ACTIVE_STATES)
                            else Job.state.in_(wanted))
    if quota:
        found = session.scalar(select(Quota.id).where(Quota.name == quota))
        if found is None:  # 404, as an unknown cluster or user named by a filter
            raise NotFound(f"no quota '{quota}'")
        query = query.where(Job.quota_id == found)
    if owner:
        key = owner.strip().lower()
        found = session.scalar(select(User.id).where((User.username_key == key) | (User.email_key == key)))
        if found is None:
            raise NotFound(f"no user '{owner}'")
        query = query.where(Job.owner_id == found)
    cluster_id = None
    if cluster:
        cluster_id = session.scalar(select(Cluster.id).where(Cluster.name == cluster.strip()))
        if cluster_id is None:
            raise NotFound(f"no cluster '{cluster}'")
        query = query.where(Job.cluster_id == cluster_id)
    if pool:
        pools = select(Pool.id).where(Pool.name == pool.strip())
        if cluster_id is not None:
            pools = pools.where(Pool.cluster_id == cluster_id)
        pool_ids = list(session.scalars(pools))
        if not pool_ids:
            raise NotFound(f"no pool '{pool}'" + (f" in cluster '{cluster}'" if cluster else ""))
        query = query.where(Job.pool_id.in_(pool_ids) | Job.placed_pool_id.in_(pool_ids))
    if errors:
        raise ValidationFailed("; ".join(f"{e.field}: {e.message}" for e in errors), errors)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(Job.id.desc()).limit(limit).offset(offset)).all()
    return list(rows), total


def _own_or_managed(principal: Principal, job: Job) -> bool:
    return principal.is_platform_admin or job.owner_id == principal.id or job.cluster_id in manager_clusters(principal)


def find_job(session: Session, principal: Principal, job_id: int) -> Job:
    """A job the principal may see: its own, those of the clusters it manages, and those of projects it may read
    where the access rules let it read the job; others read as absent (no probing of other users' jobs)."""
    job = session.get(Job, job_id)
    if job is None:
        raise NotFound(f"no job {job_id}")
    if _own_or_managed(principal, job):
        return job
    if job.project_id is not None:
        from allotment.projects import access as project_access  # projects imports workloads

        if project_access.job_refusal(session, principal, job.project_id, job.id, "read") is None:
            return job
    raise NotFound(f"no job {job_id}")


def cancel(session: Session, principal: Principal, job: Job) -> Job:
    """Queued and preempted jobs end at once; admitted or running ones are marked for the scheduler to stop (and then
    end `cancelled`); finished jobs cannot be cancelled. A preempted job holds nothing (the preemption freed its
    resources and stopped it): ending it here keeps the scheduler from requeueing it, since the requeue is guarded by
    the state `preempted`, and the loop's scan drops it from its own state (by `cancel_requested_at`)."""
    who = principal.actor_username or principal.username
    if not _own_or_managed(principal, job):
        # A reader of the job's project: the access rules must let it modify the job.
        from allotment.projects import access as project_access

        why = (project_access.job_refusal(session, principal, job.project_id, job.id, "modify")
               if job.project_id is not None else f"job {job.id} is not yours")
        if why:
            raise Forbidden(f"you may not cancel job {job.id}: {why}")
    if job.state in FINAL_STATES:
        raise Conflict(f"job {job.id} has already ended ({job.state})")
    now = utcnow()
    if job.state in (QUEUED, PREEMPTED):
        was = "queued" if job.state == QUEUED else "preempted, before it was requeued"
        job.state = CANCELLED
        job.finished_at = now
        job.cancel_requested_at = now  # the scheduler finds recent cancellations by this (indexed) column
        job.reason_code = "cancelled"
        job.reason = f"cancelled by {who} while {was}"
    elif job.cancel_requested_at is None:
        job.cancel_requested_at = now
        job.reason_code = "cancel_requested"
        job.reason = f"cancellation requested by {who}; the job is being stopped"
    session.flush()
    return job


def names_for(session: Session, jobs: Sequence[Job]) -> dict[str, dict[int, str]]:
    """Display names of the users, quotas, pools and profiles the jobs refer to (one query each)."""
    def load(model, column, ids):
        ids = {i for i in ids if i is not None}
        if not ids:
            return {}
        return dict(session.execute(select(model.id, column).where(model.id.in_(ids))).all())

    return {
        "users": load(User, User.username, [j.owner_id for j in jobs]),
        "quotas": load(Quota, Quota.name, [j.quota_id for j in jobs]),
        "pools": load(Pool, Pool.name, [j.pool_id for j in jobs] + [j.placed_pool_id for j in jobs]),
        "profiles": load(Profile, Profile.name, [j.profile_id for j in jobs]),
        "clusters": load(Cluster, Cluster.name, [j.cluster_id for j in jobs]),
    }

