"""Backend.AI's keypair resource policy as a total: a user's CPU, RAM, GPU (devices) and fractional GPU caps bound the
SUM over their jobs in the scheduler (admitted and running, and queued jobs already let through to it), across every
cluster, and hence each job.

A job that would take the user over a cap WAITS (reason code `policy_limit`, with the numbers) until their jobs free
enough; a job that can never fit (it alone exceeds a cap) is refused at submission instead (service.check_job),
as Backend.AI refuses a session that asks for more than the policy allows. Running jobs are never stopped by a
lowered cap. Unlimited caps (NULL) never hold a job.

`over_caps` is the decision, a pure function (table-tested); `PolicyGate` is the scheduler gate around it
(scheduler/gates.py states the contract).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from allotment.core.model import Wait
from allotment.core.quantity import format_raw
from allotment.identity.models import User
from allotment.policies.models import ResourcePolicy
from allotment.policies.service import DEFAULT_POLICY
from allotment.scheduler.gates import GateJob

POLICY_LIMIT = "policy_limit"

# (cap field, what it counts, ResourcePolicy column)
TOTAL_CAPS = (("cpu", "CPU cores", "max_cpu_milli"), ("memory", "of RAM", "max_memory_bytes"),
              ("gpu", "GPUs", "max_gpu"), ("fgpu", "GPU (fractional)", "max_fgpu_milli"))


@dataclass(frozen=True)
class Amounts:
    """What jobs count against a policy: cpu in millicores, memory in bytes, GPU devices and GPU in milli-GPU."""

    cpu: int = 0
    memory: int = 0
    gpu: int = 0
    fgpu: int = 0

    @classmethod
    def of(cls, gpu_milli: int, cpu_milli: int, memory_bytes: int) -> Amounts:
        devices = math.ceil(gpu_milli / 1000) if gpu_milli else 0  # a 0.5-GPU job touches one device
        return cls(cpu=cpu_milli, memory=memory_bytes, gpu=devices, fgpu=gpu_milli)

    def __add__(self, other: Amounts) -> Amounts:
        return Amounts(self.cpu + other.cpu, self.memory + other.memory, self.gpu + other.gpu, self.fgpu + other.fgpu)

    def __sub__(self, other: Amounts) -> Amounts:
        return Amounts(self.cpu - other.cpu, self.memory - other.memory, self.gpu - other.gpu, self.fgpu - other.fgpu)


@dataclass(frozen=True)
class Caps:
    """A policy's total caps; None = unlimited."""

    policy: str
    cpu: int | None = None
    memory: int | None = None
    gpu: int | None = None
    fgpu: int | None = None

    @property
    def unlimited(self) -> bool:
        return self.cpu is None and self.memory is None and self.gpu is None and self.fgpu is None


def shown(field: str, raw: int) -> str:
    if field == "cpu":
        return format_raw(raw, "cpu")
    if field == "memory":
        return format_raw(raw, "memory")
    if field == "fgpu":
        return format_raw(raw, "gpu")
    return str(raw)


def over_caps(caps: Caps, in_use: Amounts, asked: Amounts) -> list[tuple[str, int, int, int]]:
    """The caps the job would exceed: (field, cap, in use, asked). Empty: it may go."""
    over = []
    for field, _, _ in TOTAL_CAPS:
        cap = getattr(caps, field)
        used, wants = getattr(in_use, field), getattr(asked, field)
        if cap is not None and wants > 0 and used + wants > cap:
            over.append((field, cap, used, wants))
    return over


def wait_message(username: str, caps: Caps, over: list[tuple[str, int, int, int]]) -> str:
    """"user alice's resource policy p1 allows 4 GPUs at once; 3 are in use and this job asks for 2"."""
    noun = {field: what for field, what, _ in TOTAL_CAPS}
    parts = [f"{shown(f, cap)} {noun[f]} at once; {shown(f, used)} {'is' if used == 1 else 'are'} in use and this "
             f"job asks for {shown(f, wants)}" for f, cap, used, wants in over]
    return (f"user {username}'s resource policy {caps.policy} allows " + "; and ".join(parts)
            + " (in use: their admitted and running jobs, and queued jobs already let through to the scheduler); "
              "it waits until their jobs free enough")


