"""Backend.AI per-user resource policies: caps on what a user holds at once, concurrency, idle timeout, folders.

Folder caps act on storage folders (storage/folders.py): `folders` counts a user's own folders and those they
accepted invitations to, `folder_capacity` bounds each folder's capacity, `allowed_storage_hosts` the hosts they may
use; each refusal names the cap and the numbers.

CPU, RAM, GPU (devices) and fractional GPU caps bound the SUM over the user's admitted and running jobs, across
clusters (Backend.AI's keypair resource policy), and hence each job: a job that alone exceeds one is refused at
submission (it could never run); one that would take the user over is held by the scheduler (reason code
`policy_limit`) until enough is freed (gate.py). The concurrent jobs cap counts queued and running jobs and is
checked at submission. The allowance shows, cap by cap, what is in use and what is left.

Amounts: cpu in cores ("8", "0.5", "500m"), GPUs with up to three decimals, memory and folder capacity with a unit
("64Gi", "512Mi", "1Ti"); a bare memory or folder capacity number is whole GiB, the unit of Backend.AI's dialog.

Every cap may be unlimited (NULL). Bounds come from Backend.AI: cpu 512 cores, RAM 1,024 GiB, GPU 64, fractional GPU
256, containers per job 100, idle timeout 15,552,000 s (180 days), concurrent jobs 100, folders 50, folder capacity
1,024 GiB. GPU caps: `gpu` bounds the devices a job touches (a 0.5-GPU job touches one), `fgpu` the GPU amount.

Idle timeout (enforced by the scheduler loop, not at submission): a running job is idle when its processes have used
no CPU time and, where the engine can tell, its GPUs showed no utilisation, for the whole period. When a job has been
idle for its owner's policy's `idle_timeout_s`, the loop stops it through its engine and marks it `failed` with reason
code `idle_timeout` and a sentence with the numbers ("idle for 600 s ..., the idle timeout of resource policy P is
600 s"); it is metered like any other end. `failed`, like a job stopped at its time limit: the system ended it before
it finished (Backend.AI terminates idle sessions). Unlimited (NULL) or 0 (as in Backend.AI) never ends a job.
The loop looks at most once per scheduler tick and reads policies afresh each time, so a changed timeout, or a user
moved to another policy, applies from the next tick. Only engines that report idleness are asked
(backends/base.py ReportsIdleness): the local engine measures each job's process group (backends/local.py: its
CPU time, sampled when the loop looks, so idleness is known to within one tick); simulated jobs are always busy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from allotment.audit import service as audit
from allotment.core.names import is_digits
from allotment.core.permissions import Principal
from allotment.core.quantity import format_raw, parse_quantity
from allotment.errors import Conflict, FieldError, NotFound, ValidationFailed, invalid
from allotment.identity.models import User
from allotment.policies.models import ResourcePolicy
from allotment.workloads.models import HOLDING_STATES, Job, active

GIB = 2**30
DEFAULT_POLICY = "default"  # followed by users whose resource_policy is NULL


@dataclass(frozen=True)
class Cap:
    field: str  # API field
    column: str  # ResourcePolicy attribute
    resource: str | None  # quantity resource for text amounts, None for plain counts
    bound: int  # maximum raw value
    label: str
    bare_gib: bool = False  # a bare number is whole GiB (Backend.AI's dialog unit), not bytes; units stay accepted


CAPS = (
    Cap("cpu", "max_cpu_milli", "cpu", 512 * 1000, "CPU cores held at once"),
    Cap("memory", "max_memory_bytes", "memory", 1024 * GIB, "RAM held at once", bare_gib=True),
    Cap("gpu", "max_gpu", None, 64, "GPUs (devices) held at once"),
    Cap("fgpu", "max_fgpu_milli", "gpu", 256 * 1000, "fractional GPU held at once"),
    Cap("containers_per_job", "max_containers_per_job", None, 100, "containers per job"),
    Cap("idle_timeout_s", "idle_timeout_s", None, 15_552_000, "idle timeout (seconds)"),
    Cap("concurrent_jobs", "max_concurrent_jobs", None, 100, "concurrent jobs"),
    Cap("folders", "max_folders", None, 50, "storage folders"),
    Cap("folder_capacity", "max_folder_bytes", "memory", 1024 * GIB, "capacity per folder", bare_gib=True),
)
CAP_BY_FIELD = {c.field: c for c in CAPS}


def _is_bare_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, float) and value.is_integer():
        return True
    return isinstance(value, int | str) and is_digits(str(value).strip())


def _raw(cap: Cap, value: Any) -> int | None:
    """Raw stored value of one cap; None = unlimited. Raises ValidationFailed naming the field."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("unlimited", "inf", "∞")):
        return None
    if cap.resource is None:
        if isinstance(value, bool) or not isinstance(value, int | str) or not is_digits(str(value).strip()) \
                or len(str(value).strip()) > 12:
            raise invalid(cap.field, "must be a whole number of zero or more, or unlimited")
        raw = int(value)
    else:
        if cap.bare_gib and _is_bare_number(value):
            value = f"{str(value).strip()}Gi"
        try:
            raw = parse_quantity(value, cap.resource).raw
        except ValueError as exc:
            raise invalid(cap.field, str(exc)) from None
    if raw > cap.bound:
        raise invalid(cap.field, f"must be at most {show(cap, cap.bound)} (or unlimited)")
    return raw


