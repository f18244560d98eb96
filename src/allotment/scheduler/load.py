"""Reading the database into the scheduler core's inputs: a cluster's pools, devices, profiles and quota tree, and the
jobs it holds. Plain column queries (no ORM objects), because a full load happens at start and after every
configuration change and touches every active job.

Names inside core: a quota is its name, a pool its name within the cluster, a device its row id as text, a job its id
as text (see quotas/tree.py).

Quotas that may use only some pools (DKube, quotas/quota_pools.py) are enforced here, where each job's pools are
computed, so core needs no notion of it: a job of such a quota tries only the allowed pools. A profile whose pools
are partly allowed is given to core as a derived profile with just those pools (named `PROFILE/POOL+POOL`, a name no
real profile can have since names cannot hold '/'), ranked in each pool right after the profile it derives from.
A job with no allowed pool at all (its pin or profile disallowed after submission) gets a pool that cannot exist
(`POOL/not-allowed`), so core never places it; the loop words its reason (`refusals`).

Nodes: every pool lists its nodes (core.model.Node) with each one's allocatable CPU and memory, so that core places
a job's GPUs, CPU and memory on one node (or, for a gang, on `nodes` distinct nodes) without overloading any. A
node's CPU and memory count in its own pool (Node.pool_id); a node that only lends devices to another pool appears
there without them (not tracked, as a pool without nodes always was). A node that is not ready offers nothing new:
its devices are left out and its CPU and memory are 0, while the jobs it still runs keep what they hold.
A gang job's stored amounts are its totals; core takes them per node (total / nodes). A job that names GPU models
tries the pools of those models as an unordered set (best fit across them), as does a profile marked unordered.
The cluster's minimum GPU share (engine setting min_gpu_share) becomes SchedulerConfig.gpu_share_step.
"""

from __future__ import annotations

import json
from collections import namedtuple
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Text, cast, func, select
from sqlalchemy.orm import Session

from allotment.core.model import FULL_DEVICE, Device, Pool, Profile, QueuedJob, RunningJob
from allotment.core.model import Node as CoreNode
from allotment.core.quantity import UNLIMITED, Quantity
from allotment.core.quota_tree import QuotaSpec
from allotment.identity.models import User
from allotment.inventory.engine_settings import FINEST_GPU_SHARE, gpu_share_step
from allotment.inventory.models import HEALTHY, NODE_READY, Cluster, Node
from allotment.inventory.models import Device as DeviceRow
from allotment.inventory.models import Pool as PoolRow
from allotment.policies.models import ResourcePolicy
from allotment.policies.service import DEFAULT_POLICY
from allotment.quotas.models import Profile as ProfileRow
from allotment.quotas.models import ProfilePolicy, ProfilePool, Quota
from allotment.quotas.quota_pools import usable_pools
from allotment.quotas.tree import quota_specs
from allotment.workloads.models import ADMITTED, PREEMPTED, QUEUED, RUNNING, Job, active
from allotment.workloads.shape import model_pool_names

# The job columns the loop needs: what core decides on, what a backend launch needs, and the persisted reason.
JOB_COLUMNS = (
    Job.id, Job.cluster_id, Job.quota_id, Job.profile_id, Job.pool_id, Job.gpu_milli, Job.cpu_milli,
    Job.memory_bytes, Job.priority_class, Job.priority, Job.seq, Job.submitted_at, Job.state, Job.command,
    Job.time_limit_s, Job.labels, Job.reason_code, Job.reason, Job.admitted_at, Job.started_at,
    Job.placed_pool_id, Job.devices, Job.backend_handle, Job.cancel_requested_at, Job.finished_at, Job.env,
    Job.owner_id,  # admission gates (scheduler/gates.py) count a user's jobs
    Job.nodes, Job.gpu_models, Job.placed_nodes,
    Job.preemptions,  # the requeue backoff's count survives a restart (core: rule 4)
    Job.config_file,  # the owner's effective configuration, written for the job by the engine
    Job.sealed_env,  # the storage targets' secret variables, opened by the loop only to launch
    Job.mounts,  # storage folders the engine mounts for the job
    # The owner's username: the local engine may run the job as the OS account mapped to it (settings).
    select(User.username).where(User.id == Job.owner_id).scalar_subquery().label("owner"),
)