class PolicyGate:
    """The scheduler gate of resource policies' total caps, for every user and cluster.

    Every job let in is reserved (cluster -> job -> owner and amounts), whoever owns it, so that a cap set later
    counts what already runs; running totals are kept only for users whose policy has a total cap (the hot path of
    a queue of uncapped users is a few dictionary operations per job), and rebuilt from the reservations when the
    capped users change."""

    def __init__(self) -> None:
        self.caps: dict[int, Caps] = {}  # owner id -> caps of their policy; absent = unlimited
        self.usernames: dict[int, str] = {}
        self.reserved: dict[int, dict[int, tuple[int, int, int, int, int]]] = {}  # cluster -> job -> owner, amounts
        self.in_use: dict[int, list[int]] = {}  # capped owner -> [cpu, memory, gpu devices, fgpu] of their jobs

    def refresh(self, session: Session) -> bool:
        """Read the capped policies and their users. One look at the (small) policy table when no policy has a total
        cap; otherwise also the users following one."""
        p = ResourcePolicy  # plain rows: read at every scan of the loop, where ORM objects cost more than the query
        rows = session.execute(select(p.name, p.max_cpu_milli, p.max_memory_bytes, p.max_gpu, p.max_fgpu_milli).where(
            or_(p.max_cpu_milli.is_not(None), p.max_memory_bytes.is_not(None), p.max_gpu.is_not(None),
                p.max_fgpu_milli.is_not(None)))).all()
        policies = {p.name: Caps(p.name, p.max_cpu_milli, p.max_memory_bytes, p.max_gpu, p.max_fgpu_milli)
                    for p in rows}
        caps: dict[int, Caps] = {}
        names: dict[int, str] = {}
        if policies:
            condition = User.resource_policy.in_(list(policies))
            if DEFAULT_POLICY in policies:
                condition = or_(condition, User.resource_policy.is_(None))
            for user_id, username, policy in session.execute(
                    select(User.id, User.username, User.resource_policy).where(condition)).all():
                caps[user_id] = policies[policy or DEFAULT_POLICY]
                names[user_id] = username
        reopened = any(self._changed(old, caps.get(owner)) for owner, old in self.caps.items())
        capped_before = set(self.caps)
        self.caps, self.usernames = caps, names
        if set(caps) != capped_before:
            self._recount()
        return reopened

    @staticmethod
    def _changed(old: Caps, new: Caps | None) -> bool:
        """A capped user's policy changed or went (a rise may let their held jobs go; a fall is checked anyway)."""
        if new is None:
            return True
        return any(getattr(new, f) != getattr(old, f) for f, _, _ in TOTAL_CAPS) or new.policy != old.policy

    def _recount(self) -> None:
        in_use: dict[int, list[int]] = {}
        for jobs in self.reserved.values():
            for owner, cpu, memory, gpu, fgpu in jobs.values():
                if owner in self.caps:
                    total = in_use.setdefault(owner, [0, 0, 0, 0])
                    total[0] += cpu
                    total[1] += memory
                    total[2] += gpu
                    total[3] += fgpu
        self.in_use = in_use

    @staticmethod
    def _entry(job: GateJob) -> tuple[int, int, int, int, int]:
        gpu = job.gpu_milli
        return job.owner_id, job.cpu_milli, job.memory_bytes, -(-gpu // 1000) if gpu else 0, gpu

    def hold(self, job: GateJob) -> Wait | None:
        jobs = self.reserved.get(job.cluster_id)
        if jobs is not None and job.job_id in jobs:
            return None
        if job.owner_id is None:
            return None
        entry = self._entry(job)
        caps = self.caps.get(job.owner_id)
        if caps is not None:
            over = over_caps(caps, Amounts(*self.in_use.get(job.owner_id, (0, 0, 0, 0))), Amounts(*entry[1:]))
            if over:
                name = self.usernames.get(job.owner_id, str(job.owner_id))
                return Wait(str(job.job_id), POLICY_LIMIT, wait_message(name, caps, over))
        self._add(job.cluster_id, job.job_id, entry)
        return None

    def reserve(self, job: GateJob) -> None:
        jobs = self.reserved.get(job.cluster_id)
        if job.owner_id is not None and (jobs is None or job.job_id not in jobs):
            self._add(job.cluster_id, job.job_id, self._entry(job))

    def _add(self, cluster_id: int, job_id: int, entry: tuple[int, int, int, int, int]) -> None:
        jobs = self.reserved.get(cluster_id)
        if jobs is None:
            jobs = self.reserved[cluster_id] = {}
        jobs[job_id] = entry
        if entry[0] in self.caps:
            self._count(entry, 1)

    def _count(self, entry: tuple[int, int, int, int, int], sign: int) -> None:
        owner, cpu, memory, gpu, fgpu = entry
        total = self.in_use.setdefault(owner, [0, 0, 0, 0])
        total[0] += sign * cpu
        total[1] += sign * memory
        total[2] += sign * gpu
        total[3] += sign * fgpu
        if not any(total):
            del self.in_use[owner]

    def released(self, job: GateJob) -> bool:
        jobs = self.reserved.get(job.cluster_id)
        entry = jobs.pop(job.job_id, None) if jobs is not None else None
        if entry is None or entry[0] not in self.caps:
            return False
        self._count(entry, -1)
        return True

    def forget_cluster(self, cluster_id: int) -> None:
        jobs = self.reserved.pop(cluster_id, None)
        if jobs and any(entry[0] in self.caps for entry in jobs.values()):
            self._recount()

    def usage(self, owner_id: int) -> Amounts:
        """What the owner's jobs let in hold (computed for owners without a total cap)."""
        if owner_id in self.in_use:
            return Amounts(*self.in_use[owner_id])
        total = Amounts()
        for jobs in self.reserved.values():
            for owner, cpu, memory, gpu, fgpu in jobs.values():
                if owner == owner_id:
                    total = total + Amounts(cpu, memory, gpu, fgpu)
        return total