def show(cap: Cap, raw: int | None) -> str | int | None:
    """API form of a stored cap: quantities as text ('unlimited' when unlimited), counts as int (None)."""
    if cap.resource is None:
        return raw
    return "unlimited" if raw is None else format_raw(raw, cap.resource)


def ensure_default(session: Session) -> None:
    """Idempotent, at bootstrap: the unlimited 'default' policy."""
    if session.get(ResourcePolicy, DEFAULT_POLICY) is None:
        session.add(ResourcePolicy(name=DEFAULT_POLICY, description="no limits (used by users without a policy)"))
        session.flush()


def policy_out(policy: ResourcePolicy) -> dict[str, Any]:
    out: dict[str, Any] = {"name": policy.name, "description": policy.description}
    for cap in CAPS:
        out[cap.field] = show(cap, getattr(policy, cap.column))
    out["allowed_storage_hosts"] = policy.allowed_storage_hosts
    out["created_at"], out["updated_at"] = policy.created_at, policy.updated_at
    return out


def find_policy(session: Session, name: str) -> ResourcePolicy:
    found = session.get(ResourcePolicy, name)
    if found is None:
        raise NotFound(f"no resource policy '{name}'")
    return found


def list_policies(session: Session) -> list[ResourcePolicy]:
    return list(session.scalars(select(ResourcePolicy).order_by(ResourcePolicy.name)).all())


def _set_fields(policy: ResourcePolicy, values: dict[str, Any]) -> None:
    errors: list[FieldError] = []
    for field_name, value in values.items():
        if field_name == "description":
            policy.description = value
        elif field_name == "allowed_storage_hosts":
            if value is not None and any(not isinstance(h, str) or not h.strip() for h in value):
                errors.append(FieldError(field_name, "must be a list of host names, or null for any"))
            else:
                policy.allowed_storage_hosts = None if value is None else sorted({h.strip() for h in value})
        elif field_name in CAP_BY_FIELD:
            cap = CAP_BY_FIELD[field_name]
            try:
                setattr(policy, cap.column, _raw(cap, value))
            except ValidationFailed as exc:
                errors.extend(exc.errors)
    if errors:
        raise ValidationFailed("; ".join(f"{e.field}: {e.message}" for e in errors), errors)


SKIPPED_IN_AUDIT = ("created_at", "updated_at")


def _audited(policy: ResourcePolicy) -> dict[str, Any]:
    return {k: v for k, v in policy_out(policy).items() if k not in SKIPPED_IN_AUDIT}