# Columns only a job that was admitted has set: a new submission (the loop's scan) is read without them.
HOLDING_ONLY = frozenset({"admitted_at", "started_at", "placed_pool_id", "devices", "backend_handle",
                          "cancel_requested_at", "finished_at", "placed_nodes", "preemptions"})
# JSON columns a new submission is read with as their stored text, decoded by json_value: most submissions repeat
# the same few texts (a command, "{}", a class's labels), which are decoded once instead of once per row and column.
RAW_JSON = frozenset({"command", "labels", "env", "mounts", "gpu_models"})
# Nor the owner's username: a correlated subquery per row there, looked up once per owner of the scan instead
# (usernames, which the scan hands to JobInfo).
NEW_JOB_COLUMNS = tuple(cast(c, Text).label(c.key) if c.key in RAW_JSON else c
                        for c in JOB_COLUMNS if c.key not in HOLDING_ONLY and c.key != "owner")

# The loop keeps each row it reads as a plain named tuple of these columns: reading a field of SQLAlchemy's Row by name
# costs about 0.4 us (a job's record reads some 25 of them, twice over), a named tuple's about a tenth of that.
JobRow = namedtuple("JobRow", [c.key for c in JOB_COLUMNS])  # type: ignore[misc]
NewJobRow = namedtuple("NewJobRow", [c.key for c in NEW_JOB_COLUMNS])  # type: ignore[misc]


def plain_rows(result: Iterable[Any], kind: type) -> list[Any]:
    """The rows of a select of JOB_COLUMNS (kind JobRow) or NEW_JOB_COLUMNS (NewJobRow), as named tuples."""
    make = tuple.__new__
    return [make(kind, row) for row in result]


def usernames(conn: Any, owner_ids: Iterable[int | None]) -> dict[int, str]:
    """Owner id -> username of the given owners, as they are now (a user may be renamed)."""
    ids = sorted({i for i in owner_ids if i is not None})
    out: dict[int, str] = {}
    for i in range(0, len(ids), 500):
        out.update(conn.execute(select(User.id, User.username).where(User.id.in_(ids[i:i + 500]))).all())
    return out


_MISSING = object()
_DECODED: dict[str, Any] = {}  # short JSON text -> its value; shared, so callers copy what they keep (JobInfo)
_DECODED_MAX = 10_000
_DECODED_TEXT_MAX = 512


def json_value(value: Any) -> Any:
    """A JSON column's value, whether SQLAlchemy decoded it (a full load) or it was read as its text (RAW_JSON)."""
    if type(value) is not str:
        return value
    found = _DECODED.get(value, _MISSING)
    if found is _MISSING:
        found = json.loads(value)
        if len(value) <= _DECODED_TEXT_MAX:
            if len(_DECODED) >= _DECODED_MAX:
                _DECODED.clear()
            _DECODED[value] = found
    return found


