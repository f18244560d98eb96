"""Input and output values of the scheduler core (see admission.py for the API overview).

Inputs describe the world at one instant (``Snapshot``); outputs are decisions (``Admit``, ``Preempt``, ``Wait``) that
the scheduler loop persists. All amounts are ``Quantity``; all times are float seconds on the caller's clock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from allotment.core.quantity import UNLIMITED, Quantity
from allotment.core.quota_tree import QuotaSpec

FULL_DEVICE = Quantity(1000)  # one whole GPU in milli-GPU


# ---------------------------------------------------------------------------------------------------------------------
# Inventory


@dataclass(frozen=True, slots=True)
class Device:
    """One GPU. ``free`` is what is free *after* the running jobs listed in the snapshot (and anything outside the
    scheduler's control); ``capacity`` is its full size (one GPU unless a device is exposed as a partial one)."""

    id: str
    free: Quantity = FULL_DEVICE
    capacity: Quantity = FULL_DEVICE
    node: str = ""


@dataclass(frozen=True, slots=True)
class Node:
    """One machine of a pool: its allocatable CPU (milli-cores) and memory (bytes); UNLIMITED = not tracked. Its GPUs
    are the pool's devices whose ``node`` is this name (a node without devices is a CPU-only node)."""

    name: str
    cpu: Quantity = UNLIMITED
    memory: Quantity = UNLIMITED


@dataclass(frozen=True, slots=True)
class Pool:
    """A set of devices of one kind. GPU capacity is the sum of the devices' capacities. Without ``nodes``, cpu and
    memory are pool-level totals (UNLIMITED = not tracked) and every device's ``node`` is only a grouping label. With
    ``nodes``, every device names one of them, every placement respects each node's GPUs, CPU and memory, and the
    pool's cpu and memory are the sums of its nodes' (``cpu`` and ``memory`` here are then ignored).
    ``profile_order`` is the pool's execution priority over the profiles linked to it (ClearML): earlier profiles
    are served first when they compete for this pool."""

    name: str
    devices: Sequence[Device] = ()
    cpu: Quantity = UNLIMITED
    memory: Quantity = UNLIMITED
    profile_order: Sequence[str] = ()
    nodes: Sequence[Node] = ()


@dataclass(frozen=True, slots=True)
class Profile:
    """A job shape with ordered pools to try (ClearML resource profile). ``policy_order`` is the queuing priority of
    the quotas (resource policies) using it: earlier quotas are served first. ``best_fit``: the pools are an
    unordered set of acceptable ones and a job takes the best-fitting place across all of them (admission.py)."""

    name: str
    requests: Mapping[str, Quantity]
    pools: Sequence[str]
    policy_order: Sequence[str] = ()
    best_fit: bool = False


# ---------------------------------------------------------------------------------------------------------------------
# Jobs


@dataclass(frozen=True, slots=True)
class QueuedJob:
    """A job waiting for admission. Either ``requests`` (resource -> amount, e.g. {"gpu": Quantity(4000)}) with
    ``pools`` (tried in order; one pool when the user pinned it), or ``profile`` naming a Profile (its requests and
    pools are used). ``seq`` is the submission order (unique, increasing); ``submitted_at`` feeds starvation aging.
    ``nodes``: 1 places all the job's GPUs, CPU and memory on one node; N > 1 is a gang: ``requests`` are per node
    and the job is placed on N distinct nodes at once or not at all (quotas are charged requests x N).
    ``best_fit``: ``pools`` (or the profile's) are an unordered set: the best fit across all of them is taken;
    False keeps their order (a later pool only when the earlier ones cannot take the job)."""

    id: str
    quota: str
    priority: int = 0
    seq: int = 0
    submitted_at: float = 0.0
    requests: Mapping[str, Quantity] = field(default_factory=dict)
    pools: Sequence[str] = ()
    profile: str | None = None
    priority_class: str | None = None
    nodes: int = 1
    best_fit: bool = False


@dataclass(frozen=True, slots=True)
class RunningJob:
    """A job holding resources (admitted or running). ``devices`` lists (device id, amount) it occupies; ``nodes``
    the nodes it holds (its CPU and memory are charged there). ``node_count`` > 1: a gang whose ``requests`` are per
    node (as QueuedJob.nodes)."""

    id: str
    quota: str
    priority: int
    started_at: float
    pool: str
    requests: Mapping[str, Quantity]
    devices: Sequence[tuple[str, Quantity]] = ()
    nodes: Sequence[str] = ()
    node_count: int = 1


@dataclass(frozen=True, slots=True)
class Snapshot:
    quotas: Sequence[QuotaSpec]
    pools: Sequence[Pool]
    profiles: Sequence[Profile] = ()
    running: Sequence[RunningJob] = ()
    queued: Sequence[QueuedJob] = ()


@dataclass(frozen=True, slots=True)
class SchedulerConfig:
    """``starvation_age_s``: a job queued at least this long is "aged": it is tried before younger jobs of its class
    and, when blocked, reserves the capacity it waits for so that smaller jobs stop overtaking it (None disables).
    ``max_admissions_per_cycle``: bound on Admit decisions per cycle (keeps the loop's transaction small); the rest
    waits for the next cycle.
    ``preemption_delay_s``: a job may preempt only once it has been queued this long (YuniKorn's preemption delay):
    capacity that frees by itself within the delay is not bought with killed work. Until then it waits like a job
    without preemption rights and is re-examined when the delay ends.
    ``gpu_share_step``: the smallest GPU share, in milli-GPU (10: steps of 0.01 GPU); a fractional request that is not
    a multiple of it is invalid. Coarser for engines that cannot split a GPU finely (MIG, MPS, environment hints)."""

    starvation_age_s: float | None = 3600.0
    max_admissions_per_cycle: int | None = None
    preemption_delay_s: float = 0.0
    gpu_share_step: int = 10


# ---------------------------------------------------------------------------------------------------------------------
# Decisions


@dataclass(slots=True, unsafe_hash=True)
class Admit:
    """Start ``job_id`` in ``pool`` on ``devices`` ((device id, amount) pairs; empty for jobs without GPUs).
    ``preempted`` lists the victims of this admission: the loop must stop them before starting the job. ``nodes``:
    the node(s) chosen (one per gang member; empty when the pool lists no nodes and the job has no GPUs)."""

    job_id: str
    quota: str
    pool: str
    requests: Mapping[str, Quantity]
    devices: tuple[tuple[str, Quantity], ...] = ()
    preempted: tuple[str, ...] = ()
    nodes: tuple[str, ...] = ()


@dataclass(slots=True, unsafe_hash=True)
class Preempt:
    """Stop running job ``victim_id`` to make room for ``for_job_id``. ``reason`` is one of PreemptReason."""

    victim_id: str
    for_job_id: str
    reason: str
    message: str


@dataclass(slots=True, unsafe_hash=True)
class Wait:
    """``job_id`` stays queued. ``code`` is one of WaitCode; ``message`` a sentence with the numbers."""

    job_id: str
    code: str
    message: str


Decision = Admit | Preempt | Wait


# Decisions are values: compared by value, hashable, and never changed once made (nothing in allotment assigns to
# their fields). They are deliberately not frozen dataclasses: a frozen dataclass sets each field through
# object.__setattr__, and building one Admit that way cost about 6,000 CPU instructions, 7 % of a whole admission
# decision (benchmarks/README.md, scheduler core). The scheduler builds them with plain slot stores (new_wait below,
# and Admit inline in admission._admit): the same values as the classes' own __init__ (equal, same repr, same type).
_new_object = object.__new__


def new_wait(job_id: str, code: str, message: str) -> Wait:
    w = _new_object(Wait)
    w.job_id = job_id
    w.code = code
    w.message = message
    return w


class WaitCode:
    """Machine-readable reasons a job waits."""

    LIMIT_REACHED = "limit_reached"  # a limit on the path from the job's quota to the root
    NO_CAPACITY = "no_capacity"  # the pool is full (or the rest is held by other quotas' unlendable guarantees)
    NO_DEVICE_FIT = "no_device_fit"  # enough GPU in total, but no device (set) fits the job's shape
    GUARANTEE_PENDING = "guarantee_pending"  # would borrow capacity that a quota below its guarantee waits for
    RESERVED_FOR_STARVING_JOB = "reserved_for_starving_job"  # held for a job that has waited past the age limit
    # held during its preemption delay for a higher-priority job that could preempt this one once the delay ends
    HELD_FOR_PREEMPTING_JOB = "held_for_preempting_job"
    REQUEUE_BACKOFF = "requeue_backoff"  # a preempted job may not borrow again until its backoff ends
    QUEUED_BEHIND = "queued_behind"  # not at the head of its quota queue (explain() only)
    ADMISSION_LIMIT = "admission_limit"  # max_admissions_per_cycle reached; tried next cycle (explain() only)
    PRIORITY_CLASS_NOT_ALLOWED = "priority_class_not_allowed"
    UNKNOWN_QUOTA = "unknown_quota"
    UNKNOWN_POOL = "unknown_pool"
    UNKNOWN_PROFILE = "unknown_profile"
    INVALID_REQUEST = "invalid_request"


class PreemptReason:
    RECLAIM = "reclaim"  # a quota below its guarantee takes back capacity lent to a borrower
    CHILD_PREEMPTION = "child_preemption"  # a job of a parent quota with child-level preemption
    WITHIN_QUOTA = "within_quota"  # a higher-priority job of the same quota