def create_policy(session: Session, name: str, values: dict[str, Any], actor: Principal | None = None,
                  source: str | None = None) -> ResourcePolicy:
    """A new policy; audited when an actor is given (the API and the console give theirs)."""
    name = name.strip()
    if not name or len(name) > 64:
        raise invalid("name", "must be 1 to 64 characters long")
    if session.get(ResourcePolicy, name) is not None:
        raise Conflict(f"a resource policy named {name} already exists")
    policy = ResourcePolicy(name=name)
    _set_fields(policy, values)
    session.add(policy)
    session.flush()
    if actor is not None:
        audit.record(session, actor, "resource_policy.create", "resource_policy", policy.name, policy.name,
                     changes={"after": _audited(policy)}, source=source)
    return policy


def update_policy(session: Session, policy: ResourcePolicy, values: dict[str, Any], actor: Principal | None = None,
                  source: str | None = None) -> ResourcePolicy:
    """Change the caps given; the name may not change (it is the key)."""
    if "name" in values and values["name"] != policy.name:
        raise invalid("name", "cannot be changed: the name is the policy's key")
    values.pop("name", None)
    before = _audited(policy)
    _set_fields(policy, values)
    session.flush()
    if actor is not None:
        audit.record(session, actor, "resource_policy.update", "resource_policy", policy.name, policy.name,
                     changes=audit.diff(before, _audited(policy)), source=source)
    return policy


def users_of(session: Session, name: str) -> list[tuple[str, bool]]:
    """(username, active) of everyone following the policy, inactive users and service accounts included."""
    condition = User.resource_policy == name
    if name == DEFAULT_POLICY:
        condition = or_(condition, User.resource_policy.is_(None))
    rows = session.execute(select(User.username, User.is_active).where(condition).order_by(User.username_key))
    return [(username, bool(active)) for username, active in rows.all()]


def delete_policy(session: Session, policy: ResourcePolicy, actor: Principal | None = None,
                  source: str | None = None) -> None:
    """Refused while anyone follows the policy; the refusal names every one of them and how many there are."""
    users = users_of(session, policy.name)
    if users:
        inactive = sum(1 for _, active in users if not active)
        names = ", ".join(u if active else f"{u} (inactive)" for u, active in users)
        count = f"{len(users)} user{'s' if len(users) != 1 else ''}" + (f", {inactive} inactive" if inactive else "")
        message = f"resource policy {policy.name} is used by {count}: {names}; move them to another policy first"
        raise Conflict(message, [FieldError("users", message)])
    name = policy.name
    session.delete(policy)
    session.flush()
    if actor is not None:
        audit.record(session, actor, "resource_policy.delete", "resource_policy", name, name, source=source)


def policy_of(session: Session, user: User) -> ResourcePolicy:
    name = user.resource_policy or DEFAULT_POLICY
    policy = session.get(ResourcePolicy, name)
    if policy is None:
        raise Conflict(f"{user.username}'s resource policy '{name}' does not exist: an admin must fix the account")
    return policy


def _refusal(policy: ResourcePolicy, cap: Cap, requested: str | int, limit: str | int | None) -> str:
    return f"exceeds the cap {cap.field} ({cap.label}) of {limit} in resource policy {policy.name}: " \
           f"requested {requested}"


def check_job(policy: ResourcePolicy, gpu_milli: int, cpu_milli: int, memory_bytes: int,
              prefix: str = "") -> list[FieldError]:
    """A job that alone exceeds a cap could never run: refused, each refusal naming the cap and the numbers."""
    errors = []
    devices = math.ceil(gpu_milli / 1000) if gpu_milli else 0
    checks = (("cpu", cpu_milli, cpu_milli), ("memory", memory_bytes, memory_bytes),
              ("gpu", devices, devices), ("fgpu", gpu_milli, gpu_milli))
    for field_name, raw, shown_raw in checks:
        cap = CAP_BY_FIELD[field_name]
        limit = getattr(policy, cap.column)
        if limit is not None and raw > limit:
            target = "gpu" if field_name == "fgpu" else field_name
            errors.append(FieldError(prefix + target, _refusal(policy, cap, show(cap, shown_raw), show(cap, limit))))
    cap = CAP_BY_FIELD["containers_per_job"]
    if policy.max_containers_per_job is not None and policy.max_containers_per_job < 1:
        errors.append(FieldError(prefix + "containers_per_job", _refusal(policy, cap, 1, 0)))
    return errors