def ts(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def admission_key(admitted_at: datetime | None) -> str | None:
    """Which admission of a job a run belongs to: its admission time in whole microseconds (what the database keeps
    exactly), so the loop that admitted it and a loop reading it back after a restart name the same run, and a job
    admitted again after preemption names a new one."""
    if admitted_at is None:
        return None
    if admitted_at.tzinfo is None:
        admitted_at = admitted_at.replace(tzinfo=UTC)
    return str((admitted_at - _EPOCH) // timedelta(microseconds=1))


class JobInfo:
    """What the loop remembers about one active job between cycles (queued, admitted, running)."""

    __slots__ = ("admission", "command", "config_file", "cpu", "devices", "env", "gpu", "handle", "id", "labels",
                 "memory", "mounts", "nodes", "owner", "placed_nodes", "placed_pool", "pool_id", "quota_id", "reason",
                 "reason_code", "sealed_env", "started_at", "state", "time_limit_s")

    def __init__(self, row: Any, new: bool = False, owner: str | None = None) -> None:
        """`new`: a row of NEW_JOB_COLUMNS, a submission that holds nothing yet, and `owner` its owner's username
        (usernames); a row of JOB_COLUMNS has it."""
        self.id: int = row.id
        self.quota_id: int | None = row.quota_id
        self.pool_id: int | None = row.pool_id
        self.gpu: int = row.gpu_milli or 0
        self.cpu: int = row.cpu_milli or 0
        self.memory: int = row.memory_bytes or 0
        self.command: list[str] = list(json_value(row.command) or [])
        self.time_limit_s: int | None = row.time_limit_s
        self.labels: dict = dict(json_value(row.labels) or {})
        self.state: str = row.state
        self.reason_code: str | None = row.reason_code
        self.reason: str | None = row.reason
        self.started_at: float | None = None
        self.placed_pool: int | None = None
        self.devices: list[dict] = []
        self.handle: str | None = None
        self.admission: str | None = None
        self.placed_nodes: list[str] = []
        if new:  # a row of NEW_JOB_COLUMNS has every one of these
            self.env: dict[str, str] = dict(json_value(row.env) or {})
            self.config_file: str | None = row.config_file
            self.sealed_env: str | None = row.sealed_env
            self.mounts: list[dict] = list(json_value(row.mounts) or [])
            self.owner: str | None = owner if owner is not None else getattr(row, "owner", None)
            self.nodes: int = row.nodes or 1  # gang size; gpu, cpu and memory are the totals
        else:
            self.env = dict(json_value(getattr(row, "env", None)) or {})
            self.config_file = getattr(row, "config_file", None)
            self.sealed_env = getattr(row, "sealed_env", None)
            self.mounts = list(json_value(getattr(row, "mounts", None)) or [])
            self.owner = getattr(row, "owner", None)
            self.nodes = getattr(row, "nodes", None) or 1
            self.started_at = ts(row.started_at) or ts(row.admitted_at)
            self.placed_pool = row.placed_pool_id
            self.devices = list(row.devices or [])
            self.handle = row.backend_handle
            self.admission = admission_key(row.admitted_at)
            self.placed_nodes = list(getattr(row, "placed_nodes", None) or [])

    def requests(self) -> dict[str, Quantity]:
        out = {}
        for resource, raw in (("gpu", self.gpu), ("cpu", self.cpu), ("memory", self.memory)):
            if raw:
                out[resource] = Quantity(raw)
        return out


@dataclass
class Inventory:
    """One cluster's configuration as core sees it, plus the id <-> name maps the loop needs to write back."""

    quotas: list[QuotaSpec]
    pools: list[Pool]
    profiles: list[Profile]
    quota_names: dict[int, str]
    pool_names: dict[int, str]
    profile_names: dict[int, str]
    profile_amounts: dict[int, tuple[int, int, int]]
    devices: dict[str, tuple[str, int]] = field(default_factory=dict)  # core device id -> (node name, index)
    # Pools that can run something: with devices (for GPU jobs) or with nodes (their cpu and memory).
    gpu_pools: frozenset[str] = frozenset()
    node_pools: frozenset[str] = frozenset()
    # Quota id -> the pools its jobs may use (None: every pool); quota_pools.py.
    allowed: dict[int, frozenset[str] | None] = field(default_factory=dict)
    # (profile, allowed pools) -> name of the derived profile with only those of its pools.
    derived: dict[tuple[str, frozenset[str]], str] = field(default_factory=dict)
    # Pool name that cannot exist -> the reason of a job that has no allowed pool.
    refusals: dict[str, str] = field(default_factory=dict)
    # (pool name, the GPU model its devices share or None), in pool order: a job's GPU models -> its pools.
    pool_models: list[tuple[str, str | None]] = field(default_factory=list)
    gpu_share_step: int = FINEST_GPU_SHARE  # the cluster's minimum GPU share, milli-GPU
    # (asks for GPUs, allowed pools) -> eligible_pools: the same for every such job of this load
    _eligible: dict[tuple[bool, frozenset[str] | None], tuple[str, ...]] = field(default_factory=dict, repr=False,
                                                                                 compare=False)

    def eligible_pools(self, gpu: int, allowed: frozenset[str] | None = None) -> tuple[str, ...]:
        """The pools a job without a pinned pool or profile may try, in pool order: an empty pool, or one without
        devices for a GPU job, could never run it and would only clutter its reason. All pools (that the job's
        quota may use) when none fits."""
        key = (bool(gpu), allowed)
        found = self._eligible.get(key)
        if found is None:
            wanted = self.gpu_pools if gpu else self.node_pools | self.gpu_pools
            usable = [p.name for p in self.pools if allowed is None or p.name in allowed]
            found = self._eligible[key] = tuple(n for n in usable if n in wanted) or tuple(usable)
        return found

    def refused(self, quota_id: int | None, pools: tuple[str, ...] | list[str], what: str) -> tuple[str, ...]:
        """The impossible pool of a job whose pools (`what`: its pin or profile) are all outside its quota's."""
        allowed = self.allowed.get(quota_id) if quota_id is not None else None
        quota = self.quota_names.get(quota_id, "") if quota_id is not None else ""
        marker = f"{'+'.join(pools) or '-'}/not-allowed/{quota}"
        self.refusals[marker] = (f"quota {quota} may use only pools {', '.join(sorted(allowed or ())) or '(none)'}, "
                                 f"and {what} is not among them: the job cannot run until the quota allows it")
        return (marker,)

    @property
    def pool_ids(self) -> dict[str, int]:
        return {name: pid for pid, name in self.pool_names.items()}


def clusters(session: Session) -> list[Any]:
    """Every cluster with what tells the loop to rebuild (config_version), pause (the switch) or build its engine
    again (engine_revision: its engine settings changed)."""
    return list(session.execute(select(Cluster.id, Cluster.name, Cluster.backend, Cluster.config_version,
                                       Cluster.resource_management_enabled, Cluster.engine_revision)
                                .order_by(Cluster.id)).all())


def inventory(session: Session, cluster_id: int) -> Inventory:
    pool_rows = session.execute(select(PoolRow.id, PoolRow.name, PoolRow.device_model)
                                .where(PoolRow.cluster_id == cluster_id).order_by(PoolRow.id)).all()
    pool_names = {r.id: r.name for r in pool_rows}
    settings = session.scalar(select(Cluster.engine_settings).where(Cluster.id == cluster_id))
    nodes = session.execute(select(Node.id, Node.name, Node.pool_id, Node.status, Node.cpu_milli,
                                   Node.memory_bytes).where(Node.cluster_id == cluster_id).order_by(Node.id)).all()
    cpu: dict[int, int] = {}
    memory: dict[int, int] = {}
    own_nodes: dict[int, list[CoreNode]] = {}  # pool -> its nodes, with their cpu and memory
    for n in nodes:  # a pool with nodes offers their cpu and memory; a pool without nodes does not track them
        ready = n.status == NODE_READY
        cpu[n.pool_id] = cpu.get(n.pool_id, 0) + ((n.cpu_milli or 0) if ready else 0)
        memory[n.pool_id] = memory.get(n.pool_id, 0) + ((n.memory_bytes or 0) if ready else 0)
        own_nodes.setdefault(n.pool_id, []).append(CoreNode(n.name, Quantity((n.cpu_milli or 0) if ready else 0),
                                                            Quantity((n.memory_bytes or 0) if ready else 0)))
    # Each statement below reads what is committed when it runs (SQLite without an explicit transaction, PostgreSQL
    # in read committed), and nodes, devices, pools and profiles are added through the API at any time. So every row
    # brings the names it needs in the same statement (a join), never through a lookup in an earlier result: a node
    # registered between two statements must not be a KeyError. Such a change bumps the cluster's config_version,
    # so the next cycle loads the cluster again and sees it whole.
    device_rows = session.execute(
        select(DeviceRow.id, DeviceRow.node_id, DeviceRow.index, DeviceRow.pool_id, DeviceRow.health,
               Node.name.label("node_name"), Node.status.label("node_status"))
        .join(Node, Node.id == DeviceRow.node_id).where(Node.cluster_id == cluster_id)
        .order_by(DeviceRow.node_id, DeviceRow.index)).all()
    devices: dict[str, tuple[str, int]] = {}
    usable: dict[int, list[tuple[str, str]]] = {}
    device_nodes: dict[int, set[str]] = {}  # pool -> the nodes of its devices (held ones too)
    for d in device_rows:
        devices[str(d.id)] = (d.node_name, d.index)
        device_nodes.setdefault(d.pool_id, set()).add(d.node_name)
        # Unhealthy devices and devices of draining or down nodes take no new work (their running jobs keep them).
        if d.health == HEALTHY and d.node_status == NODE_READY:
            usable.setdefault(d.pool_id, []).append((str(d.id), d.node_name))

    links = session.execute(select(ProfilePool.profile_id, ProfilePool.pool_id, ProfilePool.position,
                                   ProfilePool.pool_position, ProfilePool.id, ProfileRow.name.label("profile_name"),
                                   PoolRow.name.label("pool_name"))
                            .join(ProfileRow, ProfileRow.id == ProfilePool.profile_id)
                            .join(PoolRow, PoolRow.id == ProfilePool.pool_id)
                            .where(ProfileRow.cluster_id == cluster_id)).all()
    profile_rows = session.execute(select(ProfileRow.id, ProfileRow.name, ProfileRow.gpu_milli, ProfileRow.cpu_milli,
                                          ProfileRow.memory_bytes, ProfileRow.unordered)
                                   .where(ProfileRow.cluster_id == cluster_id)).all()
    profile_names = {p.id: p.name for p in profile_rows}
    policy_rows = session.execute(select(ProfilePolicy.profile_id, Quota.name, ProfilePolicy.position, ProfilePolicy.id)
                                  .join(Quota, Quota.id == ProfilePolicy.quota_id)
                                  .where(Quota.cluster_id == cluster_id)).all()
    order_in_pool: dict[int, list[tuple[int, int, str]]] = {}
    pools_of_profile: dict[int, list[tuple[int, int, str]]] = {}
    for link in links:
        if link.pool_id not in pool_names:  # a pool newer than the pool query: the next load has it
            continue
        order_in_pool.setdefault(link.pool_id, []).append((link.pool_position, link.id, link.profile_name))
        pools_of_profile.setdefault(link.profile_id, []).append((link.position, link.id, link.pool_name))
    policies: dict[int, list[tuple[int, int, str]]] = {}
    for row in policy_rows:
        policies.setdefault(row.profile_id, []).append((row.position, row.id, row.name))

    profiles = []
    for p in profile_rows:
        requests = {r: Quantity(v) for r, v in (("gpu", p.gpu_milli), ("cpu", p.cpu_milli),
                                                 ("memory", p.memory_bytes)) if v}
        profiles.append(Profile(p.name, requests, tuple(n for _, _, n in sorted(pools_of_profile.get(p.id, []))),
                                tuple(n for _, _, n in sorted(policies.get(p.id, []))), bool(p.unordered)))
    allowed = usable_pools(session, [cluster_id])
    derived = _derived_profiles(profiles, {a for a in allowed.values() if a is not None})
    after: dict[str, list[str]] = {}  # profile -> its derived profiles, ranked right after it in each pool
    for (name, _), derived_name in sorted(derived.items(), key=lambda item: item[1]):
        after.setdefault(name, []).append(derived_name)
    by_name = {p.name: p for p in profiles}
    for (name, kept), derived_name in derived.items():
        base = by_name[name]
        profiles.append(Profile(derived_name, base.requests, tuple(x for x in base.pools if x in kept),
                                base.policy_order, base.best_fit))
    pools = []
    for pid, name in pool_names.items():
        devs = tuple(Device(dev_id, FULL_DEVICE, FULL_DEVICE, node) for dev_id, node in usable.get(pid, []))
        order = tuple(x for _, _, n in sorted(order_in_pool.get(pid, [])) for x in (n, *after.get(n, ())))
        pools.append(Pool(name, devs, Quantity(cpu[pid]) if pid in cpu else UNLIMITED,
                          Quantity(memory[pid]) if pid in memory else UNLIMITED, order, _pool_nodes(pid, own_nodes,
                                                                                                   device_nodes)))
    quota_names = dict(session.execute(select(Quota.id, Quota.name).where(Quota.cluster_id == cluster_id)).all())
    return Inventory(quota_specs(session, cluster_id), pools, profiles, quota_names, pool_names, profile_names,
                     {p.id: (p.gpu_milli, p.cpu_milli, p.memory_bytes) for p in profile_rows}, devices,
                     frozenset(pool_names[d.pool_id] for d in device_rows if d.pool_id in pool_names),
                     frozenset(pool_names[n.pool_id] for n in nodes if n.pool_id in pool_names),
                     allowed, derived, pool_models=[(r.name, r.device_model) for r in pool_rows],
                     gpu_share_step=gpu_share_step(settings))


def _pool_nodes(pool_id: int, own: dict[int, list[CoreNode]], device_nodes: dict[int, set[str]]) -> tuple[CoreNode,
                                                                                                         ...]:
    """The pool's nodes: its own (with their cpu and memory), then the nodes that lend it devices from another pool
    (their cpu and memory count there: not tracked here)."""
    mine = own.get(pool_id, [])
    names = {n.name for n in mine}
    lent = sorted(device_nodes.get(pool_id, set()) - names)
    return (*mine, *(CoreNode(name) for name in lent))


def _derived_profiles(profiles: list[Profile], allowed_sets: set[frozenset[str]]) -> dict[tuple[str, frozenset[str]],
                                                                                        str]:
    """A derived profile for each profile whose pools are partly inside some quota's allowed pools."""
    out = {}
    for profile in profiles:
        for allowed in allowed_sets:
            kept = tuple(x for x in profile.pools if x in allowed)
            if kept and len(kept) < len(profile.pools):
                out[(profile.name, allowed)] = f"{profile.name}/{'+'.join(kept)}"
    return out


def active_jobs(session: Session, cluster_id: int) -> list[Any]:
    """Queued and holding jobs in submission order, and preempted jobs still waiting to be requeued."""
    return plain_rows(session.execute(
        select(*JOB_COLUMNS).where(Job.cluster_id == cluster_id, active(QUEUED, ADMITTED, RUNNING, PREEMPTED))
        .order_by(Job.seq, Job.id)), JobRow)


_QUANTITIES: dict[int, Quantity] = {}  # quantities are immutable: the few amounts jobs ask for are shared


def _quantity(raw: int) -> Quantity:
    found = _QUANTITIES.get(raw)
    if found is None:
        if len(_QUANTITIES) > 10_000:
            _QUANTITIES.clear()
        found = _QUANTITIES[raw] = Quantity(raw)
    return found


_PER_NODE: dict[tuple[int, int, int, int], dict[str, Quantity]] = {}  # most jobs ask for one of a few shapes


def per_node(row: Any) -> dict[str, Quantity]:
    """What the job asks of each of its nodes (its totals / nodes; all of it for a one-node job). Shared between
    jobs of the same shape: core only reads it."""
    count = getattr(row, "nodes", None) or 1
    shape = (row.gpu_milli or 0, row.cpu_milli or 0, row.memory_bytes or 0, count)
    found = _PER_NODE.get(shape)
    if found is None:
        if len(_PER_NODE) > 10_000:
            _PER_NODE.clear()
        found = _PER_NODE[shape] = {r: _quantity(v // count) for r, v in zip(("gpu", "cpu", "memory"), shape)
                                    if v}
    return found


def queued_job(row: Any, inv: Inventory) -> QueuedJob:
    """A queued job as core sees it: a profile job tries the profile's pools (unless pinned to one pool); a job that
    names GPU models, the pools of those models as an unordered set."""
    requests = per_node(row)
    profile = inv.profile_names.get(row.profile_id) if row.profile_id is not None else None
    allowed = inv.allowed.get(row.quota_id)
    pools: tuple[str, ...] = ()
    models = json_value(getattr(row, "gpu_models", None))
    best_fit = False
    if models and row.pool_id is None and profile is None:
        named = model_pool_names(list(models), inv.pool_models)
        pools = tuple(x for x in named if allowed is None or x in allowed)
        best_fit = True
        if not pools:
            pools = inv.refused(row.quota_id, named, f"none of the pools of GPU models {', '.join(models)} "
                                                     f"({', '.join(named) or 'there are none now'})")
    elif row.pool_id is not None:
        pools = (inv.pool_names.get(row.pool_id, f"#{row.pool_id}"),)
        if allowed is not None and pools[0] not in allowed:
            pools = inv.refused(row.quota_id, pools, f"pool {pools[0]}, which the job is pinned to,")
        profile = None
    elif profile is not None and inv.profile_amounts.get(row.profile_id) != (row.gpu_milli, row.cpu_milli,
                                                                             row.memory_bytes):
        # The profile was resized after submission: the job keeps the amounts it was given, in the profile's pools.
        linked = next((tuple(p.pools) for p in inv.profiles if p.name == profile), ())
        pools = linked if allowed is None else tuple(x for x in linked if x in allowed)
        if not pools and linked:
            pools = inv.refused(row.quota_id, linked, f"none of profile {profile}'s pools ({', '.join(linked)})")
        profile = None
    elif profile is None:
        pools = inv.eligible_pools(row.gpu_milli or 0, allowed)
        if not pools:
            pools = inv.refused(row.quota_id, (), "no pool of the cluster")
    elif allowed is not None:
        linked = next((tuple(p.pools) for p in inv.profiles if p.name == profile), ())
        if not any(x in allowed for x in linked):
            pools = inv.refused(row.quota_id, linked, f"none of profile {profile}'s pools ({', '.join(linked)})")
            profile = None
        elif (profile, allowed) in inv.derived:
            profile = inv.derived[(profile, allowed)]
    return QueuedJob(str(row.id), inv.quota_names.get(row.quota_id, ""), row.priority or 0, row.seq or row.id,
                     ts(row.submitted_at) or 0.0, requests if profile is None else {}, pools, profile,
                     row.priority_class, getattr(row, "nodes", None) or 1, best_fit)


def running_job(row: Any, inv: Inventory, started_at: float) -> RunningJob:
    """A holding job as core sees it: its devices, and the node(s) holding its cpu and memory (those it was placed
    on; for a job admitted before nodes were recorded, its devices' nodes)."""
    shares = tuple((str(d["device_id"]), Quantity(int(d.get("milli", 1000))))
                   for d in (row.devices or []) if d.get("device_id") is not None)
    nodes = list(getattr(row, "placed_nodes", None) or [])
    if not nodes:
        nodes = list(dict.fromkeys(d["node"] for d in (row.devices or []) if d.get("node")))
    return RunningJob(str(row.id), inv.quota_names.get(row.quota_id, ""), row.priority or 0, started_at,
                      inv.pool_names.get(row.placed_pool_id, ""), per_node(row), shares, tuple(nodes),
                      getattr(row, "nodes", None) or 1)


def only_nodes_changed(old: Inventory, new: Inventory) -> bool:
    """Whether two loads of a cluster differ in their nodes and devices only (a node registered, drained, back or
    removed, its CPU, memory or devices changed): then the loop applies them node by node to the state it has
    (core's update_pool touches only the nodes that differ) instead of building it again with every job."""
    def shape(inv: Inventory) -> tuple:
        return (inv.quotas, inv.profiles, [(p.name, tuple(p.profile_order)) for p in inv.pools], inv.quota_names,
                inv.pool_names, inv.profile_names, inv.profile_amounts, inv.gpu_pools, inv.node_pools, inv.allowed,
                inv.derived, inv.pool_models, inv.gpu_share_step)
    return shape(old) == shape(new)


def held_shares(infos: Any) -> dict[str, int]:
    """Device id -> the milli-GPU the given holding jobs (JobInfo) hold on it."""
    held: dict[str, int] = {}
    for info in infos:
        for d in info.devices:
            if d.get("device_id") is not None:
                key = str(d["device_id"])
                held[key] = held.get(key, 0) + int(d.get("milli", 1000))
    return held


def free_devices(pools: list[Pool], running: list[RunningJob], held: dict[str, int] | None = None) -> list[Pool]:
    """Pools whose devices' free amounts exclude what the running jobs hold (core expects it that way); `held`
    (device id -> milli-GPU) instead of `running` when the caller has it."""
    if held is None:
        held = {}
        for run in running:
            for dev, amount in run.devices:
                held[dev] = held.get(dev, 0) + amount.raw
    out = []
    for pool in pools:
        devs = tuple(Device(d.id, Quantity(max(d.capacity.raw - held.get(d.id, 0), 0)), d.capacity, d.node)
                     for d in pool.devices)
        out.append(Pool(pool.name, devs, pool.cpu, pool.memory, pool.profile_order, pool.nodes))
    return out


@dataclass(frozen=True)
class IdleLimit:
    job_id: int
    cluster_id: int
    policy: str
    timeout_s: int


def idle_limits(session: Session, cluster_ids: list[int]) -> list[IdleLimit]:
    """The running jobs of these clusters whose owner's resource policy has an idle timeout, with it. Read afresh at
    every check, so a changed policy or a user moved to another one counts from the next check on. A policy with no
    timeout (NULL) or a zero one (as in Backend.AI: no timeout) ends nothing. Costs one look at the (small) policy
    table when no policy has a timeout, else one indexed query over the clusters' running jobs."""
    timeouts = dict(session.execute(select(ResourcePolicy.name, ResourcePolicy.idle_timeout_s)
                                    .where(ResourcePolicy.idle_timeout_s > 0)).all())
    if not timeouts or not cluster_ids:
        return []
    policy = func.coalesce(User.resource_policy, DEFAULT_POLICY)
    rows = session.execute(select(Job.id, Job.cluster_id, policy).join(User, User.id == Job.owner_id)
                           .where(Job.cluster_id.in_(cluster_ids), active(RUNNING),
                                  policy.in_(list(timeouts)))).all()
    return [IdleLimit(job_id, cluster_id, name, int(timeouts[name])) for job_id, cluster_id, name in rows]