def active_jobs(session: Session, user_id: int) -> int:
    return session.scalar(select(func.count()).select_from(Job)
                          .where(Job.owner_id == user_id, active())) or 0


def lock_submitter(session: Session, user_id: int) -> None:
    """Serialise one user's submissions until the transaction ends, so that counting their active jobs and inserting
    new ones cannot interleave with another submission of theirs. PostgreSQL: a row lock on the user. SQLite ignores
    FOR UPDATE and only starts a transaction at the first write, so a no-op write takes its (database-wide) write lock
    before the count instead."""
    if session.get_bind().dialect.name == "sqlite":
        session.execute(update(User).where(User.id == user_id).values(updated_at=User.updated_at))  # no-op
    else:
        session.execute(select(User.id).where(User.id == user_id).with_for_update())


def check_concurrency(session: Session, policy: ResourcePolicy, user: User, adding: int = 1) -> None:
    limit = policy.max_concurrent_jobs
    if limit is None:
        return
    lock_submitter(session, user.id)
    running = active_jobs(session, user.id)
    if running + adding > limit:
        raise Conflict(f"{user.username} has {running} queued or running jobs; the cap concurrent_jobs of resource "
                       f"policy {policy.name} allows {limit} (submitting {adding} more)",
                       [FieldError("concurrent_jobs", f"cap {limit} reached ({running} active, {adding} requested)")])


def held(session: Session, user_id: int) -> dict[str, int]:
    """What the user's admitted and running jobs hold, in the caps' raw units (a 0.5-GPU job holds one device)."""
    totals = {"cpu": 0, "memory": 0, "gpu": 0, "fgpu": 0}
    rows = session.execute(select(Job.gpu_milli, Job.cpu_milli, Job.memory_bytes)
                           .where(Job.owner_id == user_id, active(*HOLDING_STATES))).all()
    for gpu_milli, cpu_milli, memory_bytes in rows:
        totals["cpu"] += cpu_milli or 0
        totals["memory"] += memory_bytes or 0
        totals["gpu"] += math.ceil((gpu_milli or 0) / 1000)
        totals["fgpu"] += gpu_milli or 0
    return totals


def allowance(session: Session, user: User) -> dict[str, Any]:
    """What the user may still use, cap by cap: totals (cpu, memory, gpu, fgpu), concurrent jobs and folders (own and
    invited, storage/folders.py) with what is in use now; the other caps apply to each job or folder."""
    from allotment.storage.folders import folder_count  # storage asks this module for the caps: import when used

    policy = policy_of(session, user)
    in_use: dict[str, int] = {"concurrent_jobs": active_jobs(session, user.id), **held(session, user.id),
                              "folders": folder_count(session, user.id)}
    caps: dict[str, Any] = {}
    for cap in CAPS:
        limit = getattr(policy, cap.column)
        shown = "unlimited" if limit is None else show(cap, limit)
        entry: dict[str, Any] = {"limit": shown, "description": cap.label}
        if cap.field in in_use:
            used = in_use[cap.field]
            entry["in_use"] = show(cap, used)
            entry["remaining"] = "unlimited" if limit is None else show(cap, max(limit - used, 0))
        else:  # a per-job or per-folder cap: the next job or folder may ask for up to this much
            entry["remaining"] = shown
        caps[cap.field] = entry
    return {"user": user.username, "policy": policy.name, "caps": caps,
            "allowed_storage_hosts": policy.allowed_storage_hosts}
